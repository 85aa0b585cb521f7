"""The SDXL refiner: a tiny SDXL base and a tiny refiner (from the real configs shrunk) through the engine."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import events as ev
from studio.formats.a1111 import a1111_parameters, read_a1111
from studio.models.library import ModelLibrary
from studio.recipe import Recipe, RecipeError
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def xl(tmp_path_factory):
    from tests.models_fixtures import build_tiny_sdxl_pipeline
    from tests.refiner_pipelines import build_tiny_refiner

    root = tmp_path_factory.mktemp("refiner") / "models"
    base = build_tiny_sdxl_pipeline(root / "sdxl-base")
    return {
        "root": root, "base": base,
        "refiner": build_tiny_refiner(root / "sdxl-refiner", base),
        "other": build_tiny_refiner(root / "other-refiner", base, share=False),
        "library": ModelLibrary([root], use_hf_cache=False),
    }


def refined(**changes) -> Recipe:
    fields = dict(model="sdxl-base", refiner="sdxl-refiner", refiner_switch=0.5, steps=4, cfg_scale=5.0,
                  width=32, height=32, sampler="Euler")
    return recipe_for(**{**fields, **changes})


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def loaded_refiner(engine):
    loaded = next(iter(engine._cache._entries.values()))
    return loaded.pipe, next(v for k, v in loaded.extras.items() if isinstance(k, tuple) and k[0] == "refiner")


@pytest.mark.slow
def test_refines_records_and_reruns_to_the_same_pixels(engine_factory, xl, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=xl["library"], previews=True, preview_interval=0.0, preview_budget=None)
    first = rec.until(ev.Finished, engine.submit(refined(), tmp_path, "a"))
    assert first.recipe.refiner == "sdxl-refiner" and first.recipe.refiner_hash and first.recipe.refiner_switch == 0.5
    again = rec.until(ev.Finished, engine.submit(first.recipe, tmp_path, "b"))
    assert np.array_equal(pixels(first.paths[0]), pixels(again.paths[0]))
    stages = [(e.stage, e.step, e.total) for e in rec.seen if isinstance(e, ev.Progress) and e.job_id == first.job_id]
    assert stages == [("base 1/2", 1, 2), ("base 1/2", 2, 2), ("refiner 2/2", 1, 2), ("refiner 2/2", 2, 2)]
    assert sum(isinstance(e, ev.Preview) and e.job_id == first.job_id for e in rec.seen) == 4
    base, refiner = loaded_refiner(engine)
    assert refiner.studio_shared == ("text_encoder_2", "vae")  # the same weights: loaded once
    assert refiner.text_encoder_2 is base.text_encoder_2 and refiner.vae is base.vae
    assert refiner.config.requires_aesthetics_score
    # The refiner takes part: without it, or switching later, the pixels differ.
    alone = rec.until(ev.Finished, engine.submit(refined(refiner=""), tmp_path, "alone"))
    later = rec.until(ev.Finished, engine.submit(refined(refiner_switch=0.75), tmp_path, "later"))
    assert not np.array_equal(pixels(first.paths[0]), pixels(alone.paths[0]))
    assert not np.array_equal(pixels(first.paths[0]), pixels(later.paths[0]))
    assert [e.stage for e in rec.seen if isinstance(e, ev.Progress) and e.job_id == later.job_id] == [
        "base 1/2"] * 3 + ["refiner 2/2"]


@pytest.mark.slow
def test_a_refiner_with_other_weights_keeps_its_own(engine_factory, xl, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=xl["library"])
    done = rec.until(ev.Finished, engine.submit(refined(refiner="other-refiner"), tmp_path))
    assert done.recipe.refiner == "other-refiner"
    base, refiner = loaded_refiner(engine)
    assert refiner.studio_shared == () and refiner.text_encoder_2 is not base.text_encoder_2


@pytest.mark.slow
def test_what_cannot_be_refined_is_one_line(engine_factory, xl, tiny_model_dir, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=ModelLibrary([xl["root"], tiny_model_dir.parent], use_hf_cache=False))
    sd1 = rec.until(ev.Failed, engine.submit(refined(model=str(tiny_model_dir)), tmp_path))
    assert "finishes an SDXL base" in sd1.reason and "\n" not in sd1.reason
    not_refiner = rec.until(ev.Failed, engine.submit(refined(refiner=str(tiny_model_dir)), tmp_path))
    assert "is not an SDXL refiner folder" in not_refiner.reason


def test_recipe_fields_are_validated():
    with pytest.raises(RecipeError, match="refiner switch"):
        Recipe(prompt="x", refiner="r", refiner_switch=1.0)
    with pytest.raises(RecipeError, match="another model"):
        Recipe(prompt="x", model="m", refiner="m")


def test_a1111_text_carries_the_refiner_and_import_reads_it(xl, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from studio.formats.importer import import_recipe, model_locator

    recipe = refined(refiner_hash="7440042bbd", refiner_switch=0.8)
    text = a1111_parameters(recipe)
    assert "Refiner: sdxl-refiner [7440042bbd], Refiner switch at: 0.8" in text
    fields, notes = read_a1111(text)
    assert (fields["refiner"], fields["refiner_hash"], fields["refiner_switch"]) == ("sdxl-refiner", "7440042bbd", 0.8)
    # As A1111 writes it, the refiner found in the library by name (its hash is the local one).
    a1111 = text.replace("Version: studio", "Version: v1.10.1")
    info = PngInfo()
    info.add_text("parameters", a1111)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    result = import_recipe(path, locate=model_locator(xl["library"].resolve))
    assert result.recipe.refiner == "sdxl-refiner" and result.recipe.refiner_switch == 0.8
    assert result.recipe.refiner_hash == xl["library"].resolve("sdxl-refiner").hash
    # A1111 at 1.0 never ran its refiner: left out, with a note.
    fields, notes = read_a1111(text.replace("Refiner switch at: 0.8", "Refiner switch at: 1"))
    assert "refiner" not in fields and any("never ran" in note for note in notes)


@pytest.mark.slow
def test_cli_generate_with_a_refiner(xl, tmp_path, capsys):
    from studio.store.session import SessionStore

    sessions = tmp_path / "sessions"
    code = main(["generate", "a red circle", "--model", str(xl["base"]), "--refiner", str(xl["refiner"]),
                 "--refiner-switch", "0.5", "--steps", "2", "--size", "32x32", "--seed", "3", "--sampler", "Euler",
                 "--sessions-dir", str(sessions), "-q"])
    assert code == 0, capsys.readouterr().err
    (summary,) = SessionStore(sessions).list()
    (entry,) = SessionStore(sessions).open(summary.name).entries()
    assert entry.status == "done" and entry.recipe.refiner == str(xl["refiner"]) and entry.recipe.refiner_switch == 0.5


def test_cli_refuses_a_switch_without_a_refiner_in_one_line(xl, tmp_path, capsys):
    code = main(["generate", "x", "--model", str(xl["base"]), "--refiner-switch", "0.7",
                 "--sessions-dir", str(tmp_path / "s"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--refiner-switch needs --refiner" in err and len(err.strip().splitlines()) == 1
    code = main(["generate", "x", "--model", str(xl["base"]), "--refiner", "no-such-refiner",
                 "--sessions-dir", str(tmp_path / "s"), "-q"])
    assert code == 2 and "not found" in capsys.readouterr().err

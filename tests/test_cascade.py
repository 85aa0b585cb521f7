"""Stable Cascade: a tiny random prior and decoder (from the real configs shrunk) through the engine."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import events as ev
from studio.formats.a1111 import A1111_STAGE_FIELDS, a1111_parameters, read_a1111
from studio.models.inspect import inspect_file
from studio.models.library import ModelLibrary
from studio.recipe import Recipe, RecipeError
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    from tests.cascade_pipelines import build_tiny_cascade

    root = tmp_path_factory.mktemp("cascade") / "models"
    prior, decoder = build_tiny_cascade(root)
    return {"root": root, "prior": prior, "decoder": decoder, "library": ModelLibrary([root], use_hf_cache=False)}


def cascade_recipe(model, **changes) -> Recipe:
    fields = dict(width=128, height=128, steps=2, cfg_scale=0.0, prior_steps=2, prior_cfg_scale=4.0,
                  sampler="DPM++ 2M Karras")
    return recipe_for(model, **{**fields, **changes})


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.mark.slow
def test_generates_records_and_reruns_to_the_same_pixels(engine_factory, cascade, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=cascade["library"], previews=True, preview_interval=0.0)
    first = rec.until(ev.Finished, engine.submit(cascade_recipe("stable-cascade"), tmp_path, "a"))
    recorded = first.recipe
    assert recorded.prior == "stable-cascade-prior" and recorded.prior_hash  # paired by the library, recorded
    assert recorded.model_hash and recorded.model_license == "stable-cascade-nc-community"
    again = rec.until(ev.Finished, engine.submit(recorded, tmp_path, "b"))
    image = pixels(first.paths[0])
    assert image.shape == (128, 128, 3) and image.std() > 0
    assert np.array_equal(image, pixels(again.paths[0]))
    # Both stages report progress, each with its own steps, and each previews.
    stages = [(e.stage, e.step, e.total) for e in rec.seen if isinstance(e, ev.Progress) and e.job_id == first.job_id]
    assert stages == [("stage C 1/2 prior", 1, 2), ("stage C 1/2 prior", 2, 2),
                      ("stage B 2/2 decoder", 1, 2), ("stage B 2/2 decoder", 2, 2)]
    previews = [e.image.size for e in rec.seen if isinstance(e, ev.Preview) and e.job_id == first.job_id]
    assert previews == [(3, 3), (3, 3), (32, 32), (32, 32)]  # the prior's 3x3 embeddings, the decoder's 32x32
    assert engine.pipeline_loads == 1  # the prior sits beside the cached decoder


@pytest.mark.slow
def test_the_prior_guidance_and_steps_take_effect_and_the_prior_can_be_named(engine_factory, cascade, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=cascade["library"])
    base = rec.until(ev.Finished, engine.submit(cascade_recipe("stable-cascade"), tmp_path, "base"))
    guided = rec.until(ev.Finished, engine.submit(cascade_recipe("stable-cascade", prior_cfg_scale=9.0), tmp_path))
    longer = rec.until(ev.Finished, engine.submit(cascade_recipe("stable-cascade", prior_steps=3), tmp_path))
    assert not np.array_equal(pixels(base.paths[0]), pixels(guided.paths[0]))
    assert not np.array_equal(pixels(base.paths[0]), pixels(longer.paths[0]))
    # The prior named as the model: turned around into decoder + prior, the same image.
    turned = rec.until(ev.Finished, engine.submit(cascade_recipe(str(cascade["prior"])), tmp_path, "turned"))
    assert turned.recipe.prior == str(cascade["prior"]) and turned.recipe.model == "stable-cascade"
    assert np.array_equal(pixels(base.paths[0]), pixels(turned.paths[0]))


@pytest.mark.slow
def test_bad_cascade_recipes_are_one_line(engine_factory, cascade, tiny_model_dir, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=cascade["library"])
    odd = rec.until(ev.Failed, engine.submit(cascade_recipe("stable-cascade", width=192), tmp_path))
    assert "multiples of 128" in odd.reason and "\n" not in odd.reason
    wrong = rec.until(ev.Failed, engine.submit(recipe_for(tiny_model_dir, prior="stable-cascade-prior"), tmp_path))
    assert "applies to a Stable Cascade decoder" in wrong.reason
    vae = rec.until(ev.Failed, engine.submit(cascade_recipe("stable-cascade", vae="some-vae"), tmp_path))
    assert "a --vae does not apply" in vae.reason
    tiled = rec.until(ev.Finished, engine.submit(cascade_recipe("stable-cascade", vae_tiling=True,
                                                                prompt="a (red:1.3) circle"), tmp_path))
    assert not tiled.recipe.vae_tiling  # the config's VAE tiling is left off, and the record says so
    notices = [e.message for e in rec.seen if isinstance(e, ev.Notice) and e.job_id == tiled.job_id]
    assert any("plain text" in text for text in notices)


@pytest.mark.slow
def test_a_combined_folder_makes_the_same_image(engine_factory, cascade, tmp_path):  # noqa: F811
    from tests.cascade_pipelines import build_tiny_combined

    combined = build_tiny_combined(tmp_path / "combined" / "stable-cascade-combined", cascade["prior"],
                                   cascade["decoder"])
    assert inspect_file(combined).architecture == "Stable Cascade (stages C, B and A)"
    engine, rec = engine_factory(library=cascade["library"])
    pair = rec.until(ev.Finished, engine.submit(cascade_recipe("stable-cascade"), tmp_path, "pair"))
    one = rec.until(ev.Finished, engine.submit(cascade_recipe(str(combined)), tmp_path, "one"))
    assert one.recipe.prior == ""  # the folder holds it
    assert np.array_equal(pixels(pair.paths[0]), pixels(one.paths[0]))
    odd = rec.until(ev.Failed, engine.submit(cascade_recipe(str(combined), height=320), tmp_path))
    assert "multiples of 128" in odd.reason


def test_hub_cache_snapshots_pair_by_the_decoders_card(cascade, tmp_path):
    """The hub's layout: models--stabilityai--stable-cascade names its prior repo in its card."""
    import shutil

    from studio.engine.cascade import with_stages

    hub = tmp_path / "hub"
    for repo, source in (("stable-cascade", cascade["decoder"]), ("stable-cascade-prior", cascade["prior"]),
                         ("another-prior", cascade["prior"])):
        shutil.copytree(source, hub / f"models--stabilityai--{repo}" / "snapshots" / "0123abcd")
    library = ModelLibrary([], hf_cache=hub)
    decoder = next(e for e in library.scan() if e.path.parts[-3] == "models--stabilityai--stable-cascade")
    recipe = with_stages(cascade_recipe(decoder.name), library)
    assert "models--stabilityai--stable-cascade-prior" in str(library.resolve(recipe.prior).path)
    assert recipe.prior_hash


def test_a_lone_decoder_says_what_it_needs(cascade, tmp_path):
    import shutil

    from studio.engine.cascade import with_stages

    lone = tmp_path / "elsewhere" / "my-cascade"
    shutil.copytree(cascade["decoder"], lone)
    with pytest.raises(RecipeError, match=r"decoder \(stage B\); no prior \(stage C\) was found") as caught:
        with_stages(cascade_recipe(str(lone)), ModelLibrary([lone.parent], use_hf_cache=False))
    assert "\n" not in str(caught.value)
    # Two priors and no card naming either: the user is asked to name one.
    second = cascade["root"].parent / "second"
    shutil.copytree(cascade["prior"], second / "prior-a")
    shutil.copytree(cascade["prior"], second / "prior-b")
    with pytest.raises(RecipeError, match="several .* --prior NAME"):
        with_stages(cascade_recipe(str(lone)), ModelLibrary([second, lone.parent], use_hf_cache=False))


def test_recipe_fields_are_validated():
    with pytest.raises(RecipeError, match="prior steps"):
        Recipe(prompt="x", prior_steps=0)
    with pytest.raises(RecipeError, match="prior CFG scale"):
        Recipe(prompt="x", prior_cfg_scale=float("nan"))


def test_a1111_text_carries_both_stages_and_import_reads_them(cascade):
    recipe = cascade_recipe("stable-cascade", prior=str(cascade["prior"]), prior_hash="1a2b3c4d5e",
                            prior_steps=24, prior_cfg_scale=3.5)
    text = a1111_parameters(recipe)
    assert "Prior: stable-cascade-prior [1a2b3c4d5e], Prior steps: 24, Prior CFG scale: 3.5" in text
    assert str(cascade["root"]) not in text  # no folders of the user's leak
    fields, notes = read_a1111(text)
    assert {k: fields[k] for k in ("prior", "prior_hash", "prior_steps", "prior_cfg_scale")} == {
        "prior": "stable-cascade-prior", "prior_hash": "1a2b3c4d5e", "prior_steps": 24, "prior_cfg_scale": 3.5}
    assert not [note for note in notes if note.startswith("Prior")]
    assert set(A1111_STAGE_FIELDS) >= {"prior", "prior_steps", "prior_cfg_scale"}


def test_import_finds_the_prior_in_the_library(cascade, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from studio.formats.importer import import_recipe, model_locator

    recipe = cascade_recipe("stable-cascade", prior="stable-cascade-prior", prior_steps=7)
    info = PngInfo()
    info.add_text("parameters", a1111_parameters(recipe))  # the A1111 text alone, as another tool keeps it
    path = tmp_path / "cascade.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    result = import_recipe(path, locate=model_locator(cascade["library"].resolve))
    assert result.recipe.prior == "stable-cascade-prior" and result.recipe.prior_steps == 7
    assert result.recipe.prior_hash == cascade["library"].resolve("stable-cascade-prior").hash


def test_listed_inspected_and_licensed(cascade, capsys):
    assert main(["models", "--dir", str(cascade["root"]), "--no-hf-cache", "--no-hash"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, arch in (("stable-cascade-prior", "Stable Cascade prior (stage C)"),
                       ("stable-cascade ", "Stable Cascade decoder (stage B)")):
        line = next(line for line in lines if line.startswith(name))
        assert arch in line and "stable-cascade-nc-community (non-commercial)" in line, line
    assert main(["inspect", str(cascade["decoder"])]) == 0
    out = capsys.readouterr().out
    assert "Stable Cascade decoder (stage B)" in out and "non-commercial" in out
    assert cascade["library"].defaults("stable-cascade")["prior_steps"] == 20


@pytest.mark.parametrize("stage, shapes, kind, arch", [
    ("c", {"clip_txt_mapper.weight": (2048, 1280), "clip_txt_pooled_mapper.weight": (8192, 1280),
           "down_blocks.0.0.channelwise.0.weight": (8192, 2048)}, "checkpoint", "Stable Cascade stage C (prior)"),
    ("c-lite", {"clip_txt_mapper.weight": (1536, 1280)}, "checkpoint", "Stable Cascade stage C lite (prior)"),
    ("b", {"effnet_mapper.0.weight": (1280, 16, 1, 1), "down_blocks.1.0.channelwise.0.weight": (2560, 640),
           "clip_mapper.weight": (5120, 1280)}, "checkpoint", "Stable Cascade stage B (decoder)"),
    ("b-lite", {"effnet_mapper.0.weight": (1152, 16, 1, 1), "down_blocks.1.0.channelwise.0.weight": (2304, 576)},
     "checkpoint", "Stable Cascade stage B lite (decoder)"),
    ("a", {"vquantizer.codebook.weight": (8192, 4), "in_block.1.weight": (384, 12, 1, 1)},
     "VAE", "Stable Cascade stage A (Paella VQ)"),
])
def test_inspect_names_stage_files(tmp_path, capsys, stage, shapes, kind, arch):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / f"stage_{stage}.safetensors"
    save_file({key: torch.zeros(shape, dtype=torch.float16) for key, shape in shapes.items()}, str(path))
    found = inspect_file(path)
    assert (found.kind, found.architecture) == (kind, arch)
    assert main(["inspect", str(path)]) == 0
    assert arch in capsys.readouterr().out


def test_cascade_offers_only_its_own_scheduler_and_writes_no_sampler(cascade, tmp_path):
    from studio.models.architectures import check_sampler, own_scheduler, samplers_for, scheduler_config_for
    from studio.samplers import DEFAULT_SAMPLER
    from tests.cascade_pipelines import build_tiny_combined

    library = cascade["library"]
    assert library.own_scheduler("stable-cascade") == "DDPM-Wuerstchen"
    assert library.samplers("stable-cascade") == (DEFAULT_SAMPLER,)  # the one value; the sampler is not used
    config = scheduler_config_for(cascade["decoder"])
    check_sampler("Euler", config, "stable-cascade")  # not refused: the engine says it does not apply
    assert own_scheduler({"_class_name": "EulerDiscreteScheduler"}) == "" and samplers_for(config) is None
    combined = build_tiny_combined(tmp_path / "combined" / "stable-cascade-combined", cascade["prior"],
                                   cascade["decoder"])
    for recipe in (cascade_recipe("stable-cascade", prior="stable-cascade-prior", sampler="Euler"),
                   cascade_recipe(str(combined), model_architecture="stable-cascade")):  # the folder holds its prior
        text = a1111_parameters(recipe)
        assert "Sampler:" not in text and "Schedule type:" not in text and "Steps: 2" in text
        fields, notes = read_a1111(text)
        assert "sampler" not in fields and not [n for n in notes if "ampler" in n]
    assert "Sampler: Euler" in a1111_parameters(recipe_for("sd15"))  # a model whose sampler applies


def test_a_cascade_folders_recorded_architecture(cascade, tmp_path):
    from studio.models.architectures import model_architecture
    from tests.cascade_pipelines import build_tiny_combined

    combined = build_tiny_combined(tmp_path / "c" / "stable-cascade-combined", cascade["prior"], cascade["decoder"])
    assert model_architecture(cascade["decoder"]) == model_architecture(combined) == "stable-cascade"
    assert model_architecture(cascade["prior"]) == ""  # the prior is never a recipe's model

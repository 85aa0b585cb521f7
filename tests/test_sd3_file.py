"""SD3 single files (Stability's layout, CLIPs inside, T5 beside), through the engine, with and without T5."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import events as ev
from studio.models import sd3_file
from studio.models.inspect import inspect_file
from studio.models.library import ModelLibrary
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def sd3(tmp_path_factory):
    from tests.sd3_fixtures import build_sd3_file

    return build_sd3_file(tmp_path_factory.mktemp("sd3-file"))


@pytest.fixture
def tiny_config(sd3, monkeypatch):
    monkeypatch.setitem(sd3_file.SD3_CONFIGS, "SD3 Medium", sd3["config"])
    monkeypatch.setenv("XDG_DATA_HOME", str(sd3["comfy"].parent / "no-user-data"))


def _library(paths, tmp_path) -> ModelLibrary:
    return ModelLibrary([paths["comfy"]], use_hf_cache=False, hf_cache=tmp_path / "no-hub",
                        tokenizer_dirs=[paths["clip_tokenizer"]])


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.mark.slow
def test_sd3_file_with_and_without_t5_equals_the_folder(engine_factory, sd3, tiny_config, tmp_path):  # noqa: F811
    engine, rec = engine_factory(library=_library(sd3, tmp_path))
    recipe = recipe_for("sd3-tiny_incl_clips", steps=2, cfg_scale=4.5)
    with_t5 = rec.until(ev.Finished, engine.submit(recipe, tmp_path, "t5"))
    assert with_t5.recipe.text_encoders == ("t5xxl_fp16",)  # the CLIPs and the VAE are inside the file
    assert with_t5.recipe.vae == "" and with_t5.recipe.model_architecture == "sd3"
    without = rec.until(ev.Finished, engine.submit(recipe.replace(t5=False), tmp_path, "no-t5"))
    assert without.recipe.text_encoders == () and not without.recipe.t5  # nothing paired: T5 is off
    assert next(iter(engine._cache._entries.values())).pipe.text_encoder_3 is None
    again = rec.until(ev.Finished, engine.submit(without.recipe, tmp_path, "again"))
    assert np.array_equal(_pixels(without.paths[0]), _pixels(again.paths[0]))
    folder_t5 = rec.until(ev.Finished, engine.submit(recipe.replace(model=str(sd3["reference"])), tmp_path, "f"))
    folder_off = rec.until(ev.Finished, engine.submit(folder_t5.recipe.replace(t5=False), tmp_path, "g"))
    assert np.array_equal(_pixels(with_t5.paths[0]), _pixels(folder_t5.paths[0]))  # the same weights, renamed
    assert np.array_equal(_pixels(without.paths[0]), _pixels(folder_off.paths[0]))
    assert not np.array_equal(_pixels(with_t5.paths[0]), _pixels(without.paths[0]))


def test_sd3_file_inspected_listed_and_a_missing_t5_is_one_line(sd3, tiny_config, tmp_path, capsys):
    import shutil

    from studio.models.comfy_layout import with_companions
    from studio.models.components import ComponentMissing
    from studio.recipe import Recipe

    found = inspect_file(sd3["checkpoint"])
    assert (found.kind, found.architecture) == ("checkpoint", "SD3 Medium")
    assert main(["models", "--dir", str(sd3["comfy"]), "--no-hf-cache", "--no-hash"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("sd3-tiny_incl_clips") and "SD3 Medium" in line for line in out.splitlines()), out
    library = _library(sd3, tmp_path)
    t5 = sd3["comfy"] / "models/text_encoders/t5xxl_fp16.safetensors"
    shutil.move(t5, tmp_path / "t5.safetensors")
    try:
        recipe = Recipe(prompt="x", model="sd3-tiny_incl_clips")
        with pytest.raises(ComponentMissing, match="needs a T5 .* text encoder") as caught:
            with_companions(recipe, library)
        assert "\n" not in str(caught.value)
        assert with_companions(recipe.replace(t5=False), library).text_encoders == ()  # without T5: nothing needed
    finally:
        shutil.move(tmp_path / "t5.safetensors", t5)


def test_shipped_sd3_configs_describe_the_real_models():
    """SD3 Medium 2.0B, SD3.5 Medium 2.2B (MMDiT-X), SD3.5 Large 8.1B transformer parameters."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import SD3Transformer2DModel

    sizes = {}
    for arch, folder in sd3_file.SD3_CONFIGS.items():
        with init_empty_weights(), torch.device("meta"):
            model = SD3Transformer2DModel.from_config(SD3Transformer2DModel.load_config(folder / "transformer"))
        sizes[arch] = round(sum(p.numel() for p in model.parameters()) / 1e9, 1)
    assert sizes == {"SD3 Medium": 2.0, "SD3.5 Medium": 2.2, "SD3.5 Large": 8.1}

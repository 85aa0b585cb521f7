"""An out-of-memory error names, in one line, the switches that help for the model's architecture."""

from __future__ import annotations

import json

import pytest

from studio.engine import events as ev
from studio.models.memory_hints import family_of_name, oom_hint
from studio.recipe import Recipe
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)

CLASSES = {"sd1": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
           "sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline"}


@pytest.fixture
def oom_pipe(tiny_model_dir):
    """The tiny SD1 pipeline, whose call (or whose VAE decoder) runs out of memory as CUDA would."""
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_model_dir, local_files_only=True)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def in_call(where: str):
        if where == "call":
            pipe.__class__ = type("OutOfMemoryPipeline", (type(pipe),), {"__call__": out_of_memory})
        else:
            pipe.vae.decoder.forward = out_of_memory  # raised inside AutoencoderKL.decode
        return pipe

    return in_call


def _model_folder(root, family: str):
    folder = root / f"{family}-model"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": CLASSES[family]}))
    return folder


@pytest.mark.parametrize("family, expected, absent", [
    ("sd1", ["SD1/SD2", "--attention-slicing"], []),
    ("sdxl", ["SDXL", "--cpu-offload", "--vae-tiling"], []),
    ("sd3", ["SD3", "without T5", "--cpu-offload"], ["GGUF"]),
    ("flux", ["Flux", "GGUF", "--cpu-offload"], ["T5"]),
])
def test_engine_failure_names_the_switch_for_the_architecture(
    engine_factory, oom_pipe, tmp_path, family, expected, absent,  # noqa: F811
):
    pipe = oom_pipe("call")
    engine, rec = engine_factory(loader=lambda *a: pipe)
    failed = rec.until(ev.Failed, engine.submit(recipe_for(_model_folder(tmp_path, family), steps=1), tmp_path))
    assert failed.reason.startswith("out of memory") and "\n" not in failed.reason
    for word in expected:
        assert word in failed.reason
    for word in absent:
        assert word not in failed.reason


def test_a_switch_already_on_is_not_suggested_and_the_next_is(engine_factory, oom_pipe, tmp_path):  # noqa: F811
    pipe = oom_pipe("call")
    engine, rec = engine_factory(loader=lambda *a: pipe)
    recipe = recipe_for(_model_folder(tmp_path, "flux"), steps=1, cpu_offload=True)
    reason = rec.until(ev.Failed, engine.submit(recipe, tmp_path)).reason
    assert "--cpu-offload" not in reason and "--sequential-offload" in reason


def test_running_out_in_the_vae_decode_puts_tiling_first(engine_factory, oom_pipe, tmp_path):  # noqa: F811
    pipe = oom_pipe("decode")
    engine, rec = engine_factory(loader=lambda *a: pipe)
    reason = rec.until(ev.Failed, engine.submit(recipe_for(_model_folder(tmp_path, "flux"), steps=1), tmp_path)).reason
    assert reason.index("--vae-tiling") < reason.index("--cpu-offload") < reason.index("GGUF")


def test_every_switch_on_says_so():
    recipe = Recipe(prompt="x", attention_slicing=True, vae_tiling=True, cpu_offload=True, sequential_offload=True)
    assert oom_hint("sd1", recipe) == "out of memory (SD1/SD2) with every memory switch on: try a smaller size or batch"
    assert family_of_name("SDXL base") == "sdxl" and family_of_name("Flux dev") == "flux"
    assert family_of_name("SD3") == "sd3" and family_of_name("SD2.x") == "sd1"


def test_sequential_offload_is_a_switch(tmp_path, monkeypatch):
    from studio.cli import generate
    from studio.config import config_from_dict
    from studio.models.library import ModelLibrary
    import argparse

    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    args = parser.parse_args(["a cat", "--sequential-offload"])
    recipes = generate.recipes_from_args(args, ModelLibrary(use_hf_cache=False), config_from_dict({}))
    assert recipes[0].sequential_offload
    assert config_from_dict({"sequential_offload": True}).sequential_offload

"""Flux in ComfyUI's layout and as GGUF: tiny files under BFL's names, paired, generated, recorded, re-run."""

from __future__ import annotations

import hashlib
import itertools
import shutil

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import events as ev
from studio.models import comfy_layout
from studio.models.inspect import inspect_file
from studio.models.library import ModelLibrary
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from tests.comfy_fixtures import build_comfy_flux

    dev = build_comfy_flux(tmp_path_factory.mktemp("comfy-dev"), dev=True)
    schnell = build_comfy_flux(tmp_path_factory.mktemp("comfy-schnell"), dev=False)
    return {"dev": dev, "schnell": schnell}


@pytest.fixture
def tiny_configs(comfy, monkeypatch):
    """The shipped configs, shrunk to the tiny models (the shipped ones describe the real sizes)."""
    monkeypatch.setitem(comfy_layout.TRANSFORMER_CONFIGS, "Flux dev", comfy["dev"]["config"])
    monkeypatch.setitem(comfy_layout.TRANSFORMER_CONFIGS, "Flux schnell", comfy["schnell"]["config"])
    monkeypatch.setenv("XDG_DATA_HOME", str(comfy["dev"]["comfy"].parent / "no-user-data"))


def _library(paths, tmp_path) -> ModelLibrary:
    return ModelLibrary([paths["comfy"]], use_hf_cache=False, hf_cache=tmp_path / "no-hub",
                        tokenizer_dirs=[paths["clip_tokenizer"]])


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int16)


def test_bfl_names_convert_as_diffusers_converts_them():
    """studio's converter reads widths from the tensors; at Flux's real width it must agree with diffusers'."""
    import torch
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    from studio.models.flux_keys import bfl_to_diffusers

    inner, counter = 3072, itertools.count()

    def t(rows, cols=None):  # distinct values, one column: the full row count at almost no memory
        shape = (rows,) if cols is None else (rows, cols)
        return torch.arange(rows * (cols or 1), dtype=torch.float32).reshape(shape) + next(counter) * 1e6

    state = {}
    for name in ("time_in.in_layer", "time_in.out_layer", "vector_in.in_layer", "vector_in.out_layer",
                 "guidance_in.in_layer", "guidance_in.out_layer", "txt_in", "final_layer.linear"):
        state[name + ".weight"], state[name + ".bias"] = t(4, 1), t(4)
    state["img_in.weight"], state["img_in.bias"] = t(inner, 1), t(inner)
    state["final_layer.adaLN_modulation.1.weight"] = t(8, 1)
    state["final_layer.adaLN_modulation.1.bias"] = t(8)
    for i in range(2):
        for name in ("img_mod.lin", "txt_mod.lin", "img_mlp.0", "img_mlp.2", "txt_mlp.0", "txt_mlp.2",
                     "img_attn.proj", "txt_attn.proj"):
            state[f"double_blocks.{i}.{name}.weight"], state[f"double_blocks.{i}.{name}.bias"] = t(4, 1), t(4)
        for name in ("img_attn.qkv", "txt_attn.qkv"):
            state[f"double_blocks.{i}.{name}.weight"], state[f"double_blocks.{i}.{name}.bias"] = t(6, 1), t(6)
        for name in ("img_attn.norm.query_norm", "img_attn.norm.key_norm", "txt_attn.norm.query_norm",
                     "txt_attn.norm.key_norm"):
            state[f"double_blocks.{i}.{name}.scale"] = t(2)
    for i in range(3):
        for name in ("modulation.lin", "linear2"):
            state[f"single_blocks.{i}.{name}.weight"], state[f"single_blocks.{i}.{name}.bias"] = t(4, 1), t(4)
        state[f"single_blocks.{i}.linear1.weight"] = t(7 * inner, 1)  # q, k, v and the 4x MLP
        state[f"single_blocks.{i}.linear1.bias"] = t(7 * inner)
        state[f"single_blocks.{i}.norm.query_norm.scale"], state[f"single_blocks.{i}.norm.key_norm.scale"] = t(2), t(2)
    ours = bfl_to_diffusers({"model.diffusion_model." + k: v for k, v in state.items()})
    theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(state))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_shipped_configs_describe_the_real_models():
    """FLUX.1's sizes: a 11.9B transformer, CLIP-L, T5-XXL's 4.76B encoder, the 16-channel VAE (ae.safetensors: 335 MB in fp32)."""
    import json

    import torch
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    def count(model):  # on meta, T5's encoder.embed_tokens is not yet tied to `shared`: count it once
        return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder.embed_tokens."))

    for variant, guidance in (("flux-dev", True), ("flux-schnell", False)):
        folder = comfy_layout.CONFIGS_DIR / variant
        with init_empty_weights(), torch.device("meta"):
            transformer = FluxTransformer2DModel.from_config(FluxTransformer2DModel.load_config(folder / "transformer"))
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
            clip = CLIPTextModel(CLIPTextConfig(**json.loads((folder / "text_encoder/config.json").read_text())))
            t5 = T5EncoderModel(T5Config(**json.loads((folder / "text_encoder_2/config.json").read_text())))
        assert transformer.config.guidance_embeds is guidance
        assert round(count(transformer) / 1e9, 1) == 11.9
        assert round(count(t5) / 1e9, 2) == 4.76
        assert round(count(clip) / 1e6) == 123
        assert round(count(vae) / 1e6, 1) == 83.8 and vae.config.latent_channels == 16
    assert comfy_layout.TRANSFORMER_CONFIGS["Flux dev"] == comfy_layout.CONFIGS_DIR / "flux-dev"


@pytest.mark.slow
def test_comfy_flux_generates_records_reruns_and_matches_the_folder(engine_factory, comfy, tiny_configs, tmp_path):  # noqa: F811
    paths = comfy["dev"]
    library = _library(paths, tmp_path)
    engine, rec = engine_factory(library=library)
    recipe = recipe_for("flux-tiny-dev", steps=2, cfg_scale=3.5)
    first = rec.until(ev.Finished, engine.submit(recipe, tmp_path, "a"))
    assert first.recipe.text_encoders == ("clip_l", "t5xxl_fp16")  # paired from models/text_encoders
    assert first.recipe.vae == "ae" and first.recipe.vae_hash and first.recipe.model_hash
    encoders = paths["comfy"] / "models/text_encoders"  # which weights they were, not only their names
    assert first.recipe.text_encoder_hashes == tuple(
        hashlib.sha256((encoders / f"{name}.safetensors").read_bytes()).hexdigest()[:10] for name in ("clip_l", "t5xxl_fp16")
    )
    # Another T5 dropped in later does not change what the recorded recipe loads.
    shutil.copy(paths["comfy"] / "models/text_encoders/t5xxl_fp16.safetensors",
                paths["comfy"] / "models/text_encoders/a-t5-first-by-name.safetensors")
    try:
        library.scan(refresh=True)
        again = rec.until(ev.Finished, engine.submit(first.recipe, tmp_path, "b"))
    finally:
        (paths["comfy"] / "models/text_encoders/a-t5-first-by-name.safetensors").unlink()
    assert again.recipe.text_encoders == first.recipe.text_encoders
    assert np.array_equal(_pixels(first.paths[0]), _pixels(again.paths[0]))
    folder = rec.until(ev.Finished, engine.submit(recipe.replace(model=str(paths["reference"])), tmp_path, "c"))
    assert np.array_equal(_pixels(first.paths[0]), _pixels(folder.paths[0]))  # the same weights, renamed
    assert _pixels(first.paths[0]).std() > 0


@pytest.mark.slow
def test_gguf_transformer_stays_quantised_and_follows_the_fp32_image(engine_factory, comfy, tiny_configs, tmp_path):  # noqa: F811
    pytest.importorskip("gguf")
    from safetensors.torch import load_file

    from tests.comfy_fixtures import write_gguf

    paths = comfy["dev"]
    gguf_path = paths["comfy"] / "models" / "unet" / "flux-tiny-dev-Q8_0.gguf"
    types = write_gguf(load_file(paths["transformer"]), gguf_path)
    assert set(types.values()) == {"Q8_0", "F16"}
    inspected = inspect_file(gguf_path)
    assert (inspected.format, inspected.architecture) == ("gguf", "Flux dev") and "Q8_0" in inspected.dtypes
    engine, rec = engine_factory(library=_library(paths, tmp_path))
    quantised = rec.until(ev.Finished, engine.submit(recipe_for("flux-tiny-dev-Q8_0", steps=2, cfg_scale=3.5), tmp_path))
    pipe = next(iter(engine._cache._entries.values())).pipe
    assert type(pipe.transformer.transformer_blocks[0].attn.to_q).__name__ == "GGUFLinear"
    assert str(pipe.transformer.transformer_blocks[0].attn.to_q.weight.dtype) == "torch.uint8"  # still Q8_0 blocks
    again = rec.until(ev.Finished, engine.submit(quantised.recipe, tmp_path, "again"))
    assert np.array_equal(_pixels(quantised.paths[0]), _pixels(again.paths[0]))
    full = rec.until(ev.Finished, engine.submit(recipe_for("flux-tiny-dev", steps=2, cfg_scale=3.5), tmp_path, "full"))
    difference = np.abs(_pixels(quantised.paths[0]) - _pixels(full.paths[0]))
    assert difference.mean() < 2 and difference.max() < 16  # 8-bit weights: close to, not equal to, fp32


@pytest.mark.slow
def test_schnell_from_the_unet_folder_with_named_encoders(engine_factory, comfy, tiny_configs, tmp_path):  # noqa: F811
    paths = comfy["schnell"]
    moved = paths["comfy"] / "models" / "unet" / paths["transformer"].name
    shutil.copy(paths["transformer"], moved)
    encoders = tmp_path / "elsewhere"
    encoders.mkdir()
    for name in ("clip_l", "t5xxl_fp16"):
        shutil.copy(paths["comfy"] / f"models/text_encoders/{name}.safetensors", encoders / f"my-{name}.safetensors")
    engine, rec = engine_factory(library=_library(paths, tmp_path))
    named = tuple(str(encoders / f"my-{n}.safetensors") for n in ("t5xxl_fp16", "clip_l"))  # any order
    recipe = recipe_for(str(moved), steps=2, cfg_scale=0.0, text_encoders=named)
    done = rec.until(ev.Finished, engine.submit(recipe, tmp_path))
    assert done.recipe.text_encoders == (named[1], named[0])  # slot order: CLIP-L, then T5
    assert _pixels(done.paths[0]).std() > 0


def test_a_missing_t5_is_one_line_naming_the_folder(comfy, tiny_configs, tmp_path, capsys, monkeypatch):
    from studio.models.components import ComponentMissing
    from studio.recipe import Recipe

    paths = comfy["dev"]
    t5 = paths["comfy"] / "models/text_encoders/t5xxl_fp16.safetensors"
    hidden = tmp_path / "t5.safetensors"
    shutil.move(t5, hidden)
    try:
        with pytest.raises(ComponentMissing) as caught:
            comfy_layout.with_companions(Recipe(prompt="x", model=str(paths["transformer"])), _library(paths, tmp_path))
        monkeypatch.setenv("STUDIO_SESSIONS_DIR", str(tmp_path / "sessions"))
        code = main(["generate", "a cat", "--model", str(paths["transformer"]), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and "T5 (32-wide) text encoder" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "sessions").exists()  # refused before anything was recorded
    finally:
        shutil.move(hidden, t5)
    message = str(caught.value)
    assert "T5 (32-wide) text encoder" in message and "text_encoders" in message and "\n" not in message


def test_listed_inspected_defaults_and_samplers(comfy, tiny_configs, capsys, tmp_path, monkeypatch):
    from studio.models.architectures import architecture_defaults, scheduler_config_for, samplers_for

    dev, schnell = comfy["dev"], comfy["schnell"]
    assert architecture_defaults(dev["transformer"])["cfg_scale"] == 3.5  # distilled guidance
    assert architecture_defaults(schnell["transformer"]) == {
        "sampler": "Euler", "steps": 4, "cfg_scale": 0.0, "width": 1024, "height": 1024}
    assert samplers_for(scheduler_config_for(dev["transformer"])) == ("Euler",)
    assert main(["models", "--dir", str(dev["comfy"]), "--no-hf-cache", "--no-hash"]) == 0
    out = capsys.readouterr().out
    for name, words in (("flux-tiny-dev", ("checkpoint", "Flux dev")), ("clip_l", ("text encoder", "CLIP")),
                        ("t5xxl_fp16", ("text encoder", "T5")), ("ae", ("VAE",))):
        assert any(line.startswith(name) and all(w in line for w in words) for line in out.splitlines()), out
    assert main(["inspect", str(dev["comfy"] / "models/text_encoders/t5xxl_fp16.safetensors")]) == 0
    assert "T5 (32-wide) text encoder" in capsys.readouterr().out
    assert main(["inspect", str(dev["transformer"]), "--dir", str(dev["comfy"])]) == 0
    assert "pairs with: clip_l, t5xxl_fp16, VAE ae" in capsys.readouterr().out
    monkeypatch.setenv("STUDIO_SESSIONS_DIR", str(tmp_path / "sessions"))
    code = main(["generate", "a cat", "--model", str(dev["transformer"]), "--sampler", "DDIM", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "flow matching" in err and len(err.strip().splitlines()) == 1


def test_gguf_without_the_package_or_not_flux_is_one_line(comfy, tmp_path, monkeypatch):
    import sys

    pytest.importorskip("gguf")
    import torch

    from studio.models.loading import LoadError, load_pipeline
    from studio.models.resolve import ModelRef
    from tests.comfy_fixtures import write_gguf

    other = tmp_path / "llama-ish.gguf"
    write_gguf({"blk.0.attn_q.weight": torch.zeros(4, 32)}, other)
    with pytest.raises(LoadError, match="GGUF files of Flux transformers only"):
        load_pipeline(ModelRef("x", other, "single_file", ""), "cpu", "float32")
    monkeypatch.setitem(sys.modules, "gguf", None)  # as if not installed
    with pytest.raises(LoadError, match=r"pip install 'studio\[gguf\]'") as caught:
        load_pipeline(ModelRef("x", other, "single_file", ""), "cpu", "float32")
    assert "\n" not in str(caught.value)
    inspected = inspect_file(other)
    assert inspected.architecture == "GGUF (not read)" and "pip install" in inspected.notes[0]


@pytest.mark.slow
def test_an_fp8_transformer_file_loads_cast_to_the_compute_dtype(comfy, tiny_configs, tmp_path):
    """flux1-dev-fp8 files (float8_e4m3fn weights) are common: cast up on load, the image close to fp32's."""
    import torch
    from safetensors.torch import load_file, save_file

    from studio.models.loading import load_pipeline
    from studio.models.resolve import ModelRef

    paths = comfy["dev"]
    fp8 = paths["comfy"] / "models" / "unet" / "flux-tiny-dev-fp8_e4m3fn.safetensors"
    save_file({k: v.to(torch.float8_e4m3fn) for k, v in load_file(paths["transformer"]).items()}, fp8)
    try:
        assert inspect_file(fp8).dtypes.keys() == {"F8_E4M3"}
        images = []
        for path in (fp8, paths["transformer"]):
            pipe = load_pipeline(ModelRef("x", path, "single_file", ""), "cpu", "float32",
                                 tokenizer_dir=paths["clip_tokenizer"], hf_cache=tmp_path / "no-hub")
            assert pipe.transformer.x_embedder.weight.dtype == torch.float32
            pipe.set_progress_bar_config(disable=True)
            images.append(pipe("a red circle", num_inference_steps=2, guidance_scale=3.5, height=64, width=64,
                               generator=torch.Generator().manual_seed(1), output_type="np").images)
    finally:
        fp8.unlink()
    difference = np.abs(images[0] - images[1])
    assert 0 < difference.mean() < 0.01

"""Flux (dev, schnell) and SD3 without T5, as tiny random pipelines, through the engine."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import events as ev
from studio.models.architectures import SamplerUnavailable, architecture_defaults, check_sampler, samplers_for
from studio.models.inspect import inspect_file
from studio.models.library import ModelLibrary
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def arch_models(tmp_path_factory):
    from tests.arch_pipelines import build_tiny_flux, build_tiny_sd3

    root = tmp_path_factory.mktemp("arch") / "models"
    return {
        "flux-dev": build_tiny_flux(root / "flux-dev", dev=True),
        "flux-schnell": build_tiny_flux(root / "flux-schnell", dev=False),
        "sd3": build_tiny_sd3(root / "sd3-no-t5"),
        "sd3-t5": build_tiny_sd3(root / "sd3-t5", t5=True),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flux-dev", "flux-schnell", "sd3"])
def test_generates_records_and_reruns_to_the_same_pixels(engine_factory, arch_models, tmp_path, name):  # noqa: F811
    model = arch_models[name]
    defaults = architecture_defaults(model)
    engine, rec = engine_factory()
    recipe = recipe_for(model, steps=2, cfg_scale=defaults["cfg_scale"], sampler="Euler", t5=name != "sd3")
    first = rec.until(ev.Finished, engine.submit(recipe, tmp_path, "a"))
    again = rec.until(ev.Finished, engine.submit(first.recipe, tmp_path, "b"))  # the recorded recipe, re-run
    pixels = np.asarray(Image.open(first.paths[0]))
    assert pixels.shape == (64, 64, 3) and pixels.std() > 0
    assert np.array_equal(pixels, np.asarray(Image.open(again.paths[0])))
    assert first.recipe.model_hash and first.recipe.sampler == "Euler"
    pipe = next(iter(engine._cache._entries.values())).pipe
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    if name == "sd3":
        assert pipe.text_encoder_3 is None  # ran without T5


@pytest.mark.slow
def test_dev_guidance_changes_the_image_and_a_noise_sampler_is_one_line(engine_factory, arch_models, tmp_path):  # noqa: F811
    engine, rec = engine_factory()
    model = arch_models["flux-dev"]
    low = rec.until(ev.Finished, engine.submit(recipe_for(model, steps=2, cfg_scale=1.0), tmp_path, "lo"))
    high = rec.until(ev.Finished, engine.submit(recipe_for(model, steps=2, cfg_scale=6.0), tmp_path, "hi"))
    assert not np.array_equal(np.asarray(Image.open(low.paths[0])), np.asarray(Image.open(high.paths[0])))
    failed = rec.until(ev.Failed, engine.submit(recipe_for(model, steps=2, sampler="DPM++ 2M Karras"), tmp_path))
    assert "flow matching" in failed.reason and "choose Euler" in failed.reason and "\n" not in failed.reason


def test_samplers_per_architecture(arch_models):
    from studio.models.architectures import folder_scheduler_config

    flux = folder_scheduler_config(arch_models["flux-dev"])
    sd3 = folder_scheduler_config(arch_models["sd3"])
    assert samplers_for(flux) == ("Euler",)  # dynamic shifting: Euler only
    assert samplers_for(sd3) == ("Euler", "Heun")
    assert samplers_for({"_class_name": "EulerDiscreteScheduler"}) is None
    with pytest.raises(SamplerUnavailable, match="choose Euler or Heun"):
        check_sampler("DDIM", sd3, "sd3")
    check_sampler("Heun", sd3)


def test_defaults_listed_and_inspected(arch_models, capsys):
    assert architecture_defaults(arch_models["flux-schnell"])["cfg_scale"] == 0.0  # no CFG for schnell
    assert architecture_defaults(arch_models["flux-dev"])["cfg_scale"] == 3.5  # distilled guidance
    assert {name: inspect_file(path).architecture for name, path in arch_models.items()} == {
        "flux-dev": "Flux dev", "flux-schnell": "Flux schnell", "sd3": "SD3", "sd3-t5": "SD3",
    }
    library = ModelLibrary([arch_models["sd3"].parent], use_hf_cache=False)
    assert library.defaults(str(arch_models["sd3"]))["sampler"] == "Euler"
    assert main(["models", "--dir", str(arch_models["sd3"].parent), "--no-hf-cache", "--no-hash"]) == 0
    out = capsys.readouterr().out
    for name, arch in (("flux-dev", "Flux dev"), ("flux-schnell", "Flux schnell"), ("sd3-no-t5", "SD3")):
        assert any(line.startswith(name) and arch in line for line in out.splitlines()), out
    assert main(["inspect", str(arch_models["flux-dev"])]) == 0
    assert "Flux dev" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flux-schnell", "sd3"])
def test_previews_for_packed_and_16_channel_style_latents(arch_models, tmp_path, name):
    from studio.engine import LocalEngine
    from tests.test_engine import Recorder, plain_save

    rec = Recorder()
    engine = LocalEngine(rec, previews="latent", preview_interval=0.0, preview_budget=None, saver=plain_save)
    try:
        job = engine.submit(recipe_for(arch_models[name], steps=3, sampler="Euler", cfg_scale=0.0, t5=name != "sd3"), tmp_path)
        rec.until(ev.Finished, job)
    finally:
        engine.shutdown()
    previews = [e for e in rec.seen if isinstance(e, ev.Preview)]
    assert len(previews) == 3
    assert previews[0].image.size == (32, 32)  # the latent grid, unpacked for Flux


def test_cli_refuses_a_noise_sampler_for_flux_in_one_line(arch_models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_SESSIONS_DIR", str(tmp_path / "sessions"))
    code = main(["generate", "a cat", "--model", str(arch_models["flux-dev"]), "--sampler", "DDIM", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "flow matching" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sessions").exists()


@pytest.mark.slow
def test_running_sd3_without_t5_is_a_recorded_choice(engine_factory, arch_models, tmp_path):  # noqa: F811
    from studio.formats.a1111 import a1111_parameters, read_a1111

    engine, rec = engine_factory()
    with_t5 = rec.until(ev.Finished, engine.submit(recipe_for(arch_models["sd3-t5"], steps=2, cfg_scale=4.5), tmp_path))
    assert next(iter(engine._cache._entries.values())).pipe.text_encoder_3 is not None
    without = rec.until(ev.Finished, engine.submit(with_t5.recipe.replace(t5=False), tmp_path, "no-t5"))
    assert next(iter(engine._cache._entries.values())).pipe.text_encoder_3 is None
    assert with_t5.recipe.t5 and not without.recipe.t5 and without.recipe.model_architecture == "sd3"
    assert not np.array_equal(np.asarray(Image.open(with_t5.paths[0])), np.asarray(Image.open(without.paths[0])))
    again = rec.until(ev.Finished, engine.submit(without.recipe, tmp_path, "again"))  # re-run: still without
    assert np.array_equal(np.asarray(Image.open(without.paths[0])), np.asarray(Image.open(again.paths[0])))
    text = a1111_parameters(without.recipe)
    assert "T5: off" in text and "T5" not in a1111_parameters(with_t5.recipe).split("\n")[-1]
    assert read_a1111(text)[0]["t5"] is False
    # A folder without T5 runs only when asked to go without: never by accident of what files exist.
    failed = rec.until(ev.Failed, engine.submit(recipe_for(arch_models["sd3"], steps=2), tmp_path))
    assert "--no-t5" in failed.reason and "\n" not in failed.reason


def test_flux_dev_writes_distilled_cfg_as_forge_does_and_schnell_no_cfg():
    from studio.formats.a1111 import a1111_parameters, read_a1111
    from studio.recipe import Recipe

    dev = Recipe(prompt="a cat", model="flux1-dev", sampler="Euler", cfg_scale=3.5, steps=28,
                 model_architecture="flux-dev", text_encoders=("clip_l", "/models/te/t5xxl_fp16.safetensors"), vae="ae")
    line = a1111_parameters(dev).splitlines()[-1]
    assert "CFG scale: 1, Distilled CFG Scale: 3.5" in line
    assert "Module 1: clip_l, Module 2: t5xxl_fp16" in line  # names, never the user's folders
    fields, notes = read_a1111(a1111_parameters(dev))
    assert fields["cfg_scale"] == 3.5 and fields["text_encoders"] == ["clip_l", "t5xxl_fp16"] and not notes
    schnell = dev.replace(model="flux1-schnell", cfg_scale=0.0, steps=4, model_architecture="flux-schnell")
    assert "CFG scale: 0," in a1111_parameters(schnell) and "Distilled" not in a1111_parameters(schnell)
    forge = ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 1, Distilled CFG Scale: 2.5,"
             " Seed: 1, Size: 1024x1024, Model: flux1-dev, Module 1: ae, Module 2: clip_l, Module 3: t5xxl_fp16")
    fields, notes = read_a1111(forge)
    assert (fields["cfg_scale"], fields["vae"], fields["text_encoders"]) == (2.5, "ae", ["clip_l", "t5xxl_fp16"])
    assert not notes


@pytest.mark.slow
def test_flux_neither_applies_nor_records_a_negative_prompt_and_says_so(engine_factory, arch_models, tmp_path):  # noqa: F811
    from studio.formats.a1111 import a1111_parameters

    engine, rec = engine_factory()
    model = arch_models["flux-dev"]
    plain = rec.until(ev.Finished, engine.submit(recipe_for(model, steps=2, cfg_scale=3.5), tmp_path, "plain"))
    job = engine.submit(recipe_for(model, steps=2, cfg_scale=3.5, negative_prompt="blurry, text"), tmp_path, "neg")
    negative = rec.until(ev.Finished, job)
    notices = [e.message for e in rec.seen if isinstance(e, ev.Notice) and e.job_id == job]
    assert any("negative prompt" in text and "not recorded" in text for text in notices), notices
    assert negative.recipe.negative_prompt == "" and "Negative prompt" not in a1111_parameters(negative.recipe)
    assert np.array_equal(np.asarray(Image.open(plain.paths[0])), np.asarray(Image.open(negative.paths[0])))
    sd3 = engine.submit(recipe_for(arch_models["sd3"], steps=2, cfg_scale=4.5, negative_prompt="blurry", t5=False),
                        tmp_path)
    assert rec.until(ev.Finished, sd3).recipe.negative_prompt == "blurry"  # SD3 has a negative pass: kept

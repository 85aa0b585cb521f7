"""Live previews: the clean estimate (x0) for every sampler and architecture, TAESD decoders, the choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine import events as ev
from studio.engine.preview_choice import PreviewChoice, next_kind, parse_preview
from studio.samplers import SAMPLERS
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)

QUICK_SAMPLERS = ("Euler", "DPM++ 2M Karras", "PLMS", "Euler a")


def _corr(a, b) -> float:
    a = a.flatten() - a.mean()
    b = b.flatten() - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def trained_pipe():
    """studio-tiny, the built-in model trained on coloured shapes (v-prediction): its x0 estimate means something."""
    import torch
    from diffusers import DiffusionPipeline

    from studio.builtin import BUILTIN_DIR

    pipe = DiffusionPipeline.from_pretrained(BUILTIN_DIR / "studio-tiny", local_files_only=True, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _run_watched(pipe, sampler: str, steps: int = 8, **call):
    """Each step's (latents, x0 estimate) and the final latents, through a watched scheduler."""
    import torch

    from studio.engine.x0 import latest_x0, watch_x0
    from studio.samplers import make_scheduler

    base = pipe.__dict__.setdefault("studio_base_config", dict(pipe.scheduler.config))  # the model's own
    pipe.scheduler = watch_x0(make_scheduler(sampler, base, 0))
    seen = []

    def callback(p, index, timestep, kwargs):
        seen.append((kwargs["latents"].clone(), latest_x0(p.scheduler)))
        return kwargs

    final = pipe(
        "a red circle", num_inference_steps=steps, generator=torch.Generator().manual_seed(1),
        output_type="latent", callback_on_step_end=callback, **call,
    ).images
    return seen, final


@pytest.mark.parametrize("sampler", [
    pytest.param(name, marks=() if name in QUICK_SAMPLERS else pytest.mark.slow) for name in SAMPLERS if name != "LCM"
])
def test_x0_shows_the_picture_from_the_first_step_for_every_sampler(trained_pipe, sampler):
    seen, final = _run_watched(trained_pipe, sampler, height=64, width=64, guidance_scale=5.0)
    latents, x0 = seen[0]
    assert x0 is not None and x0.shape == latents.shape
    # After one step of eight the noisy latents are still noise; the estimate already looks like the end.
    assert _corr(latents, final) < 0.3
    assert _corr(x0, final) > max(0.45, _corr(latents, final) + 0.3)  # ancestral samplers wander most: DPM2 a 0.5


def test_x0_same_image_with_and_without_watching(trained_pipe):
    """Watching changes nothing the sampler computes (Euler a draws noise: the generator must still reach it)."""
    import torch

    from studio.samplers import make_scheduler

    _, watched = _run_watched(trained_pipe, "Euler a", steps=3, height=64, width=64)
    trained_pipe.scheduler = make_scheduler("Euler a", trained_pipe.studio_base_config, 0)
    plain = trained_pipe("a red circle", num_inference_steps=3, height=64, width=64,
                         generator=torch.Generator().manual_seed(1), output_type="latent").images
    assert torch.equal(watched, plain)


@pytest.fixture(scope="module")
def arch_models(tmp_path_factory):
    from tests.arch_pipelines import build_tiny_flux, build_tiny_sd3

    root = tmp_path_factory.mktemp("arch") / "models"
    return {"flux": build_tiny_flux(root / "flux-schnell", dev=False), "sd3": build_tiny_sd3(root / "sd3")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flux", "sd3"])
def test_flow_matching_x0_is_x_minus_sigma_v(arch_models, name):
    """At the last Euler step sigma goes to 0, so x0 = x_t - sigma * v is exactly what the sampler returns."""
    import torch
    from diffusers import DiffusionPipeline

    from studio.models.architectures import optional_components

    pipe = DiffusionPipeline.from_pretrained(arch_models[name], local_files_only=True, **optional_components(arch_models[name]))
    pipe.set_progress_bar_config(disable=True)
    seen, final = _run_watched(pipe, "Euler", steps=3, height=64, width=64, guidance_scale=0.0)
    assert all(x0 is not None for _, x0 in seen)
    assert torch.allclose(seen[-1][1], final, atol=1e-5)
    assert not torch.allclose(seen[0][1], seen[0][0])  # and earlier it is not the latents


# -- TAESD -----------------------------------------------------------------------------------

def tiny_taesd(latent_channels: int, seed: int = 0):
    """madebyollin/taesd's diffusers config, every width cut to 8: the same layout of blocks and upsamples."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny(
        in_channels=3, out_channels=3, encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        act_fn="relu", latent_channels=latent_channels, upsampling_scaling_factor=2,
        num_encoder_blocks=(1, 3, 3, 3), num_decoder_blocks=(3, 3, 3, 1),
    ).eval()


def save_decoder_only(model, path: Path) -> Path:
    """The decoder as taesd_decoder.safetensors holds it: madebyollin's Sequential, item 0 the weightless clamp."""
    from safetensors.torch import save_file

    state = {}
    for key, tensor in model.decoder.state_dict().items():
        index, rest = key.removeprefix("layers.").split(".", 1)
        state[f"{int(index) + 1}.{rest}"] = tensor.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


@pytest.fixture(scope="module")
def taesd_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("taesd")
    models = {"taesd": tiny_taesd(4, 1), "taesdxl": tiny_taesd(4, 2), "taef1": tiny_taesd(16, 3)}
    save_decoder_only(models["taesd"], root / "models" / "vae_approx" / "taesd_decoder.safetensors")
    save_decoder_only(models["taef1"], root / "models" / "vae_approx" / "taef1_decoder.safetensors")
    models["taesdxl"].save_pretrained(root / "models" / "VAE-taesd" / "taesdxl")  # a diffusers AutoencoderTiny folder
    (root / "models" / "checkpoints").mkdir()
    return root, models


def test_decoder_files_are_found_matched_and_decode_as_the_original(taesd_dir):
    import torch

    from studio.models import taesd
    from studio.models.library import ModelLibrary

    root, models = taesd_dir
    file = root / "models" / "vae_approx" / "taesd_decoder.safetensors"
    from safetensors import safe_open

    with safe_open(str(file), "pt") as handle:
        assert tuple(handle.get_tensor("1.weight").shape) == (8, 4, 3, 3)  # the published layout, as users have it
    entries = [e for e in ModelLibrary([root], use_hf_cache=False).scan() if e.kind == taesd.PREVIEW_DECODER]
    assert {e.name: e.architecture for e in entries} == {
        "taesd_decoder": "TAESD sd1 4ch", "taef1_decoder": "TAESD flux 16ch", "taesdxl": "TAESD sdxl 4ch",
    }
    assert taesd.pick(entries, "sd1", 4).name == "taesd_decoder"
    assert taesd.pick(entries, "sdxl", 4).name == "taesdxl"
    assert taesd.pick(entries, "flux", 16).name == "taef1_decoder"
    assert taesd.pick(entries, "sdxl", 4, name="taesd").name == "taesd_decoder"  # a name overrides the family
    with pytest.raises(taesd.PreviewDecoderError, match="taesd3_decoder.safetensors"):
        taesd.pick([e for e in entries if "f1" not in e.name], "sd3", 16)
    with pytest.raises(taesd.PreviewDecoderError, match="16-channel latents; this model's have 4"):
        taesd.pick(entries, "sd1", 4, name="taef1")

    latents = torch.randn(1, 4, 6, 5, generator=torch.Generator().manual_seed(0))
    for name, path in (("taesd", file), ("taesdxl", root / "models" / "VAE-taesd" / "taesdxl")):
        decoder = taesd.load_decoder(path, "cpu", torch.float32)
        with torch.no_grad():
            assert torch.allclose(decoder(latents), models[name].decode(latents).sample, atol=1e-6)
    flux = taesd.load_decoder(root / "models" / "vae_approx" / "taef1_decoder.safetensors", "cpu", torch.float32)
    with torch.no_grad():
        wide = torch.randn(1, 16, 4, 4)
        assert torch.allclose(flux(wide), models["taef1"].decode(wide).sample, atol=1e-6)


def test_engine_draws_taesd_previews_and_falls_back_in_one_notice(engine_factory, tiny_model_dir, taesd_dir, tmp_path):  # noqa: F811
    from studio.models.library import ModelLibrary

    root, _ = taesd_dir
    library = ModelLibrary([tiny_model_dir.parent, root], use_hf_cache=False)
    engine, rec = engine_factory(previews="taesd", preview_interval=0, preview_budget=None, library=library)
    rec.until(ev.Finished, engine.submit(recipe_for(tiny_model_dir, steps=2), tmp_path))
    previews = [e for e in rec.seen if isinstance(e, ev.Preview)]
    assert [p.image.size for p in previews] == [(256, 256)] * 2  # TAESD upsamples 8x: pixels, not the 32x32 latent grid
    engine.set_preview("taesd:taef1")  # 16 channels: cannot decode this model's latents
    rec.seen.clear()
    rec.until(ev.Finished, engine.submit(recipe_for(tiny_model_dir, steps=2), tmp_path))
    notices = [e.message for e in rec.seen if isinstance(e, ev.Notice)]
    assert len(notices) == 1 and "16-channel" in notices[0] and "\n" not in notices[0]
    assert [p.image.size for p in rec.seen if isinstance(p, ev.Preview)] == [(32, 32)] * 2  # the projection instead
    engine.set_preview("none")
    rec.seen.clear()
    rec.until(ev.Finished, engine.submit(recipe_for(tiny_model_dir, steps=2), tmp_path))
    assert not [e for e in rec.seen if isinstance(e, ev.Preview)]


def test_x0_preview_differs_from_the_latent_one(engine_factory, tiny_model_dir, tmp_path):  # noqa: F811
    import numpy as np

    images = {}
    for kind in ("x0", "latent"):
        engine, rec = engine_factory(previews=kind, preview_interval=0, preview_budget=None)
        rec.until(ev.Finished, engine.submit(recipe_for(tiny_model_dir, steps=3), tmp_path))
        images[kind] = [np.asarray(e.image) for e in rec.seen if isinstance(e, ev.Preview)]
    assert len(images["x0"]) == len(images["latent"]) == 3
    assert not np.array_equal(images["x0"][0], images["latent"][0])
    # Euler's last step lands on its estimate: the same picture, but for rounding (a level of 255)
    assert np.abs(images["x0"][-1].astype(int) - images["latent"][-1]).max() <= 1


def test_preview_budget_spaces_previews(engine_factory, tiny_model_dir, tmp_path, monkeypatch):  # noqa: F811
    """A preview that costs as much as a step is drawn at most one step in twenty."""
    import time

    from studio.engine import preview

    real = preview.preview_image

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(preview, "preview_image", slow)
    engine, rec = engine_factory(previews="x0", preview_interval=0)
    started = time.perf_counter()
    rec.until(ev.Finished, engine.submit(recipe_for(tiny_model_dir, steps=30), tmp_path))
    elapsed = time.perf_counter() - started
    drawn = len([e for e in rec.seen if isinstance(e, ev.Preview)])
    assert 1 <= drawn and drawn * 0.05 <= 0.05 * elapsed + 0.05  # at most 5% of the time, give or take one


def test_the_choice_parses_and_cycles():
    assert parse_preview("taesd:taef1") == PreviewChoice("taesd", "taef1")
    assert parse_preview(True) == PreviewChoice("x0") and not parse_preview(False).enabled
    for bad in ("x1", "latent:foo", ""):
        with pytest.raises(ValueError, match="x0, latent, taesd"):
            parse_preview(bad)
    kinds = [PreviewChoice("x0", "taesdxl")]
    for _ in range(4):
        kinds.append(next_kind(kinds[-1]))
    assert [str(k) for k in kinds] == ["x0", "latent", "taesd:taesdxl", "none", "x0"]


def test_config_and_cli_refuse_a_bad_preview_in_one_line(tmp_path, monkeypatch, capsys):
    from studio.cli import main
    from studio.config import ConfigError, config_from_dict

    assert config_from_dict({"preview": "taesd:taesdxl"}).preview == "taesd:taesdxl"
    with pytest.raises(ConfigError, match="preview must be x0, latent, taesd"):
        config_from_dict({"preview": "fancy"})
    monkeypatch.setenv("STUDIO_SESSIONS_DIR", str(tmp_path / "sessions"))
    assert main(["tui", "--preview", "fancy"]) == 2
    err = capsys.readouterr().err
    assert "preview must be one of" in err and len(err.strip().splitlines()) == 1

"""Upscalers: discovery of the user's files, pickles refused, spandrel (optional), tiling."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from studio.cli import main
from studio.models.library import ModelLibrary
from studio.models.pickles import PickleRefused
from studio.recipe import RecipeError
from studio.upscale.net import StudioSR
from studio.upscale.tiles import upscale_tiled
from studio.upscale.upscalers import BUILTIN_UPSCALER_PATH, find_upscalers, load_network, resolve_upscaler, upscale

try:
    import spandrel  # noqa: F401

    HAVE_SPANDREL = True
except Exception:  # ImportError, or torchvision's operator error beside another torch
    HAVE_SPANDREL = False


def srvgg_state(scale: int = 4, features: int = 16, convs: int = 2) -> dict[str, torch.Tensor]:
    """Real-ESRGAN's compact SRVGG layout with random weights: conv, PReLU, ..., conv to 3*scale²."""
    gen = torch.Generator().manual_seed(0)
    state, index, channels = {}, 0, 3
    for _ in range(convs + 1):
        state[f"body.{index}.weight"] = torch.randn(features, channels, 3, 3, generator=gen) * 0.05
        state[f"body.{index}.bias"] = torch.zeros(features)
        state[f"body.{index + 1}.weight"] = torch.full((features,), 0.25)
        index, channels = index + 2, features
    state[f"body.{index}.weight"] = torch.randn(3 * scale * scale, features, 3, 3, generator=gen) * 0.05
    state[f"body.{index}.bias"] = torch.zeros(3 * scale * scale)
    return state


def studio_sr_file(path, seed: int = 0):
    torch.manual_seed(seed)
    net = StudioSR(2, 8, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=net.metadata())
    return net.eval()


class Payload:
    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def installs(tmp_path):
    a1111 = tmp_path / "webui"
    (a1111 / "models" / "Stable-diffusion").mkdir(parents=True)
    (a1111 / "models" / "ESRGAN").mkdir()
    save_file(srvgg_state(), str(a1111 / "models" / "ESRGAN" / "4x-compact.safetensors"))
    comfy = tmp_path / "ComfyUI"
    studio_sr_file(comfy / "models" / "upscale_models" / "my-sr.safetensors")
    return a1111, comfy


def test_discovery_lists_upscalers_with_architecture_scale_and_hash(installs, capsys):
    a1111, comfy = installs
    found = {ref.name: ref for ref in find_upscalers(
        ModelLibrary([a1111, comfy], use_hf_cache=False))}
    assert (found["4x-compact"].architecture, found["4x-compact"].scale) == ("Real-ESRGAN compact (SRVGG)", 4)
    assert (found["my-sr"].architecture, found["my-sr"].scale) == ("studio-sr", 2)
    assert all(len(ref.hash) == 10 for ref in found.values())
    assert main(["models", "--dir", str(a1111), "--dir", str(comfy), "--kind", "upscaler", "--no-hf-cache"]) == 0
    out = capsys.readouterr().out
    assert "Real-ESRGAN compact (SRVGG) 4x" in out and "studio-sr 2x" in out and "upscaler" in out
    assert "studio-2x" in out  # the built-in one, shipped in studio/builtin/upscale_models


def test_a_users_studio_sr_file_upscales_through_the_library(installs):
    _, comfy = installs
    ref = resolve_upscaler("my-sr", ModelLibrary([comfy], use_hf_cache=False))
    image = Image.new("RGB", (20, 12), (200, 30, 30))
    assert upscale(image, ref, (40, 24)).size == (40, 24)
    assert upscale(image, ref, (70, 40)).size == (70, 40)  # twice 2x, then Lanczos to the exact size


@pytest.mark.skipif(not HAVE_SPANDREL, reason="spandrel (studio[upscalers]) is not importable here")
def test_a_spandrel_architecture_loads_through_discovery_and_scales_4x(installs):
    a1111, _ = installs
    ref = resolve_upscaler("4x-compact", ModelLibrary([a1111], use_hf_cache=False))
    out = upscale(Image.new("RGB", (16, 10), (0, 0, 255)), ref, (64, 40))
    assert out.size == (64, 40)
    net = load_network(ref)
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


@pytest.mark.skipif(HAVE_SPANDREL, reason="spandrel is installed")
def test_without_spandrel_a_user_network_is_a_one_line_error(installs):
    a1111, _ = installs
    ref = resolve_upscaler("4x-compact", ModelLibrary([a1111], use_hf_cache=False))
    with pytest.raises(RecipeError, match=r"pip install 'studio\[upscalers\]'") as info:
        load_network(ref)
    assert "\n" not in str(info.value)


def test_a_pickled_pth_upscaler_is_refused_and_its_payload_never_runs(tmp_path):
    folder = tmp_path / "models" / "ESRGAN"
    folder.mkdir(parents=True)
    marker = tmp_path / "pwned"
    payload = Payload()
    payload.marker = marker
    path = folder / "evil-4x.pth"
    torch.save({"params": srvgg_state(), "x": payload}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    library = ModelLibrary([tmp_path], use_hf_cache=False)
    (entry,) = [e for e in library.scan(hf_cache=False) if e.name == "evil-4x"]
    assert (entry.kind, entry.architecture) == ("upscaler", "pickle (not opened)")
    ref = resolve_upscaler("evil-4x", library)
    with pytest.raises(PickleRefused, match="is a pickle"):
        load_network(ref)
    with pytest.raises(PickleRefused, match="asks to run code"):
        load_network(ref, allow_pickle=True)
    assert not marker.exists()


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / mse) if mse else float("inf")


def shapes_image(size: int = 96) -> Image.Image:
    import numpy as np_

    from training.dataset import make_sample

    return make_sample(np_.random.default_rng(5), scale=size // 64 if size >= 64 else 1)[0].resize((size, size), Image.BOX)


def test_tiled_and_untiled_agree_above_35_db():
    net = load_network(resolve_upscaler("studio-2x")) if BUILTIN_UPSCALER_PATH.is_file() else StudioSR().eval()
    image = shapes_image(96)
    whole = upscale_tiled(net, image, 2, tile=4096)
    tiled = upscale_tiled(net, image, 2, tile=32)
    assert whole.size == tiled.size == (192, 192)
    assert psnr(whole, tiled) >= 35
    # studio-sr sees 10 pixels around each one (10 3x3 convs), less than the 16-pixel overlap: exact
    assert np.array_equal(np.asarray(whole), np.asarray(tiled))
    seams = upscale_tiled(net, image, 2, tile=32, overlap=0)
    assert not np.array_equal(np.asarray(whole), np.asarray(seams))  # without overlap the tiles show


def test_out_of_memory_halves_the_tile_until_it_fits():
    sizes = []

    def net(x):
        sizes.append(x.shape[-1])
        if x.shape[-1] > 40:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    image = shapes_image(64)
    out = upscale_tiled(net, image, 2, tile=128, overlap=4)
    assert out.size == (128, 128) and max(sizes) > 40 and sizes[-1] <= 40
    assert np.array_equal(np.asarray(out), np.asarray(image.resize((128, 128), Image.NEAREST)))


def test_unknown_upscaler_and_latent_outside_hires_are_one_line_errors():
    with pytest.raises(RecipeError, match="no upscaler named 'nope'"):
        resolve_upscaler("nope")
    with pytest.raises(RecipeError, match="works on latents"):
        upscale(Image.new("RGB", (8, 8)), resolve_upscaler("latent (bicubic)"), (16, 16))


def test_cli_upscale_writes_an_entry_naming_the_source_and_the_upscaler(tmp_path, capsys):
    from studio.iterate import file_hash
    from studio.store.session import SessionStore

    source = tmp_path / "shape.png"
    shapes_image(64).save(source)
    sessions = tmp_path / "s"
    code = main(["upscale", str(source), "--upscaler", "Lanczos", "--scale", "3", "--tile", "64",
                 "--sessions-dir", str(sessions), "--session", "up", "--quiet"])
    assert code == 0
    out = Image.open(capsys.readouterr().out.split()[0])
    assert out.size == (192, 192)
    assert "Postprocess upscaler: Lanczos" in out.info["parameters"]
    (entry,) = SessionStore(sessions).open("up", read_only=True).entries()
    recipe = entry.recipe
    assert (recipe.init_image, recipe.init_image_hash) == (str(source.resolve()), file_hash(source))
    assert (recipe.upscaler, recipe.upscale_scale, recipe.upscale_tile) == ("Lanczos", 3, 64)
    assert main(["upscale", str(source), "--upscaler", "Latent", "--sessions-dir", str(sessions)]) == 2
    assert "works on latents" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "none.png"), "--sessions-dir", str(sessions)]) == 2
    assert "source image" in capsys.readouterr().err


def test_inspect_shows_an_upscalers_kind_architecture_and_scale(installs, capsys):
    a1111, _ = installs
    assert main(["inspect", str(a1111 / "models" / "ESRGAN" / "4x-compact.safetensors"), "--json"]) == 0
    import json

    shown = json.loads(capsys.readouterr().out)
    assert (shown["kind"], shown["architecture"]) == ("upscaler", "Real-ESRGAN compact (SRVGG) 4x")


@pytest.mark.parametrize("changes, message", [
    ({"upscaler": "Lanczos"}, "an upscale needs a source image"),
    ({"upscale_scale": 9.0}, "upscale scale must be between 1 and 8"),
    ({"upscale_tile": 8}, "upscale tile must be between 32"),
    ({"upscaler": "Lanczos", "init_image": "a.png", "mask": "m.png"}, "an upscale has no hires fix or mask"),
])
def test_impossible_upscale_recipes_are_one_line_errors(changes, message):
    from studio.recipe import Recipe

    with pytest.raises(RecipeError, match=message):
        Recipe(prompt="", **changes)


# -- the upscale job: progress per tile, cancel between tiles --------------------------


def test_tiles_are_counted_across_passes_and_a_raise_stops_between_tiles():
    heard = []
    upscale(shapes_image(64), resolve_upscaler("studio-2x"), (256, 256), tile=32, on_tile=lambda *t: heard.append(t))
    assert heard == [(i, 4 + 16) for i in range(1, 21)]  # 2x2 tiles of 64 px, then 4x4 of the 128 px pass

    class Stop(Exception):
        pass

    def stop_at_3(done, total):
        heard.append(done)
        if done == 3:
            raise Stop

    calls = []
    net = load_network(resolve_upscaler("studio-2x"))
    heard.clear()
    with pytest.raises(Stop):
        upscale_tiled(lambda x: calls.append(1) or net(x), shapes_image(96), 2, tile=32, on_tile=stop_at_3)
    assert heard == [1, 2, 3] and len(calls) == 3  # no tile ran after the stop


def _upscale_on_engine(tmp_path, cancel_at: int | None):
    from studio.engine import events as ev
    from studio.engine.worker import LocalEngine
    from studio.upscale.job import upscale_recipe

    source = tmp_path / "shape.png"
    shapes_image(96).save(source)
    recipe = upscale_recipe(source, resolve_upscaler("studio-2x"), 2, tile=32, device="cpu")
    heard = []
    engine = None

    def listen(event):
        heard.append(event)
        if isinstance(event, ev.Progress) and event.step == cancel_at:
            engine.cancel(event.job_id)

    engine = LocalEngine(listen, reserve_core=False)
    try:
        engine.submit(recipe, tmp_path / "out", stem="up")
        assert engine.wait_idle(120)
    finally:
        engine.shutdown()
    return [e for e in heard if isinstance(e, ev.Progress)], heard[-1]


def test_the_upscale_job_reports_each_tile_and_finishes(tmp_path):
    from studio.engine import events as ev

    progress, final = _upscale_on_engine(tmp_path, cancel_at=None)
    assert [(p.step, p.total, p.stage) for p in progress] == [(i, 9, "upscale tiles") for i in range(1, 10)]
    assert isinstance(final, ev.Finished) and Image.open(final.paths[0]).size == (192, 192)


def test_cancel_stops_the_upscale_between_tiles(tmp_path):
    from studio.engine import events as ev

    progress, final = _upscale_on_engine(tmp_path, cancel_at=2)
    assert isinstance(final, ev.Cancelled) and final.step == 3, final  # the tile running at the cancel ends it
    assert [p.step for p in progress] == [1, 2]
    assert not list(tmp_path.glob("out/*.png"))  # nothing written


# -- spandrel's non-commercial architectures: off unless turned on --------------------


@pytest.fixture
def fake_extras(monkeypatch):
    """A stand-in `spandrel_extra_arches` (and `spandrel`, which does not import in this venv)."""
    import sys
    import types

    from studio.upscale import spandrel_net

    monkeypatch.setattr(spandrel_net, "_extras", {"wanted": False, "installed": False})
    log = []
    extras = types.ModuleType("spandrel_extra_arches")
    extras.install = lambda: log.append("install")

    class Descriptor:
        purpose, architecture = "SR", types.SimpleNamespace(name="fake")

        def eval(self):
            return self

    class Loader:
        def load_from_state_dict(self, weights):
            log.append("load")
            return Descriptor()

    fake = types.ModuleType("spandrel")
    fake.ImageModelDescriptor, fake.ModelLoader = Descriptor, Loader
    monkeypatch.setitem(sys.modules, "spandrel_extra_arches", extras)
    monkeypatch.setitem(sys.modules, "spandrel", fake)
    return log


def test_spandrel_extra_arches_are_installed_only_when_turned_on(fake_extras, tmp_path):
    from studio.upscale.spandrel_net import load_spandrel, use_extra_arches

    path = tmp_path / "4x.safetensors"
    save_file(srvgg_state(), str(path))
    load_spandrel(path)
    assert fake_extras == ["load"]  # off by default: the main registry only
    use_extra_arches(True)
    load_spandrel(path)
    load_spandrel(path)
    assert fake_extras == ["load", "install", "load", "load"]  # installed once, before loading


def test_the_cli_switch_and_the_config_key_turn_them_on(fake_extras, tmp_path, capsys, monkeypatch):
    source = tmp_path / "shape.png"
    shapes_image(64).save(source)
    args = ["upscale", str(source), "--upscaler", "Lanczos", "--sessions-dir", str(tmp_path / "s"), "--quiet"]
    assert main(args) == 0 and fake_extras == []
    assert main([*args, "--spandrel-extra-arches"]) == 0 and fake_extras == ["install"]
    from studio.upscale import spandrel_net

    monkeypatch.setattr(spandrel_net, "_extras", {"wanted": False, "installed": False})
    config = tmp_path / "config.toml"
    config.write_text("spandrel_extra_arches = true\n")
    monkeypatch.setenv("STUDIO_CONFIG", str(config))
    assert main(args) == 0 and fake_extras == ["install", "install"]
    capsys.readouterr()


def test_turned_on_without_the_package_is_a_one_line_error(fake_extras, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spandrel_extra_arches", None)  # import fails
    source = tmp_path / "shape.png"
    shapes_image(64).save(source)
    code = main(["upscale", str(source), "--spandrel-extra-arches", "--sessions-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install spandrel_extra_arches" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


@pytest.fixture
def config_says(fake_extras, monkeypatch, tmp_path, installs):
    """No face has set the switch yet; `config_says(on)` writes the config's, with the user's ESRGAN folder."""
    from studio.upscale import spandrel_net

    monkeypatch.setattr(spandrel_net, "_extras", {"wanted": None, "installed": False})
    a1111, _ = installs

    def write(on: bool):
        path = tmp_path / "config.toml"
        path.write_text(f"spandrel_extra_arches = {str(on).lower()}\nmodel_dirs = [{str(a1111)!r}]\n")
        monkeypatch.setenv("STUDIO_CONFIG", str(path))
        return ModelLibrary([a1111], use_hf_cache=False)

    return write


@pytest.mark.parametrize("on", [False, True])
def test_an_engine_no_face_set_the_switch_for_reads_the_configs(config_says, fake_extras, on):
    """The engine's upscale job and hires fix load a user's file through load_network (a Ray worker too)."""
    library = config_says(on)
    load_network(resolve_upscaler("4x-compact", library))
    assert fake_extras == (["install", "load"] if on else ["load"])


def test_generate_hires_with_a_users_file_honours_the_config_and_the_flag(config_says, fake_extras, tmp_path,
                                                                          capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spandrel_extra_arches", None)  # turned on, it cannot install
    args = ["generate", "a red circle", "--model", "studio-tiny", "--steps", "1", "--size", "64x64",
            "--hires", "2", "--hires-upscaler", "4x-compact", "--sessions-dir", str(tmp_path / "s"), "--quiet"]
    config_says(True)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pip install spandrel_extra_arches" in err and len(err.strip().splitlines()) == 1
    from studio.upscale import spandrel_net

    monkeypatch.setattr(spandrel_net, "_extras", {"wanted": None, "installed": False})
    config_says(False)
    assert main([*args, "--spandrel-extra-arches"]) == 2
    assert "pip install spandrel_extra_arches" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before anything was recorded


def test_the_tui_sets_the_switch_from_its_config(config_says, fake_extras, tmp_path):
    from studio.config import Config
    from studio.tui.app import make_app

    library = config_says(False)  # the file says no; the TUI's own config says yes
    app = make_app(tmp_path / "sessions", None, model="studio-tiny", graphics="halfcell",
                   config=Config(sessions_dir=tmp_path / "sessions", spandrel_extra_arches=True))
    app.studio.shutdown()  # the service, and the switch with it, are set up after the first frame
    assert fake_extras == []  # not installed at start: that imports torch
    load_network(resolve_upscaler("4x-compact", library))
    assert fake_extras == ["install", "load"]

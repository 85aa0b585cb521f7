"""The TUI offers only the samplers the form's model can use, and f11 cycles the live preview kind."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input, Select

from studio.samplers import SAMPLERS
from studio.tui.app import make_app
from tests.test_tui_support import IdleEngine, started, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def flow_model(root, name: str, dynamic: bool):
    """A model folder as discovery and the sampler table read it: its index and its scheduler config."""
    folder = root / name
    (folder / "scheduler").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline" if dynamic else "StableDiffusion3Pipeline"}))
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "use_dynamic_shifting": dynamic}))
    return folder


def offered(app) -> list[str]:
    return list(app.params._offered)


async def test_samplers_follow_the_model_and_a_dropped_one_is_said_once(tmp_path, tiny_model_dir):
    flux, sd3 = flow_model(tmp_path, "flux", True), flow_model(tmp_path, "sd3", False)
    app = make_app(tmp_path / "sessions", engine_factory=IdleEngine, graphics="halfcell", model=str(tiny_model_dir))
    notes: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        app.notify = lambda message, **kw: notes.append(str(message))
        select = app.query_one("#sampler", Select)
        select.value = "DPM++ 2M Karras"
        assert offered(app) == list(SAMPLERS)
        app.query_one("#model", Input).value = str(sd3)
        await wait_until(pilot, lambda: offered(app) == ["Euler", "Heun"])
        assert select.value == "Euler"
        assert len(notes) == 1 and "cannot use sampler 'DPM++ 2M Karras'" in notes[0] and "Euler or Heun" in notes[0]
        select.value = "Heun"
        app.query_one("#model", Input).value = str(flux)
        await wait_until(pilot, lambda: offered(app) == ["Euler"])
        assert select.value == "Euler" and "\n" not in notes[-1]
        app.query_one("#model", Input).value = str(tiny_model_dir)  # an SD model: every sampler again
        await wait_until(pilot, lambda: offered(app) == list(SAMPLERS))
        assert app.params.read(app.base).sampler == "Euler"


async def test_f11_cycles_the_live_preview(tmp_path, tiny_model_dir):
    app = make_app(tmp_path / "sessions", engine_factory=IdleEngine, graphics="halfcell", model=str(tiny_model_dir),
                   preview="taesd:taesdxl")
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        seen = [str(app.studio.preview)]
        for _ in range(4):
            await pilot.press("f11")
            seen.append(str(app.studio.preview))
        assert seen == ["taesd:taesdxl", "none", "x0", "latent", "taesd:taesdxl"]


async def test_stable_cascade_offers_only_its_own_scheduler(tmp_path, tiny_model_dir):
    from studio.samplers import DEFAULT_SAMPLER

    folder = tmp_path / "stable-cascade"
    (folder / "scheduler").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableCascadeDecoderPipeline"}))
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "DDPMWuerstchenScheduler"}))
    app = make_app(tmp_path / "sessions", engine_factory=IdleEngine, graphics="halfcell", model=str(tiny_model_dir))
    notes: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        app.notify = lambda message, **kw: notes.append(str(message))
        select = app.query_one("#sampler", Select)
        select.value = "Euler"
        app.query_one("#model", Input).value = str(folder)
        await wait_until(pilot, lambda: offered(app) == [DEFAULT_SAMPLER])
        assert [str(prompt) for prompt, _ in select._options] == ["DDPM-Wuerstchen (its own)"]
        assert len(notes) == 1 and "own scheduler (DDPM-Wuerstchen)" in notes[0] and "'Euler'" in notes[0]
        app.query_one("#model", Input).value = str(tiny_model_dir)  # an SD model: every sampler again
        await wait_until(pilot, lambda: offered(app) == list(SAMPLERS))
        assert [str(prompt) for prompt, _ in select._options] == list(SAMPLERS)
        assert app.params.read(app.base).sampler == DEFAULT_SAMPLER

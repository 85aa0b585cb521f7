"""The parameters pane's refiner and Stable Cascade prior fields, from the keyboard."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from studio.recipe import Recipe
from studio.tui.app import make_app
from tests.test_tui_support import IdleEngine, started, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


def idle_app(tmp_path, tiny_model_dir):
    engines = []

    def factory(on_event):
        engines.append(IdleEngine(on_event))
        return engines[-1]

    app = make_app(tmp_path / "sessions", None, engine_factory=factory, graphics="halfcell", model=str(tiny_model_dir))
    return app, engines


async def tab_to(pilot, app, widget_id: str) -> None:
    for _ in range(30):
        if app.focused is not None and app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached #{widget_id}")


async def retype(pilot, text: str) -> None:
    await pilot.press("end", *["backspace"] * 8, *text)


async def test_refiner_and_prior_fields_are_reached_by_tab_and_go_into_the_recipe(tmp_path, tiny_model_dir):
    app, engines = idle_app(tmp_path, tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        app.query_one("#prompt", TextArea).text = "a red circle"
        await pilot.press("alt+2")  # the parameters pane
        await tab_to(pilot, app, "refiner")
        await pilot.press(*"sdxl-refiner")
        await tab_to(pilot, app, "refiner-switch")
        await retype(pilot, "0.6")
        await tab_to(pilot, app, "prior-steps")
        await retype(pilot, "12")
        await tab_to(pilot, app, "prior-cfg")
        await retype(pilot, "3.5")
        await pilot.pause()
        assert app.params.scroll_y > 0  # the rows below the pane's six scrolled into view
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: engines and engines[0].submitted)
        recipe = engines[0].submitted[0][1]
        assert (recipe.refiner, recipe.refiner_switch, recipe.prior_steps, recipe.prior_cfg_scale) == (
            "sdxl-refiner", 0.6, 12, 3.5)


async def test_a_recipe_fills_the_fields_and_a_bad_switch_is_one_line(tmp_path, tiny_model_dir):
    app, engines = idle_app(tmp_path, tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await wait_until(pilot, lambda: app.params.ready)
        app.params.load(Recipe(prompt="x", model="sdxl-base", refiner="sdxl-refiner", refiner_switch=0.7,
                               prior_steps=9, prior_cfg_scale=2.0))
        assert app.query_one("#refiner", Input).value == "sdxl-refiner"
        assert app.query_one("#refiner-switch", Input).value == "0.7"
        assert app.query_one("#prior-steps", Input).value == "9"
        app.query_one("#refiner-switch", Input).value = "1.5"
        app.query_one("#prompt", TextArea).text = "a red circle"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not engines[0].submitted
        assert any("refiner switch" in n.message and "\n" not in n.message for n in app._notifications)

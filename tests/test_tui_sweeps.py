"""The sweep builder and a sweep's grid view, driven by the pilot on studio-tiny."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Label, TextArea

from studio.engine import LocalEngine
from studio.tui.app import make_app
from studio.tui.widgets.grid_view import GridView
from studio.tui.widgets.sweep_builder import SweepBuilder
from tests.test_tui_support import started, wait_until

SIZE = (120, 48)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app(tmp_path):
    engines = []

    def factory(on_event):
        engines.append(LocalEngine(on_event, reserve_core=False))
        return engines[-1]

    made = make_app(tmp_path / "sessions", None, engine_factory=factory, graphics="halfcell", model="studio-tiny")
    yield made
    for engine in engines:
        engine.shutdown(wait=True)


@pytest.mark.slow
async def test_build_a_sweep_see_its_count_run_it_and_branch_from_a_cell(app):
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.query_one("#prompt", TextArea).text = "a red circle"
        app.query_one("#steps", Input).value = "2"
        app.query_one("#size", Input).value = "64x64"
        await pilot.press("f10")
        builder = await wait_until(pilot, lambda: isinstance(app.screen, SweepBuilder) and app.screen)
        count = builder.query_one("#count", Label)
        await pilot.press(*"steps=1,2")
        await wait_until(pilot, lambda: "2 cells" in str(count.render()))
        await pilot.press("tab", *"sr=square,blue")
        await wait_until(pilot, lambda: "'square' is not in the prompt" in str(count.render()))
        await pilot.press("enter")  # refused: nothing runs while the count shows an error
        assert isinstance(app.screen, SweepBuilder)
        builder.query_one("#axis-y", Input).value = "sr=red,blue"
        await wait_until(pilot, lambda: "4 cells" in str(count.render()))
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SweepBuilder))
        cells = lambda: [e for e in app.session.entries() if e.sweep and "cells" not in e.sweep]  # noqa: E731
        await wait_until(pilot, lambda: len(cells()) == 4 and all(e.status == "done" for e in cells()), timeout=180)

        await pilot.press("alt+5", "g")
        grid = await wait_until(pilot, lambda: isinstance(app.screen, GridView) and app.screen)
        await wait_until(pilot, lambda: any(e.sweep and "cells" in e.sweep and e.status == "done"
                                            for e in app.session.entries()), timeout=60)  # the grid entry
        await pilot.press("right", "down")
        assert grid.at == [1, 1, 0]
        assert "blue" in grid.current.recipe.prompt and grid.current.recipe.steps == 2
        await pilot.press("right")  # the edge holds
        assert grid.at == [1, 1, 0]
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, GridView))
        assert app.query_one("#prompt", TextArea).text == "a blue circle"
        assert app.query_one("#steps", Input).value == "2"


def idle_engines():
    """An engine factory making IdleEngines (driven by hand), and the list of those it made."""
    from tests.test_tui_support import IdleEngine

    engines = []

    def factory(on_event):
        engines.append(IdleEngine(on_event))
        return engines[-1]

    return engines, factory


async def test_an_open_grid_view_follows_its_cells_and_the_queue_shows_where_each_cell_sits(tmp_path):
    """The engine is driven by hand (no model): cells start, step and finish while the grid is open."""
    from PIL import Image

    from studio.engine import events as ev
    from studio.recipe import Recipe
    from studio.sweeps.run import submit_sweep
    from studio.sweeps.sweep import Sweep

    engines, factory = idle_engines()
    app = make_app(tmp_path / "sessions", None, engine_factory=factory, graphics="halfcell", model="studio-tiny")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        sweep = Sweep.build(Recipe(prompt="a red circle", model="studio-tiny", width=64, height=64, steps=4),
                            "steps=4,5", "sr=red,blue")
        ids = submit_sweep(app.studio, sweep)

        def rows():
            return [str(o.prompt) for o in app.query_one("#queue-list").options]

        labels = [" · ".join(label for label in cell.labels if label) for cell in sweep.cells()]
        await wait_until(pilot, lambda: len(rows()) == 4)
        assert [row.splitlines()[1] for row in rows()] == [f"cell {label}" for label in labels]

        await pilot.press("alt+5", "g")
        grid = await wait_until(pilot, lambda: isinstance(app.screen, GridView) and app.screen)

        def text():
            return str(grid.query_one("#grid").render())

        assert text().count("queued") == 4
        (engine,) = engines
        recipe = sweep.cells()[0].recipe
        engine.on_event(ev.Started(ids[0], recipe))
        await pilot.pause(0.6)  # past the queue's repaint throttle
        engine.on_event(ev.Progress(ids[0], 2, 4, 1.0, 2.0))
        await wait_until(pilot, lambda: f"#{ids[0]} 2/4" in text())
        image = app.session.image_path("cell.png")
        Image.new("RGB", (64, 64)).save(image)
        engine.on_event(ev.Finished(ids[0], recipe, (image,), 1.0))
        await wait_until(pilot, lambda: f"#{ids[0]} done" in text() and text().count("queued") == 3)
        assert isinstance(app.screen, GridView)  # updated in place, never reopened


async def test_the_grid_is_drawn_when_the_last_cell_ends_with_the_grid_view_open(tmp_path):
    from PIL import Image

    from studio.engine import events as ev
    from studio.recipe import Recipe
    from studio.sweeps.run import submit_sweep
    from studio.sweeps.sweep import Sweep

    engines, factory = idle_engines()
    app = make_app(tmp_path / "sessions", None, engine_factory=factory, graphics="halfcell", model="studio-tiny")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        sweep = Sweep.build(Recipe(prompt="a red circle", model="studio-tiny", width=64, height=64, steps=4),
                            "steps=4,5", "")
        ids = submit_sweep(app.studio, sweep)
        await wait_until(pilot, lambda: len(app.query_one("#queue-list").options) == 2)
        await pilot.press("alt+5", "g")
        grid = await wait_until(pilot, lambda: isinstance(app.screen, GridView) and app.screen)
        await pilot.pause(0.3)  # the view's own attempt: the cells are still queued, so no grid yet

        def grids():
            return [e for e in app.session.entries() if e.sweep and "cells" in e.sweep]

        assert grids() == []
        (engine,) = engines
        for i, (job_id, cell) in enumerate(zip(ids, sweep.cells())):
            image = app.session.image_path(f"cell{i}.png")
            Image.new("RGB", (64, 64), (80 * i, 0, 0)).save(image)
            engine.on_event(ev.Started(job_id, cell.recipe))
            engine.on_event(ev.Finished(job_id, cell.recipe, (image,), 1.0))
            await pilot.pause(0.1)
            if i == 0:
                await pilot.pause(0.3)
                assert grids() == []  # one cell still queued
        done = await wait_until(pilot, lambda: [g for g in grids() if g.status == "done"], timeout=30)
        assert len(done) == 1 and done[0].images and app.session.image_path(done[0].images[0]).is_file()
        assert app.screen is grid  # drawn with the view open, not on opening it
        await pilot.pause(0.3)
        assert len(grids()) == 1  # drawn once

"""The TUI's generate draws `__name__` and `{a|b}` from each job's seed, as `studio generate` does."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from studio.config import Config
from studio.sweeps.wildcards import Wildcards, resolve_prompts
from studio.tui.app import make_app
from tests.test_tui_support import IdleEngine, started, wait_until

SIZE = (120, 48)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def app_on(tmp_path, engines):
    folder = tmp_path / "wildcards"
    folder.mkdir(exist_ok=True)
    (folder / "colours.txt").write_text("red\ngreen\nblue\nyellow\npurple\n", encoding="utf-8")

    def factory(on_event):
        engines.append(IdleEngine(on_event))
        return engines[-1]

    config = Config(sessions_dir=tmp_path / "sessions", wildcard_dirs=[folder])
    app = make_app(tmp_path / "sessions", None, engine_factory=factory, graphics="halfcell",
                   model="studio-tiny", config=config)
    return app, folder


async def test_generate_draws_wildcards_per_seed_and_records_the_template(tmp_path):
    engines: list[IdleEngine] = []
    app, folder = app_on(tmp_path, engines)
    template = "a __colours__ {circle|square|triangle}"
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.query_one("#prompt", TextArea).text = template
        app.query_one("#seed", Input).value = "7"
        app.query_one("#count", Input).value = "6"
        await pilot.press("ctrl+g")
        entries = await wait_until(pilot, lambda: len(app.session.entries()) == 6 and app.session.entries())
        (engine,) = engines
        wildcards = Wildcards([folder])
        for entry, (_, ran) in zip(entries, engine.submitted):
            expected, recorded = resolve_prompts(entry.recipe.replace(prompt=template), wildcards)
            assert entry.template == recorded == template
            assert entry.recipe.prompt == ran.prompt == expected.prompt
            assert "__" not in ran.prompt and "{" not in ran.prompt
        assert len({ran.prompt for _, ran in engine.submitted}) > 1  # each seed draws its own


async def test_a_missing_wildcard_file_is_a_notice_and_nothing_is_queued(tmp_path):
    engines: list[IdleEngine] = []
    app, _ = app_on(tmp_path, engines)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.query_one("#prompt", TextArea).text = "a __colours__ __shapes__"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: any("shapes.txt" in n.message for n in app._notifications))
        await pilot.pause(0.2)
        assert app.session.entries() == []
        assert all(not engine.submitted for engine in engines)

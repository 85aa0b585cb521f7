"""Snapshots of the main layouts at two terminal sizes (pytest-textual-snapshot).

The images are fixed gradients (no torch), the renderer is pinned to half-cells,
cursors do not blink, and the seed field is set, so the pictures are stable.
Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from studio.tui.app import make_app
from tests.test_tui_support import SNAP_SEED, IdleEngine, seeded_session, started, wait_until

SIZES = [pytest.param((100, 30), id="100x30"), pytest.param((160, 45), id="160x45")]


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def app(tmp_path):
    seeded_session(tmp_path / "sessions", "snap", count=3)
    return make_app(
        tmp_path / "sessions", "snap", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny"
    )


async def settle(pilot):
    """Wait for thumbnails and the image renderer, then pin the random seed."""
    await started(pilot)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    pilot.app.query_one("#seed", Input).value = str(SNAP_SEED)
    pilot.app.query_one("#prompt", TextArea).text = "a lighthouse at night, long exposure"
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_main_layout(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_main_layout_at_80x24(snap_compare, app):
    """The commonest terminal: every field readable, the longest sampler name and a ten-digit seed whole."""

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.query_one("#seed", Input).value = "4294967295"
        pilot.app.query_one("#sampler").value = "DPM++ 2M SDE Karras"
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_compare_screen(snap_compare, app, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("alt+5", "c", "down", "c")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_resume_dialog(snap_compare, tmp_path, monkeypatch):
    import studio.store.session as store_module
    from studio.recipe import Recipe

    session = seeded_session(tmp_path / "sessions", "snap", count=1)
    monkeypatch.setattr(store_module, "_OWNER", "another-host:1")
    session.queue(Recipe(prompt="left behind by a crash", seed=5))
    monkeypatch.undo()
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)
    app = make_app(tmp_path / "sessions", "snap", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")

    async def offered(pilot):  # the offer comes once the session is read and the service built, after the first frame
        from studio.tui.widgets.resume import ResumeDialog

        await settle(pilot)
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ResumeDialog))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=offered)

"""Snapshots of the gallery and the session browser at 80×24 and 160×45.

Fixed gradients, half-cells, no cursor blink, and a fixed clock while the
sessions are written (the status line and the browser show dates).
Update after an intended change with `pytest tests/test_tui_gallery_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import itertools

import pytest
from textual.widgets import Input, TextArea

import studio.store.folders as folders_module
import studio.store.session as store_module
from studio.tui.app import make_app
from studio.tui.widgets.gallery import GalleryScreen
from studio.tui.widgets.sessions_browser import SessionsScreen
from tests.test_tui_support import IdleEngine, seeded_session, started, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 45), id="160x45")]


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def app(tmp_path, monkeypatch):
    ticks = itertools.count()
    with monkeypatch.context() as clock:
        fixed = lambda: f"2026-11-0{1 + next(ticks) // 20}T10:{next(ticks) % 60:02d}:00.000Z"  # noqa: E731
        clock.setattr(store_module, "now_iso", fixed)  # the records' times
        clock.setattr(folders_module, "now_iso", fixed)  # the header's
        root = tmp_path / "sessions"
        seeded_session(root, "autumn", count=3)
        seeded_session(root, "winter", count=3)
    return make_app(root, "autumn", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")


async def settled_gallery(pilot):
    await started(pilot)
    await pilot.app.workers.wait_for_complete()
    await pilot.press("ctrl+l")
    gallery = await wait_until(pilot, lambda: isinstance(pilot.app.screen, GalleryScreen) and pilot.app.screen)
    await wait_until(pilot, lambda: gallery.first_page_at is not None and len(gallery.thumbs) == gallery.total)
    await pilot.press("right")
    await wait_until(pilot, gallery.grid.pictures_ready)  # rendered on a thread
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_gallery(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=settled_gallery)


@pytest.mark.parametrize("size", SIZES)
def test_session_browser(snap_compare, app, size):
    async def run_before(pilot):
        await started(pilot)
        await pilot.app.workers.wait_for_complete()
        await pilot.press("ctrl+b")
        browser = await wait_until(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen) and pilot.app.screen)
        await wait_until(pilot, lambda: len(browser.strips) == 2)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)

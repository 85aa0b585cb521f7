"""The window paints and works while a long session is still being read (studio/tui/session_loading.py).

The read is held back by a gate rather than made slow by size, so the tests
are quick and the order of events is fixed.
"""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Input, TextArea

from studio.recipe import Recipe
from studio.service import Studio
from studio.store.session import SessionStore, now_iso, record_bytes
from studio.tui.app import make_app
from tests.test_tui_support import IdleEngine, seeded_session, wait_until

SIZE = (120, 40)
ENTRIES = 400  # more than the preview reads from the end of the file
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


def big_session(root, name="big"):
    session = seeded_session(root, name, count=2)
    chunks = []
    for entry_id in range(3, ENTRIES + 1):
        recipe = Recipe(prompt=f"entry {entry_id}", model="studio-tiny", seed=entry_id, width=64, height=64).to_dict()
        chunks.append(record_bytes({"id": entry_id, "kind": "queued", "time": now_iso(), "recipe": recipe}))
        chunks.append(record_bytes({"id": entry_id, "kind": "cancelled", "time": now_iso(), "reason": "test"}))
    with open(session.file, "ab") as handle:
        handle.write(b"".join(chunks))
    return session


@pytest.fixture
def gate(monkeypatch):
    """Studio.load_session waits until the test opens the gate."""
    opened = threading.Event()
    load = Studio.load_session

    def held(self):
        assert opened.wait(60)
        return load(self)

    monkeypatch.setattr(Studio, "load_session", held)
    yield opened
    opened.set()


async def test_the_window_paints_and_takes_work_while_a_big_session_loads(tmp_path, gate):
    big_session(tmp_path / "sessions")
    app = make_app(tmp_path / "sessions", "big", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")
    async with app.run_test(size=SIZE) as pilot:
        history = app.history
        await wait_until(pilot, lambda: app.first_paint_at and app.params.ready and history._shown)
        assert app.loading and not app.session.loaded
        assert "loading ~" in history.border_subtitle
        assert app.status_bar.state == "reading session..."
        shown = [int(row_id) for row_id, _ in history._shown]
        assert shown[0] == ENTRIES and 10 < len(shown) < ENTRIES  # the newest first, from the tail
        assert app.history.highlighted_id == ENTRIES

        await pilot.press("f1", *"a fox", "ctrl+g")  # type a prompt and generate
        await pilot.press("alt+5", "f")  # star the newest entry
        await pilot.pause()
        assert app.prompt_pane.prompt.endswith("a fox")
        assert app.engine is None  # started once the session is read (its import of torch would slow the read)
        assert app.image_class is None and not app._graphics_asked  # the renderers' import waits likewise
        assert app.loading

        gate.set()
        await wait_until(pilot, lambda: not app.loading)
        assert app.status_bar.state != "reading session..."
        await wait_until(pilot, lambda: app.image_class is not None)
        await wait_until(pilot, lambda: app.engine.submitted)
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "session-writes"])
        await wait_until(pilot, lambda: len(history._entries) == ENTRIES + 1)
        assert [e.id for e in history._entries] == list(range(1, ENTRIES + 2))  # every entry, and the new one
        assert history._entries[-1].recipe.prompt.endswith("a fox")
        assert "loading" not in history.border_subtitle
        reread = SessionStore(tmp_path / "sessions").open("big")
        assert reread.get(ENTRIES).favourite and reread.get(ENTRIES + 1).status == "queued"


async def test_once_read_the_history_keeps_the_newest_rows_it_showed_and_adds_the_rest(tmp_path, gate):
    from studio.tui.widgets.history import LIMIT

    big_session(tmp_path / "sessions")
    app = make_app(tmp_path / "sessions", "big", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")
    async with app.run_test(size=SIZE) as pilot:
        history = app.history
        await wait_until(pilot, lambda: app.first_paint_at and history._shown)
        before, listed = list(history._shown), history.option_list
        options = [listed.get_option_at_index(i) for i in range(len(before))]
        gate.set()
        await wait_until(pilot, lambda: not app.loading and len(history._shown) > len(before))
        after = history._shown
        assert len(after) == listed.option_count == LIMIT < ENTRIES
        assert [row_id for row_id, _ in after[: len(before)]] == [row_id for row_id, _ in before]
        assert all(new is old for (_, new), (_, old) in zip(after, before))  # not formatted again
        assert all(listed.get_option_at_index(i) is option for i, option in enumerate(options))  # nor listed again
        assert listed.highlighted == 0 and history.highlighted_id == ENTRIES


async def test_the_resume_offer_comes_once_the_session_is_read(tmp_path, gate, monkeypatch):
    import studio.store.session as store_module
    from studio.tui.widgets.resume import ResumeDialog

    session = big_session(tmp_path / "sessions", "crashed")
    with monkeypatch.context() as patched:  # queued by a process that is gone
        patched.setattr(store_module, "_OWNER", "another-host:1")
        session.queue(Recipe(prompt="left behind", model="studio-tiny", width=64, height=64))
    app = make_app(tmp_path / "sessions", "crashed", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.first_paint_at and app.history._shown)
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ResumeDialog) and app.loading
        gate.set()
        await wait_until(pilot, lambda: isinstance(app.screen, ResumeDialog))


async def test_a_session_that_cannot_be_read_closes_the_window_with_its_one_line(tmp_path, gate):
    session = big_session(tmp_path / "sessions")
    with open(session.file, "ab") as handle:
        handle.write(record_bytes({"id": 3, "kind": "mark", "time": now_iso(), "rating": 9}))
    app = make_app(tmp_path / "sessions", "big", engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.first_paint_at)
        gate.set()
        await wait_until(pilot, lambda: app.return_code == 1)
    assert app.return_code == 1

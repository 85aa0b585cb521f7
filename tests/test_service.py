"""The headless service: record first, then run; record every outcome; hand each event on.

The engine here is a test double that plugs into the `Engine` protocol and
finishes jobs on its own thread, the way the real one reports them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from studio.engine import Engine, Listener
from studio.engine import events as ev
from studio.formats.png import save_png
from studio.models.library import ModelLibrary
from studio.recipe import Recipe
from studio.service import RecordFailed, Studio
from studio.store.session import SessionError, SessionStore
from tests.test_tui_support import IdleEngine


class ScriptedEngine(IdleEngine):
    """Finishes every job on a thread: Started, one Progress, then a real PNG and Finished."""

    def __init__(self, on_event: Listener, fail: set[str] = frozenset()) -> None:
        super().__init__(on_event)
        self.fail = fail
        self.stems: list[str] = []
        self.threads: list[threading.Thread] = []

    def submit(self, recipe: Recipe, out_dir: Path, stem: str | None = None, job_id: str | None = None) -> str:
        assert job_id is not None and stem is not None  # the service names every job after its entry
        self.stems.append(stem)
        super().submit(recipe, out_dir, stem, job_id)
        thread = threading.Thread(target=self._run, args=(job_id, recipe, Path(out_dir) / f"{stem}.png"))
        self.threads.append(thread)
        thread.start()
        return job_id

    def _run(self, job_id: str, recipe: Recipe, path: Path) -> None:
        self.on_event(ev.Started(job_id, recipe.replace(device="cpu", dtype="float32")))
        self.on_event(ev.Progress(job_id, 1, 1, 10.0, 0.0))
        if job_id in self.fail:
            self.on_event(ev.Failed(job_id, "the model is missing its VAE"))
            return
        made = recipe.replace(device="cpu", dtype="float32", model_hash="abcdef0123")
        save_png(Image.new("RGB", (8, 8)), path, made)
        self.on_event(ev.Finished(job_id, made, (path,), 0.5))

    def wait_idle(self, timeout: float | None = None) -> bool:
        for thread in self.threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self.threads)

    def shutdown(self, wait: bool = True) -> None:
        self.wait_idle()


def test_the_double_is_an_engine():
    engine: Engine = ScriptedEngine(lambda event: None)  # type-checks against the protocol
    assert callable(engine.submit) and callable(engine.shutdown)


@pytest.fixture
def session(tmp_path):
    return SessionStore(tmp_path / "sessions").create("s")


def make(session, **engine_options) -> tuple[Studio, list[ScriptedEngine], list[ev.Event]]:
    engines: list[ScriptedEngine] = []
    heard: list[ev.Event] = []

    def factory(listener: Listener) -> Engine:
        engines.append(ScriptedEngine(listener, **engine_options))
        return engines[-1]

    studio = Studio(session, ModelLibrary(use_hf_cache=False), engine_factory=factory)
    studio.subscribe(heard.append)
    return studio, engines, heard


def test_a_job_is_recorded_before_the_engine_sees_it_then_finished(session):
    studio, engines, heard = make(session)
    seen_at_submit: list[str] = []
    studio.subscribe(lambda event: isinstance(event, ev.Queued) and seen_at_submit.append(
        session.get(int(event.job_id)).status))
    job_id = studio.submit(Recipe(prompt="a red circle", seed=5, width=64, height=64))
    assert studio.wait_idle(5)
    assert seen_at_submit == ["queued"]  # the record existed when the engine queued it
    entry = session.get(int(job_id))
    assert entry.status == "done" and entry.images == (f"{entry.stem}.png",)
    assert entry.model_hash == "abcdef0123" and entry.device == "cpu"
    kinds = [type(e).__name__ for e in heard]
    assert kinds == ["Ready", "Queued", "Started", "Progress", "Finished"]
    assert engines[0].submitted[0][0] == job_id and engines[0].stems == [entry.stem]


def test_the_engine_is_built_once_and_only_when_needed(session):
    studio, engines, _ = make(session)
    assert engines == [] and studio.engine is None  # the TUI paints before this
    studio.start()
    studio.start()
    studio.submit(Recipe(prompt="x", width=64, height=64))
    assert len(engines) == 1


def test_a_series_counts_seeds_on_by_batch_size(session):
    studio, engines, _ = make(session)
    ids = studio.submit_series(Recipe(prompt="x", seed=10, batch_size=3, width=64, height=64), 3)
    studio.wait_idle(5)
    assert [r.seed for _, r in engines[0].submitted] == [10, 13, 16]
    assert [session.get(int(i)).recipe.seed for i in ids] == [10, 13, 16]


def test_failures_are_recorded_and_forwarded(session):
    studio, engines, heard = make(session, fail={"1"})
    studio.submit(Recipe(prompt="x", width=64, height=64))
    studio.wait_idle(5)
    entry = session.get(1)
    assert entry.status == "failed" and entry.reason == "the model is missing its VAE"
    assert isinstance(heard[-1], ev.Failed)


def test_a_record_that_cannot_be_written_is_an_event_not_silence(session, monkeypatch):
    studio, engines, heard = make(session)

    def full_disk(*args, **kwargs):
        raise SessionError(f"{session.file}: cannot write (No space left on device)")

    studio.submit(Recipe(prompt="x", width=64, height=64))
    monkeypatch.setattr(session, "start", full_disk)
    monkeypatch.setattr(session, "finish", full_disk)
    studio.wait_idle(5)
    failed = [e for e in heard if isinstance(e, RecordFailed)]
    assert failed and "No space left on device" in failed[0].reason
    assert isinstance(heard[-1], ev.Finished)  # the face still hears the outcome


def test_a_listener_that_raises_stops_neither_the_record_nor_the_others(session):
    studio, engines, heard = make(session)

    def broken(event):
        raise RuntimeError("a face's bug")

    studio.subscribe(broken)
    late: list[ev.Event] = []
    studio.subscribe(late.append)
    studio.submit(Recipe(prompt="x", width=64, height=64))
    studio.wait_idle(5)
    assert session.get(1).status == "done"
    assert [type(e).__name__ for e in late] == ["Ready", "Queued", "Started", "Progress", "Finished"]


def test_resume_runs_an_entry_under_its_own_id_and_abandon_closes_it(session):
    left = session.queue(Recipe(prompt="left behind", seed=1, width=64, height=64))
    other = session.queue(Recipe(prompt="not wanted", seed=2, width=64, height=64))
    studio, engines, _ = make(session)
    assert studio.resume([left]) == [str(left.id)]
    studio.abandon([other])
    studio.wait_idle(5)
    assert engines[0].submitted[0][0] == str(left.id) and engines[0].stems == [left.stem]
    assert session.get(left.id).status == "done"
    assert session.get(other.id).status == "cancelled"
    assert [e.id for e in session.entries()] == [left.id, other.id]  # no new entry


def test_a_read_only_session_refuses_to_queue_and_records_nothing(tmp_path):
    store = SessionStore(tmp_path / "sessions")
    store.create("ro")
    session = store.open("ro", read_only=True)
    studio, engines, _ = make(session)
    with pytest.raises(SessionError):
        studio.submit(Recipe(prompt="x", width=64, height=64))
    assert engines == [] or engines[0].submitted == []


def test_switching_the_session_keeps_the_engine_and_records_into_the_new_one(session):
    studio, engines, _ = make(session)
    studio.submit(Recipe(prompt="before", seed=1, width=64, height=64))
    assert studio.wait_idle(5)
    before = session.file.read_bytes()
    other = SessionStore(session.path.parent).create("other")
    studio.switch_session(other)
    job_id = studio.submit(Recipe(prompt="after", seed=2, width=64, height=64))
    assert studio.wait_idle(5)
    assert len(engines) == 1  # the same engine: its loaded pipelines stay
    entry = other.get(int(job_id))
    assert entry.status == "done" and (other.path / entry.images[0]).is_file()
    assert session.file.read_bytes() == before and [e.recipe.prompt for e in session.entries()] == ["before"]
    assert [h.key for h in studio.index.search("after")] == [f"other:{job_id}"]


def test_a_switch_or_a_rename_is_refused_while_a_job_of_the_open_session_is_queued(session):
    from studio.service import SessionBusy

    studio = Studio(session, ModelLibrary(use_hf_cache=False), engine_factory=IdleEngine)  # nothing ever ends
    studio.submit(Recipe(prompt="still queued", seed=1, width=64, height=64))
    other = SessionStore(session.path.parent).create("other")
    with pytest.raises(SessionBusy, match="1 job queued or running; let it finish or cancel"):
        studio.switch_session(other)
    with pytest.raises(SessionBusy):
        studio.rename_session("renamed")
    assert studio.session is session and session.path.is_dir() and studio.out_dir == session.path


def test_renaming_the_open_session_keeps_writing_into_the_renamed_folder(session):
    studio, _, _ = make(session)
    studio.submit(Recipe(prompt="before", seed=1, width=64, height=64))
    assert studio.wait_idle(5)
    old = session.path
    folder = studio.rename_session("renamed")
    assert folder == old.parent / "renamed" and not old.exists()
    assert studio.session is session and session.name == "renamed" and studio.out_dir == folder
    job_id = studio.submit(Recipe(prompt="after", seed=2, width=64, height=64))
    assert studio.wait_idle(5)
    again = SessionStore(old.parent).open("renamed", read_only=True)
    assert [e.recipe.prompt for e in again.entries()] == ["before", "after"]
    assert (folder / again.get(int(job_id)).images[0]).is_file() and not old.exists()
    with pytest.raises(SessionError, match="bad session name"):
        studio.rename_session("no/slashes")
    assert session.path == folder

"""The headless studio: one session, one model library, one engine, wired together once.

Both faces use it: the CLI adds a progress bar, the TUI adds widgets. The
service records every job in the session *before* the engine sees it, so a
crash or a dropped SSH connection leaves a record of what was still to do;
then it records each event the engine reports and hands it on to its
subscribers. Nothing else wires an engine to a session.

Subscribers are called on the engine's worker thread (and, for `Queued` and a
job cancelled while queued, on the caller's): a face hands each event to its
own thread before it touches a widget or a terminal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine import events as ev
from studio.engine.preview_choice import PreviewChoice
from studio.engine.protocol import Engine, EngineFactory, Listener
from studio.errors import first_line
from studio.models.library import ModelLibrary
from studio.recipe import Recipe
from studio.store.session import Entry, Session, SessionError

if TYPE_CHECKING:
    from studio.review.index import ReviewIndex

log = logging.getLogger("studio.service")


@dataclass(frozen=True)
class RecordFailed(ev.Event):
    """Not from the engine: the session file could not be written (a full disk, a lost mount)."""

    reason: str


class SessionBusy(SessionError):
    """The open session still has jobs queued or running in this process."""


class Studio:
    """Make images into a session. `start()` builds the engine (the TUI does it after its first paint).

    `engine_factory(listener)` builds the engine; by default a `LocalEngine` on
    `library`. `out_dir` is where images go (default: the session folder).
    `index` is the review index kept up to date with every record (default:
    the one for the session's sessions folder).
    """

    def __init__(
        self,
        session: Session,
        library: ModelLibrary,
        *,
        engine_factory: EngineFactory | None = None,
        out_dir: Path | None = None,
        cache_size: int = 1,
        previews: bool | str = False,
        reserve_core: bool = True,
        index: ReviewIndex | None = None,
    ) -> None:
        self.session = session
        self.library = library
        self._own_out_dir = out_dir is None  # images go into the session folder, whichever session is open
        self.out_dir = Path(out_dir) if out_dir is not None else session.path
        self.engine: Engine | None = None
        self._factory = engine_factory or self._local_engine
        self._engine_options = {"cache_size": max(cache_size, 1), "previews": previews, "reserve_core": reserve_core}
        self._listeners: list[Listener] = []
        self._entries: dict[str, int] = {}  # job id -> session entry id, for the jobs this service runs
        self._lock = threading.Lock()  # guards _entries; never held while calling out
        self._starting = threading.Lock()  # one engine, even if two threads start it
        self._index_lock = threading.Lock()
        self._index = index
        # What a crash left behind: stray temp files go, finished images are adopted.
        # A session opened with load=False is recovered by `load_session`.
        self.recovered: list[str] = session.recover() if session.loaded else []

    def load_session(self) -> list[str]:
        """Read a session opened with `load=False`, then recover it as opening it would
        have; the recovery notes (also `recovered`). Any thread; SessionError if unreadable."""
        self.session.load()
        self.recovered = self.session.recover()
        return self.recovered

    def switch_session(self, session: Session) -> None:
        """Make images into `session` from now on, keeping the engine and its loaded pipelines.

        Refused (SessionBusy, one line) while jobs of the open session are queued or
        running: their records belong to it, and a switch that waited for them would leave
        the window on a session it is about to leave. A session opened with `load=False`
        is read (and recovered) by `load_session`, as at start."""
        self._refuse_while_busy("opening another")
        if session.path.parent != self.session.path.parent:
            with self._index_lock:
                self._index = None  # another sessions folder, another index
        self.session = session
        if self._own_out_dir:
            self.out_dir = session.path
        self.recovered = session.recover() if session.loaded else []

    def rename_session(self, new_name: str) -> Path:
        """Rename the open session's folder (studio.review.sessions) and keep writing into it
        under its new name; its new folder. Refused like `switch_session` while its jobs run."""
        from studio.review.sessions import rename_session

        self._refuse_while_busy("renaming it")
        folder = self.session.relocate(lambda path: rename_session(path.parent, path.name, new_name))
        if self._own_out_dir:
            self.out_dir = folder
        self._reindex()
        return folder

    def _refuse_while_busy(self, what: str) -> None:
        with self._lock:
            jobs = len(self._entries)
        if jobs:
            raise SessionBusy(f"session {self.session.name} has {jobs} job{'s' if jobs != 1 else ''} queued or "
                              f"running; let {'them' if jobs != 1 else 'it'} finish or cancel before {what}")

    @property
    def index(self) -> ReviewIndex:
        """Made when first used: SQLite and the cache folder are not needed for the TUI's first frame."""
        with self._index_lock:  # the worker thread's first record and the face may both ask
            if self._index is None:
                from studio.review.index import ReviewIndex

                self._index = ReviewIndex(self.session.path.parent, notice=log.info)
            return self._index

    def _local_engine(self, listener: Listener) -> Engine:
        from studio.engine.worker import LocalEngine

        return LocalEngine(listener, library=self.library, **self._engine_options)

    # -- wiring ---------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Hear every event, after the session has recorded it. Subscribe before `start()`."""
        self._listeners.append(listener)

    def start(self) -> Engine:
        """Build the engine now (idempotent); torch loads on its thread, not the caller's."""
        with self._starting:  # an engine may report (Ready) from inside its constructor
            if self.engine is None:
                self.engine = self._factory(self._on_event)
            return self.engine

    def shutdown(self, wait: bool = True) -> None:
        """Cancel every job and stop the engine; `wait` blocks until the running step ends."""
        if self.engine is not None:
            self.engine.shutdown(wait=wait)
        self.session.save_snapshot()  # a big session's next open starts from its fold (studio.store.snapshot)

    @property
    def preview(self) -> PreviewChoice:
        """The live preview kind (str() spells it as the config does)."""
        from studio.engine.preview_choice import parse_preview

        return parse_preview(self._engine_options["previews"])

    def set_preview(self, previews: bool | str | PreviewChoice) -> None:
        """The live preview kind from the next step on (studio/engine/preview_choice.py); ValueError if unknown.

        Applies to an engine that draws previews here (LocalEngine); kept for the engine built later."""
        from studio.engine.preview_choice import parse_preview

        previews = parse_preview(previews)  # a bad kind is refused here, in one line
        self._engine_options["previews"] = previews
        setter = getattr(self.engine, "set_preview", None)  # not in the Engine protocol: a remote engine may not preview
        if setter is not None:
            setter(previews)

    # -- making images ---------------------------------------------------------

    def submit(self, recipe: Recipe, sweep: dict[str, Any] | None = None, template: str = "") -> str:
        """Record `recipe` as queued, then queue it; returns its job id (the entry id as text).

        `sweep` tags a sweep's cell (studio.sweeps), `template` is the prompt before its wildcards."""
        entry = self.session.queue(recipe, sweep=sweep, template=template)
        self._reindex()
        return self._run(entry, recipe)

    def submit_series(self, recipe: Recipe, count: int) -> list[str]:
        """`count` jobs with seeds counting on from the recipe's (see `Recipe.series`)."""
        return [self.submit(each) for each in recipe.series(count)]

    def resume(self, entries: Iterable[Entry]) -> list[str]:
        """Run entries a crashed run left unfinished, under their own ids and file names.

        A sweep's grid entry is drawn from its cells (studio.sweeps.run.finish_sweeps), and a
        contact sheet from other entries (studio.review.sheet): neither is ever run."""
        return [self._run(entry, entry.recipe) for entry in entries
                if not (entry.sweep and "cells" in entry.sweep) and entry.sheet is None]

    def abandon(self, entries: Iterable[Entry], reason: str = "left unfinished by an earlier run; not resumed") -> None:
        """Close entries a crashed run left unfinished, without running them."""
        for entry in entries:
            self.session.cancel(entry.id, reason)

    def preload(self, recipe: Recipe) -> None:
        """Load the recipe's model now, so the first image starts at once."""
        self.start().preload(recipe)

    def cancel(self, job_id: str) -> bool:
        return self.engine is not None and self.engine.cancel(job_id)

    def cancel_all(self) -> None:
        if self.engine is not None:
            self.engine.cancel_all()

    def pending(self) -> list[str]:
        return self.engine.pending() if self.engine is not None else []

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self.engine is None or self.engine.wait_idle(timeout)

    def _run(self, entry: Entry, recipe: Recipe) -> str:
        job_id = str(entry.id)
        with self._lock:
            self._entries[job_id] = entry.id
        self.start().submit(recipe, self.out_dir, stem=entry.stem, job_id=job_id)
        return job_id

    # -- the record -------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        try:
            if self._record(event):
                self._reindex()
        except Exception as exc:  # a full disk must not silence the engine's events
            log.exception("cannot record %r", event)
            self._emit(RecordFailed(event.job_id, first_line(exc)))
        self._emit(event)

    def _record(self, event: ev.Event) -> bool:
        """Append what `event` means to the session; whether anything was appended."""
        final = isinstance(event, (ev.Finished, ev.Failed, ev.Cancelled))
        with self._lock:
            entry_id = self._entries.pop(event.job_id, None) if final else self._entries.get(event.job_id)
        if entry_id is None:
            return False  # a preload, or the engine itself (Ready, a failed start)
        session = self.session
        match event:
            case ev.Started():
                session.start(entry_id)
            case ev.Finished(recipe=recipe, paths=paths, seconds=seconds):
                images = [image_name(path, session.path) for path in paths]
                session.finish(entry_id, recipe, images, round(seconds, 3))
            case ev.Failed(reason=reason):
                session.fail(entry_id, reason)
            case ev.Cancelled(step=step):
                session.cancel(entry_id, f"cancelled at step {step}" if step else "cancelled while queued")
            case _:
                return False
        return True

    def index_session(self) -> None:
        """Bring the review index up to date with this session now (any thread)."""
        self._reindex()

    def _reindex(self) -> None:
        """Tell the review index what was just recorded; its failure never fails a job."""
        try:
            self.index.update_session(self.session.path, live=self.session)
        except Exception as exc:  # a busy or unwritable cache: search catches up on its next update
            log.warning("review index not updated: %s", first_line(exc))

    def _emit(self, event: ev.Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # one face's bug must not stop the record or the other faces
                log.exception("listener failed on %r", event)


def image_name(path: Path, session_dir: Path) -> str:
    """Names relative to the session folder when inside it, else absolute paths."""
    try:
        return str(path.resolve().relative_to(session_dir.resolve()))
    except ValueError:
        return str(path.resolve())

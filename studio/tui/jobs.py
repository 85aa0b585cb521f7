"""The bridge between the engine, the session file and the app.

`on_event` runs on the engine's worker thread (and, for Queued and for a job
cancelled while queued, on the caller's): it writes the session record there,
off the event loop, through the same SessionRecorder as `studio generate`,
then posts the event to the app. It never touches a widget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studio.recipe import Recipe
from studio.tui.messages import EngineEvent


@dataclass
class JobView:
    """What the queue pane shows about one job."""

    job_id: str
    recipe: Recipe
    status: str = "queued"  # queued, loading, running
    step: int = 0
    total: int = 0


@dataclass(frozen=True)
class RecordFailed:
    """Not an engine event: the session file could not be written."""

    job_id: str
    reason: str


class JobBridge:
    def __init__(self, session: Any, post: Callable[[Any], Any]) -> None:
        self.session = session
        self.recorder: Any = None
        self.engine: Any = None
        self._post = post

    def start(self, engine_factory: Callable[[Callable[[Any], None]], Any]) -> Any:
        """Make the engine, listening to it. Imported here: the engine is not needed for the first paint."""
        from studio.recording import SessionRecorder

        self.recorder = SessionRecorder(self.session)
        self.engine = engine_factory(self.on_event)
        return self.engine

    def on_event(self, event: Any) -> None:
        try:
            self.recorder.record(event)
        except Exception as exc:  # a full disk must not silence the engine's events
            self._post(EngineEvent(RecordFailed(event.job_id, str(exc))))
        self._post(EngineEvent(event))

    def submit(self, recipe: Recipe) -> str:
        """Record the job in the session, then queue it; returns its job id (the entry id)."""
        job_id, stem = self.recorder.queue(recipe)
        self.engine.submit(recipe, self.session.path, stem=stem, job_id=job_id)
        return job_id

    def resubmit(self, entry: Any) -> str:
        """Run a crashed run's entry again under its own id and file stem."""
        job_id, stem = self.recorder.adopt(entry)
        self.engine.submit(entry.recipe, self.session.path, stem=stem, job_id=job_id)
        return job_id

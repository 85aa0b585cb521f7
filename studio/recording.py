"""Mirror engine events into a session file: one place for the CLI and the TUI.

Every job is recorded as queued before the engine sees it, so a crash or a
dropped SSH connection leaves a record of what was still to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.engine import events as ev
from studio.recipe import Recipe


class SessionRecorder:
    def __init__(self, session: Any) -> None:
        self.session = session
        self._entries: dict[str, Any] = {}  # engine job id -> session entry

    def queue(self, recipe: Recipe) -> tuple[str, str]:
        """Record `recipe` as queued; returns the (job id, file stem) to submit it under."""
        entry = self.session.queue(recipe)
        job_id = str(entry.id)
        self._entries[job_id] = entry
        return job_id, entry.stem

    def adopt(self, entry: Any) -> tuple[str, str]:
        """Track an entry queued earlier (a job resumed after a crash)."""
        job_id = str(entry.id)
        self._entries[job_id] = entry
        return job_id, entry.stem

    def record(self, event: ev.Event) -> None:
        entry = self._entries.get(event.job_id)
        if entry is None:
            return
        session = self.session
        if isinstance(event, ev.Started):
            session.start(entry.id)
        elif isinstance(event, ev.Finished):
            images = [image_name(path, session.path) for path in event.paths]
            session.finish(entry.id, event.recipe, images, round(event.seconds, 3))
        elif isinstance(event, ev.Failed):
            session.fail(entry.id, event.reason)
        elif isinstance(event, ev.Cancelled):
            reason = f"cancelled at step {event.step}" if event.step else "cancelled while queued"
            session.cancel(entry.id, reason)


def image_name(path: Path, session_dir: Path) -> str:
    """Names relative to the session folder when inside it, else absolute paths."""
    try:
        return str(path.resolve().relative_to(session_dir.resolve()))
    except ValueError:
        return str(path.resolve())

"""Session writes from the history keys, off the event loop and in the order they were asked for.

Each `session.mark/delete/restore` ends in an fsync; on a slow disk that is a
visible stall if it runs on the event loop. `SessionWrites.put` queues the
write and makes sure one thread worker is draining the queue: one at a time,
so a star then an unstar, or a delete then its undo, land in that order. Each
write ends with a `SessionWritten` message; the app refreshes from it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from studio.tui.messages import SessionWritten


class SessionWrites:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._pending: deque[tuple[int, str, Callable[[], Any]]] = deque()
        self._changed = threading.Condition()
        self._draining = False  # a drain worker is running or about to
        self._busy = False  # it is inside a write now

    def put(self, entry_id: int, kind: str, write: Callable[[], Any]) -> None:
        """Run `write()` after every write queued before it; `kind` names it in the message."""
        with self._changed:
            self._pending.append((entry_id, kind, write))
            if self._draining:
                return  # the running drain takes it
            self._draining = True
        self._app.run_worker(self._drain, thread=True, group="session-writes", exit_on_error=False)

    def _drain(self) -> None:
        while True:
            with self._changed:
                if not self._pending:
                    self._draining = False
                    self._changed.notify_all()
                    return
                entry_id, kind, write = self._pending.popleft()
                self._busy = True
            try:
                write()
                error = ""
            except Exception as exc:  # full disk, locked file, read-only session: one line
                error = str(exc) or type(exc).__name__
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
            self._app.post_message(SessionWritten(entry_id, kind, error))

    def flush(self, timeout: float = 5.0) -> list[str]:
        """At exit: let the write in progress end, then make the ones still queued here, in order.

        The app's workers are cancelled as it closes, so a drain may never reach
        them; a star pressed just before quitting still lands. Returns the errors.
        """
        with self._changed:
            self._changed.wait_for(lambda: not self._busy, timeout)
            left = list(self._pending)
            self._pending.clear()
            self._draining = True  # nothing starts another drain now
        errors = []
        for entry_id, kind, write in left:
            try:
                write()
            except Exception as exc:
                errors.append(f"#{entry_id} {kind}: {exc}")
        return errors

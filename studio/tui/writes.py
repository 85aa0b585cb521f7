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
        self._lock = threading.Lock()
        self._draining = False

    def put(self, entry_id: int, kind: str, write: Callable[[], Any]) -> None:
        """Run `write()` after every write queued before it; `kind` names it in the message."""
        with self._lock:
            self._pending.append((entry_id, kind, write))
            if self._draining:
                return  # the running drain takes it
            self._draining = True
        self._app.run_worker(self._drain, thread=True, group="session-writes", exit_on_error=False)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._draining = False
                    return
                entry_id, kind, write = self._pending.popleft()
            try:
                write()
                error = ""
            except Exception as exc:  # full disk, locked file, read-only session: one line
                error = str(exc) or type(exc).__name__
            self._app.post_message(SessionWritten(entry_id, kind, error))

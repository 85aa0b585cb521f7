"""Opening another session in the running window: the engine and its loaded model stay.

A mixin of StudioApp. The service swaps its session (`Studio.switch_session`),
which it refuses in one line while jobs of the open session are queued or
running: their records belong to that session, and a window that waited for
them would sit on a session it is leaving. The window then drops what belonged
to the old session (thumbnails, undo, marks not yet on disk, the compare mark)
and reads the new one as at start (session_loading.py): the newest entries
first, then the rest, a generate meanwhile held until the read is done. A
write already queued for the old session still lands in it (each holds the
session it was asked of). A session that turns out unreadable is left again,
back to the one the window came from, with its one line.

Renaming the open session (the browser's r) goes through `Studio.rename_session`,
which moves the folder under the session's lock and keeps writing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.screen import Screen

from studio.printable import printable
from studio.store.folders import SessionError

if TYPE_CHECKING:
    from studio.store.session import Session


class SessionSwitch:
    # Set by StudioApp / SessionLoading / HistoryActions.
    studio: Any
    session: Any
    history: Any
    loading: bool
    thumbs: dict[str, Any]
    undo_stack: list[int]
    _unwritten: dict[int, dict[str, Any]]
    _writes_queued: dict[int, int]
    _left: Session | None = None  # the session a switch came from, until the new one is read
    _show_entry: int | None = None  # the entry to highlight once the new session is read

    def open_session(self, name: str, entry_id: int | None = None) -> bool:
        """Make `name` (a session of this sessions folder) the window's session, then highlight
        `entry_id` in the history; whether the window is on it now (False: a one-line notice)."""
        if name == self.session.name:
            self._back_to_studio()
            if entry_id is not None:
                self._highlight(entry_id)
            return True
        if self.loading:
            self.notify("the session is still loading; open another once it has", severity="warning")  # type: ignore[attr-defined]
            return False
        from studio.store.session import SessionStore

        try:
            session = SessionStore(self.session.path.parent).open(name, load=False)
            self.studio.switch_session(session)
        except SessionError as exc:  # busy, renamed or archived since the list was read
            self.notify(printable(exc), title="cannot open", severity="error", markup=False)  # type: ignore[attr-defined]
            return False
        self._left, self._show_entry = self.session, entry_id
        self._take(session)
        self._back_to_studio()
        self.start_loading()  # type: ignore[attr-defined]
        self.read_after_first_paint()  # type: ignore[attr-defined]
        return True

    def rename_open_session(self, new_name: str) -> str:
        """Rename the open session's folder and stay on it (any thread); what happened, in one line.
        Raises SessionError (busy, a bad or taken name) as `studio.review.sessions` does."""
        old = self.session.name
        folder = self.studio.rename_session(new_name)
        self.call_from_thread(self._renamed)  # type: ignore[attr-defined]
        return f"renamed {old} to {folder.name}; this window writes there now"

    def _renamed(self) -> None:
        self.sub_title = f"session {self.session.name}"

    def _take(self, session: Session) -> None:
        self.session = session
        self.sub_title = f"session {session.name}"
        self.thumbs.clear()
        self.undo_stack.clear()
        self._unwritten.clear()
        self._writes_queued.clear()
        self.history.marked = None
        self.history.set_entries([], self.thumbs)

    def _back_to_studio(self) -> None:
        """Close the browser, the gallery and anything above them: the studio's own screen shows."""
        stack: list[Screen] = self.screen_stack  # type: ignore[attr-defined]
        while len(stack) > 1:
            self.pop_screen()  # type: ignore[attr-defined]
            stack = self.screen_stack  # type: ignore[attr-defined]

    # -- called by session_loading.py once the new session is read -----------------------

    def switch_read(self) -> None:
        """The session is read: say so and highlight the entry asked for."""
        left, self._left = self._left, None
        if left is not None:
            self.notify(printable(f"session {self.session.name}: {len(self.session.entries())} entries"))  # type: ignore[attr-defined]
        entry_id, self._show_entry = self._show_entry, None
        if entry_id is not None:
            self._highlight(entry_id)

    def switch_unreadable(self, error: str, held: int) -> bool:
        """The session switched to cannot be read: back to the one it left (whether there was one)."""
        left, self._left = self._left, None
        if left is None:
            return False
        self.studio.switch_session(left)  # cannot be busy: nothing was queued into the unread session
        self._take(left)
        self.loading = False
        self.history.show_loading(None)
        self.refresh_history()  # type: ignore[attr-defined]
        dropped = f"; {held} held job{'s' if held != 1 else ''} not queued" if held else ""
        self.notify(printable(f"cannot open that session: {error}{dropped}"), severity="error", markup=False)  # type: ignore[attr-defined]
        return True

    def _highlight(self, entry_id: int) -> None:
        if not self.history.show_entry(entry_id):
            self.notify(f"#{entry_id} is not among the entries shown; filter the history to find it")  # type: ignore[attr-defined]

"""Opening the session behind the window: the first paint never waits for a long file.

A mixin of StudioApp. `make_app` finds or makes the session's folder; the app
opens it unread after the first frame (which the reader's share of the
interpreter would slow), and one thread worker reads the file's last stretch
(the newest entries, shown at once with "loading ~N entries..."), then the
whole file, then tells the event loop with `SessionLoaded`. Until then nothing on the event loop touches
the session (its lock is held by the read): the history shows the preview,
generate keeps what it is asked for and queues it once the session is read,
marks and deletes wait in `SessionWrites`' worker, and the resume offer for a
crashed run's jobs comes after loading. The engine, too, starts once the
session is read: its worker's import of torch shares the interpreter, and in
the read's time would have made every entry reachable some 1.5 s later (100,000
entries); the image renderers' import (numpy, PIL) waits for the read likewise.
A session that cannot be read closes the window with its one line, as
it did when it was read before the first paint (one opened from the browser
goes back to the session it left: session_switch.py). The same read serves a
session switched to in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from studio.printable import printable
from studio.tui.messages import SessionLoaded, SessionPreview

if TYPE_CHECKING:
    from studio.recipe import Recipe


READING = "reading session..."


class SessionLoading:
    # Set by StudioApp: studio, session, history, thumbs, refresh_history, start_engine, notify, submit.
    studio: Any
    session: Any
    _session: Any  # None until opened (StudioApp.session)
    _fresh: bool
    history: Any
    status_bar: Any
    loading: bool = False
    _state_before_read = ""
    _preview: dict[int, Any]
    _held: list[Recipe]
    _first_painted: bool = False

    def start_loading(self) -> None:
        """Call on mount: whether the session is still to be read (`loading`)."""
        self._preview, self._held = {}, []
        opened = self._session  # not opened yet at the first mount: a session just made has nothing to read
        self.loading = not (opened.loaded if opened is not None else self._fresh)
        if self.loading:
            self.history.show_loading(0)
            self._state_before_read = self.status_bar.state
            self.status_bar.state = READING  # (ASCII: it is in the first frame; see HistoryPane._subtitle)

    def read_after_first_paint(self) -> None:
        """Start reading: after the first frame, since the reader shares the interpreter
        with the event loop and would slow that frame down."""
        if self.loading:
            # The service (and the session it opens) built here, on the event loop: each is made on
            # first use, and the worker making them while a key made them too would make two.
            self._read_session(self.studio)

    @work(thread=True, group="session-load", exit_on_error=False)
    def _read_session(self, studio: Any) -> None:
        entries, estimate = studio.session.newest()
        self.post_message(SessionPreview(entries, estimate))  # type: ignore[attr-defined]
        try:
            studio.load_session()
            error = ""
        except Exception as exc:  # SessionError: a bad record in a writable session, an unreadable file
            error = str(exc) or type(exc).__name__
        self.post_message(SessionLoaded(error))  # type: ignore[attr-defined]

    @work(thread=True, group="session-load", exit_on_error=False)
    def _after_loading(self) -> None:
        """Once the history holds every entry (started by `on_session_loaded`, so it never
        shares the interpreter with putting them there)."""
        self.session.save_snapshot()  # the next open of a big session starts from here
        self.studio.index_session()  # the review index, so the first generate's update is small

    def on_session_preview(self, message: SessionPreview) -> None:
        if self.loading:
            self._preview = {entry.id: entry for entry in message.entries}
            self.history.set_entries(message.entries, self.thumbs)  # type: ignore[attr-defined]
            self.history.show_loading(message.estimate)

    def on_session_loaded(self, message: SessionLoaded) -> None:
        if self.status_bar.state == READING:
            self.status_bar.state = self._state_before_read  # the engine's (start_engine says when it starts)
        if message.error:
            held, self._held = self._held, []
            if not self.switch_unreadable(message.error, len(held)):  # type: ignore[attr-defined]
                self.exit(return_code=1, message=f"studio: {printable(message.error)}")  # type: ignore[attr-defined]
            return
        self.loading = False
        self._preview = {}
        self.history.show_loading(None)
        self.refresh_history()  # type: ignore[attr-defined]
        self._after_loading()
        self.show_session_warnings()
        self.switch_read()  # type: ignore[attr-defined]  (session_switch.py: opened from the browser)
        self.start_engine()  # type: ignore[attr-defined]  (once read: see the module's docstring)
        self.load_graphics()  # type: ignore[attr-defined]  (the renderers' import, once read: app.py)
        held, self._held = self._held, []
        if held:
            self.submit(held)  # type: ignore[attr-defined]
        if self._first_painted:
            self.offer_resume()

    def show_session_warnings(self) -> None:
        for warning in [*self.session.warnings[:3], *self.studio.recovered]:
            self.notify(printable(warning), severity="warning", timeout=8, markup=False)  # type: ignore[attr-defined]

    def hold(self, recipes: list[Recipe]) -> None:
        """Generate while loading: the jobs are queued, in order, as soon as the session is read."""
        self._held += recipes
        if recipes:
            self.notify(f"{len(self._held)} queued; they start when the session has loaded")  # type: ignore[attr-defined]

    def loaded_entry(self, entry_id: int) -> Any:
        """An entry from the preview while loading (None if it is not shown)."""
        return self._preview.get(entry_id)

    def offer_resume(self) -> None:
        """The crashed run's unfinished jobs: resume them or not (once the session is read)."""
        self._first_painted = True
        if self.loading or self.session.read_only:
            return
        unfinished = self.session.unfinished()
        if unfinished:
            from studio.tui.widgets.resume import ResumeDialog

            self.push_screen(  # type: ignore[attr-defined]
                ResumeDialog(unfinished), lambda yes: self._resume(unfinished, bool(yes))  # type: ignore[attr-defined]
            )

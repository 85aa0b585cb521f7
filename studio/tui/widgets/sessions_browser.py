"""The session browser: every session with its count, its dates and a strip of thumbnails.

The list comes from the review index (caught up first, in a thread worker);
the strips are made lazily, for the rows around the highlight only, from the
thumbnail cache. Rename and archive (`review.sessions`) run off the event
loop; a refusal is one line. Open switches the window to the session in place
(studio/tui/session_switch.py); renaming the open session keeps the window
writing into the renamed folder; the open session is never archived under it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from studio.printable import printable
from studio.tui import actions
from studio.tui.thumbnail import THUMB_COLS

STRIP = 4  # thumbnails a row
_AROUND = 12  # rows each side of the highlight whose strips are made


class NameDialog(ModalScreen[str | None]):
    """A new name for a session: enter keeps it, escape leaves the name as it was."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.old = name

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(printable(f"Rename {self.old} (enter renames, escape cancels)")), classes="title")
            yield Input(value=self.old, id="name-input")

    def on_mount(self) -> None:
        self.query_one("#name-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class SessionsScreen(Screen):
    BINDINGS = actions.bindings("sessions")
    DEFAULT_CSS = """
    SessionsScreen #sessions-status { height: 1; padding: 0 1; }
    SessionsScreen #sessions-list { height: 1fr; }
    """

    class Listed(Message):
        def __init__(self, rows: list, error: str = "") -> None:
            super().__init__()
            self.rows, self.error = rows, error

    class Strips(Message):
        def __init__(self, strips: dict[str, list]) -> None:
            super().__init__()
            self.strips = strips

    class Done(Message):
        """A rename or archive ran: `text` says what happened, `error` why not."""

        def __init__(self, text: str, error: str = "") -> None:
            super().__init__()
            self.text, self.error = text, error

    def __init__(self, index: Any, current: str) -> None:
        super().__init__()
        self.index = index
        self.current = current
        self.rows: list[Any] = []
        self.strips: dict[str, list] = {}
        self._asked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static("reading sessions…", id="sessions-status")
        yield OptionList(id="sessions-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._run(self._list)

    def _run(self, function: Any, *args: Any) -> None:
        self.run_worker(partial(function, *args), thread=True, group="sessions", exit_on_error=False)

    # -- the list ---------------------------------------------------------------------

    def _list(self) -> None:
        try:
            self.index.update()
            self.post_message(self.Listed(self.index.sessions()))
        except Exception as exc:  # busy or unreadable: one line
            self.post_message(self.Listed([], f"cannot read the sessions: {exc}"))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        status = self.query_one("#sessions-status", Static)
        if message.error:
            status.update(Text(printable(message.error), style="red"))
            return
        keep = self.selected_name()
        self.rows = message.rows
        total = sum(row.entries for row in self.rows)
        status.update(f"{len(self.rows)} sessions · {total} entries — enter opens, r renames, a archives, g gallery")
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options([Option(self._row(row), id=row.name) for row in self.rows])
        names = [row.name for row in self.rows]
        if names:
            ol.highlighted = names.index(keep) if keep in names else len(names) - 1  # the newest last

    def _row(self, row: Any) -> Text:
        thumbs = self.strips.get(row.name) or []
        pictures = [t.lines() for t in thumbs[:STRIP]]
        blank = [Text(" " * THUMB_COLS)] * 4
        pictures += [blank] * (STRIP - len(pictures))
        head = Text(printable(row.name), style="bold")
        if row.name == self.current:
            head.append("  (open here)", style="magenta")
        dates = f"{row.first[:16].replace('T', ' ')} → {row.last[:16].replace('T', ' ')}" if row.first else "no entries"
        words = [head, Text(f"{row.entries} entries"), Text(dates, style="dim"), Text("")]
        lines = [Text(" ").join([*(p[n] for p in pictures), words[n]]) for n in range(4)]
        text = Text("\n").join(lines)
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

    def selected_name(self) -> str | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None or not ol.option_count:
            return None
        return ol.get_option_at_index(ol.highlighted).id

    # -- strips, lazily ------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#sessions-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        index = event.option_index
        names = [row.name for row in self.rows[max(0, index - _AROUND) : index + _AROUND + 1]]
        wanted = [name for name in names if name not in self._asked]
        if wanted:
            self._asked.update(wanted)
            self._run(self._make_strips, wanted)

    def _make_strips(self, names: list[str]) -> None:
        from studio.review.thumbs import thumbnail
        from studio.tui.thumbnail import load_thumbnail

        strips = {}
        for name in names:
            try:
                hits = self.index.search(f'session:"{name}" status:done sort:session', limit=STRIP * 3)
            except Exception:
                continue
            images = [h.images[0] for h in hits if h.session == name and h.images][:STRIP]
            made = [load_thumbnail(path) for path in filter(None, (thumbnail(p) for p in images))]
            strips[name] = [m for m in made if m is not None]
        self.post_message(self.Strips(strips))

    @on(Strips)
    def _strips_ready(self, message: Strips) -> None:
        self.strips.update(message.strips)
        ol = self.query_one(OptionList)
        shown = {row.name: row for row in self.rows}
        for name in message.strips:
            if name in shown:
                ol.replace_option_prompt(name, self._row(shown[name]))

    # -- keys --------------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#sessions-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_open_session()

    def action_open_session(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        app: Any = self.app
        app.open_session(name)  # in place (studio/tui/session_switch.py); a refusal is one line

    def action_gallery_of(self) -> None:
        from studio.tui.widgets.gallery import GalleryScreen

        name = self.selected_name()
        if name is not None:
            image_class = getattr(self.app, "image_class", None)
            self.app.push_screen(GalleryScreen(self.index, image_class, f'session:"{name}" sort:session'))

    def action_rename(self) -> None:
        name = self.selected_name()
        if name is None:
            return

        def rename(new: str | None) -> None:
            if new and new != name:
                self._run(self._move, "rename", name, new)

        self.app.push_screen(NameDialog(name), rename)

    def action_archive(self) -> None:
        name = self.selected_name()
        if name is not None and not self._refused(name, "archive"):
            self._run(self._move, "archive", name, "")

    def action_close(self) -> None:
        self.app.pop_screen()

    def _refused(self, name: str, what: str) -> bool:
        if name == self.current:
            self.notify(printable(f"cannot {what} {name}: this window has it open"), severity="error")
            return True
        return False

    def _move(self, what: str, name: str, new: str) -> None:
        from studio.review.sessions import archive_session, rename_session

        root = self.index.root
        try:
            if what == "rename" and name == self.current:  # the window follows its session's folder
                text = self.app.rename_open_session(new)  # type: ignore[attr-defined]
                self.current = new
            elif what == "rename":
                rename_session(root, name, new)
                text = f"renamed {name} to {new}"
            else:
                folder = archive_session(root, name)
                text = f"archived {name} to {folder}"
        except Exception as exc:  # SessionError: refused, a clash, or the disk said no
            self.post_message(self.Done("", str(exc) or type(exc).__name__))
            return
        self.post_message(self.Done(text))
        self._list()

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.error:
            self.notify(printable(message.error), severity="error")
        else:
            self.notify(printable(message.text))

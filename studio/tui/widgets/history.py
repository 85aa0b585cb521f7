"""The history pane: this session's entries, newest first, with thumbnails."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from studio.printable import printable
from studio.tui import actions
from studio.tui.thumbnail import THUMB_COLS

MAX_RATING = 5

# Rows built per refresh: a 10,000-entry session stays quick; the filter still searches everything.
LIMIT = 300

STATUS_STYLE = {
    "done": "green",
    "running": "yellow",
    "queued": "cyan",
    "failed": "red",
    "cancelled": "dim",
}


def excerpt(text: str, width: int = 60) -> str:
    """One line of file text, printable (a prompt may hold escape sequences), cut to `width`."""
    text = printable(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def haystack(entry: Any) -> str:
    """What the filter searches in an entry, lower-cased."""
    r = entry.recipe
    return f"{r.prompt}\n{r.negative_prompt}\n{r.model}\n{r.seed}\n{r.sampler}\n{entry.note}\n#{entry.id}".lower()


class HistoryPane(Vertical):
    """Pane 5. Keys act on the highlighted entry; the app does the work."""

    BORDER_TITLE = "5 History"

    BINDINGS = actions.bindings("history")

    favourites_only: reactive[bool] = reactive(False)
    """Show only entries marked as favourites."""
    marked: reactive[int | None] = reactive(None)
    """The entry picked as the first side of a comparison."""

    class Highlighted(Message):
        def __init__(self, entry_id: int | None) -> None:
            super().__init__()
            self.entry_id = entry_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._entries: list[Any] = []
        self._thumbs: dict[str, Any] = {}
        self._shown: list[tuple[str, Text]] = []  # what the list holds now, as (id, row)
        self._rows: dict[int, tuple[Any, Any, bool, Text]] = {}  # id -> (entry, thumbnail, marked, its row)
        self._loading: int | None = None  # while the session loads: about how many entries it holds
        # id -> (entry, haystack): the session makes a new Entry only when one changes,
        # so a filter keystroke over 100,000 entries formats none of them again.
        self._haystacks: dict[int, tuple[Any, str]] = {}

    def on_mount(self) -> None:
        # Mounted just after the first frame; `_rebuild` waits for the list.
        self.call_after_refresh(self.mount, Input(placeholder="filter (/)", id="history-filter"),
                                HistoryList(id="history-list"))

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#history-list", OptionList)

    @property
    def highlighted_id(self) -> int | None:
        if not self.query("#history-list"):
            return None
        ol = self.option_list
        if ol.highlighted is None or ol.option_count == 0:
            return None
        return int(ol.get_option_at_index(ol.highlighted).id)

    def set_entries(self, entries: list[Any], thumbs: dict[str, Any]) -> None:
        self._entries = entries
        self._thumbs = thumbs
        self._rebuild()

    def show_loading(self, estimate: int | None) -> None:
        """While the session loads, say so (about `estimate` entries; 0: not known yet); None: loaded."""
        self._loading = estimate
        self._subtitle(len(self._shown), False)

    def _rebuild(self) -> None:
        if not self.query("#history-list"):
            return  # not mounted yet; HistoryList.on_mount calls back
        ol = self.option_list
        # At the top, follow new entries; elsewhere, stay on the entry the artist chose.
        keep = None if ol.highlighted in (None, 0) else self.highlighted_id
        needle = "".join(f.value for f in self.query("#history-filter").results(Input)).strip().lower()
        shown, more = [], False
        for entry in reversed(self._entries):  # newest first; stop at the limit, not at the end
            if (self.favourites_only and not entry.favourite) or (needle and needle not in self._haystack(entry)):
                continue
            if len(shown) == LIMIT:
                more = True
                break
            shown.append(entry)
        rows = [(str(e.id), self._row_of(e)) for e in shown]
        ids, before = [row_id for row_id, _ in rows], [row_id for row_id, _ in self._shown]
        if ids[: len(before)] == before:
            # The same entries, perhaps more after them (the whole session after its newest),
            # some changed (started, finished, starred): touch only those rows, add the rest.
            for (row_id, row), (_, old) in zip(rows, self._shown):
                if row is not old and row != old:
                    ol.replace_option_prompt(row_id, row)
            ol.add_options([Option(row, id=row_id) for row_id, row in rows[len(before) :]])
            if before == [] and shown:
                ol.highlighted = 0
        else:
            ol.clear_options()
            ol.add_options([Option(row, id=row_id) for row_id, row in rows])
            if shown:
                ids = [e.id for e in shown]
                ol.highlighted = ids.index(keep) if keep in ids else 0
        self._shown = rows
        self._subtitle(len(shown), more)

    def _subtitle(self, shown: int, more: bool) -> None:
        if self._loading is not None:
            about = f"~{self._loading:,} " if self._loading else ""
            # "...", not "…": a character outside rich's one-cell ranges loads its width tables
            # (12-20 ms), and a reopened session's first frame shows this line.
            self.border_subtitle = f"{shown} newest · loading {about}entries..."
            return
        count = f"{shown}{'+' if more else ''}/{len(self._entries)}"
        self.border_subtitle = count + (" ★" if self.favourites_only else "")

    def _haystack(self, entry: Any) -> str:
        cached = self._haystacks.get(entry.id)
        if cached is None or cached[0] is not entry:
            cached = self._haystacks[entry.id] = (entry, haystack(entry))
        return cached[1]

    def _row_of(self, entry: Any) -> Text:
        """`_row`, kept while the entry, its thumbnail and whether it is marked stay the same
        (the session's newest entries, shown while it loads, are shown again once it has)."""
        thumb = self._thumbs.get(entry.images[0]) if entry.images else None
        marked = self.marked == entry.id
        kept = self._rows.get(entry.id)
        if kept is not None and kept[1] is thumb and kept[2] == marked and (kept[0] is entry or kept[0] == entry):
            return kept[3]
        if len(self._rows) >= 2 * LIMIT:
            self._rows = {int(row_id): self._rows[int(row_id)] for row_id, _ in self._shown if int(row_id) in self._rows}
        row = self._row(entry)
        self._rows[entry.id] = (entry, thumb, marked, row)
        return row

    def _row(self, entry: Any) -> Text:
        """Four lines: a thumbnail on the left (when there is an image), the entry beside it.

        Plain Text, not a Table: a session can have hundreds of rows and Text is cheap.
        """
        r = entry.recipe
        head = Text(f"#{entry.id} ", style="bold")
        head.append(entry.status, style=STATUS_STYLE.get(entry.status, ""))
        if entry.favourite:
            head.append(" ★", style="yellow")
        if entry.rating:
            head.append(" " + "●" * entry.rating + "○" * (MAX_RATING - entry.rating), style="yellow")
        if self.marked == entry.id:
            head.append(" [compare]", style="magenta")
        if entry.duration is not None:
            head.append(f" {entry.duration:.1f}s", style="dim")
        lines = [
            head,
            Text(excerpt(r.prompt)),
            Text(printable(f"seed {r.seed} · {r.sampler} · {r.steps} steps · {r.model}"), style="dim"),  # cut from the right
            Text(excerpt(entry.reason), style="red dim") if entry.reason
            else Text("✎ " + excerpt(entry.note, 58), style="italic") if entry.note else Text(""),
        ]
        if entry.images:
            thumb = self._thumbs.get(entry.images[0])
            left = thumb.lines() if thumb is not None else [Text(" " * THUMB_COLS)] * 4
            lines = [Text.assemble(pic, " ", line) for pic, line in zip(left, lines, strict=True)]
        row = Text("\n").join(lines)
        row.no_wrap = True
        row.overflow = "ellipsis"
        return row

    @on(Input.Changed, "#history-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._rebuild()

    @on(Input.Submitted, "#history-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.option_list.focus()

    @on(OptionList.OptionHighlighted, "#history-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.post_message(self.Highlighted(int(event.option.id) if event.option.id else None))

    @on(OptionList.OptionSelected, "#history-list")
    async def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        await self.run_action("app.load_entry")

    def watch_favourites_only(self) -> None:
        if self.is_mounted:
            self._rebuild()

    def watch_marked(self) -> None:
        if self.is_mounted:
            self._rebuild()

    def action_toggle_favourites(self) -> None:
        self.favourites_only = not self.favourites_only

    def action_focus_filter(self) -> None:
        self.query_one("#history-filter", Input).focus()

    def action_cursor_down(self) -> None:
        self.option_list.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.option_list.action_cursor_up()

    def move(self, delta: int) -> None:
        if not self.query("#history-list"):
            return
        ol = self.option_list
        if ol.option_count:
            current = ol.highlighted if ol.highlighted is not None else -delta
            ol.highlighted = max(0, min(ol.option_count - 1, current + delta))

    def show_entry(self, entry_id: int) -> bool:
        """Highlight entry `entry_id`; False when it is not among the rows shown (filtered, or past the limit)."""
        ids = [row_id for row_id, _ in self._shown]
        if not self.query("#history-list") or str(entry_id) not in ids:
            return False
        self.option_list.highlighted = ids.index(str(entry_id))
        self.option_list.focus()
        return True


class HistoryList(OptionList):
    def on_mount(self) -> None:
        if isinstance(self.parent, HistoryPane):
            self.parent._rebuild()

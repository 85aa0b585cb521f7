"""The gallery: thumbnails of every entry matching a query, across every session, a page at a time.

A query of 100,000 entries never becomes 100,000 widgets: the grid is one widget
drawing a fixed set of cells sized to the terminal (`gallery_grid`), and a page is the hits for those cells,
fetched from the review index by offset in a thread worker whose result comes
back as a message. Thumbnails come from the cache beside the index
(`review.thumbs`), made off the event loop for the visible page only, and are
drawn with the preview's renderer. Stars, ratings and notes go to the entry's
own session through `SessionWrites`, then into the index, off the event loop.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from studio.printable import printable
from studio.tui import actions
from studio.tui.widgets.gallery_grid import MAX_RATING, Cell, GalleryGrid
from studio.tui.writes import SessionWrites

_KEEP = 2000  # hits held in memory; a far jump drops the rest and fetches again


class GalleryScreen(Screen):
    """Full screen over the app; `index` is the service's ReviewIndex."""

    BINDINGS = actions.bindings("gallery")
    DEFAULT_CSS = """
    GalleryScreen #gallery-query { height: 3; }
    GalleryScreen #gallery-status { height: 1; padding: 0 1; }
    """

    class Results(Message):
        """A page of hits (and, for a new query, the total), or the query's one-line error.

        `counted` is False when `total` is only what is known so far (a full first
        page: at least that many); a `Counted` follows with the whole count."""

        def __init__(self, generation: int, offset: int, hits: list, total: int | None, error: str = "",
                     counted: bool = True) -> None:
            super().__init__()
            self.generation, self.offset, self.hits, self.total, self.error = generation, offset, hits, total, error
            self.counted = counted

    class Counted(Message):
        def __init__(self, generation: int, total: int) -> None:
            super().__init__()
            self.generation, self.total = generation, total

    class Thumbs(Message):
        def __init__(self, thumbs: dict[Path, Path | None]) -> None:
            super().__init__()
            self.thumbs = thumbs

    class Loaded(Message):
        """An entry read from its session file, for `purpose` ("show" or "branch")."""

        def __init__(self, purpose: str, hit: Any, entry: Any, error: str = "") -> None:
            super().__init__()
            self.purpose, self.hit, self.entry, self.error = purpose, hit, entry, error

    def __init__(self, index: Any, image_class: Any, query: str = "") -> None:
        super().__init__()
        self.index = index
        self.image_class = image_class
        self.query_text = query
        self.total = 0
        self.counting = False  # the total is a lower bound until the count comes back
        self.cursor = 0
        self.hits: dict[int, Any] = {}  # position in the results -> Hit
        self.thumbs: dict[Path, Path | None] = {}
        self.last_query_s: float | None = None
        self.first_page_at: float | None = None  # perf_counter when the first page was drawn (the bench)
        self._generation = 0
        self._searching = True  # a new query's first page has not come back yet
        self._painting = False  # the first page is drawn: its time is taken after the next refresh
        self._shown = threading.Event()  # set once the first page (or "no matches") is on screen
        self._asked: set[int] = set()  # page offsets requested for this generation
        self._loading: set[Path] = set()
        self._updated = False  # the index is caught up once a gallery opens, not on every page
        self.writes = SessionWrites(self)
        self._overrides: dict[str, dict[str, Any]] = {}  # marks queued, not yet read back from the index
        self._queued: dict[str, int] = {}
        self._settled: set[str] = set()
        self._write_keys: dict[int, Any] = {}

    def compose(self) -> ComposeResult:
        yield Input(value=self.query_text, placeholder="query: fox lora:inkwash rating:>=4 since:7d sort:rating",
                    id="gallery-query")
        yield Static("searching…", id="gallery-status")
        yield GalleryGrid(self.image_class, id="gallery-grid")

    def on_mount(self) -> None:
        self.query_one("#gallery-grid").focus()
        self._search(self.query_text)

    # -- the grid -----------------------------------------------------------------

    @property
    def grid(self) -> GalleryGrid:
        return self.query_one("#gallery-grid", GalleryGrid)

    @property
    def page_size(self) -> int:
        return max(1, self.grid.page_size)

    @on(GalleryGrid.Fitted)
    def _grid_fitted(self) -> None:
        self._draw()  # as many cells as now fit the grid: a page of another size

    @property
    def columns(self) -> int:
        return self.grid.cols or 1

    def _draw(self) -> None:
        size = self.page_size
        start = (self.cursor // size) * size
        end = min(self.total, start + size)
        missing = any(self.hits.get(p) is None for p in range(start, end))
        if missing:
            self._fetch_page(start)  # the cells keep the last page until this one comes: no blank flash
        else:
            cells = []
            for position in range(start, end):
                hit = self._hit(position)
                cells.append(Cell(hit, self.thumbs.get(hit.images[0]) if hit.images else None, position == self.cursor))
            self.grid.show(cells)
            if self.first_page_at is not None:  # before it, threads making thumbnails slow the first paint
                self._load_thumbs(start)
                for near in (start + size, start - size):  # the next page is usually there before PageDown
                    if 0 <= near < self.total:
                        self._fetch_page(near)
        self._status()
        if self.first_page_at is None and self.total and not missing and self.grid.page_size and not self._painting:
            self._painting = True
            self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        if self.first_page_at is None:
            self.first_page_at = time.perf_counter()
            self._add_footer()
            self._draw()  # now its thumbnails and the pages either side

    def _add_footer(self) -> None:
        self._shown.set()
        if not self.query(Footer):
            self.mount(Footer())  # after the first page: its dozens of keys, restyled as the focus moves, cost more
            self.call_after_refresh(self.refresh_bindings)  # else a footer mounted late waits for the next change

    def _hit(self, position: int) -> Any:
        hit = self.hits.get(position)
        if hit is not None and hit.key in self._overrides:
            hit = _replace(hit, self._overrides[hit.key])
        return hit

    def _status(self, error: str = "") -> None:
        status = self.query_one("#gallery-status", Static)
        if error:
            status.update(Text(printable(error), style="red"), layout=False)  # one line: no re-layout
            return
        if not self.total:
            status.update("searching…" if self._searching else "no matches", layout=False)
            return
        line = Text(f"{self.cursor + 1}/{self.total}{'+' if self.counting else ''}  ")
        hit = self._hit(self.cursor)
        if hit is not None:
            line.append(printable(f"{hit.session}:{hit.id}  {hit.time[:16]}  seed {hit.seed}  {hit.model}  "), style="dim")
            line.append(printable(" ".join(hit.prompt.split())))
        line.no_wrap = True
        line.overflow = "ellipsis"
        status.update(line, layout=False)

    # -- queries, off the event loop -----------------------------------------------

    def _search(self, text: str) -> None:
        self._generation += 1
        self.query_text = text
        self.hits.clear()
        self._searching = True
        self._asked = {0}
        self.cursor = 0
        self._run(self._fetch, self._generation, text, 0, max(self.page_size, 64), True)

    def _fetch_page(self, offset: int, again: bool = False) -> None:
        held = all(p in self.hits for p in range(offset, min(self.total, offset + self.page_size)))
        if not again and (offset in self._asked or held):
            return
        self._asked.add(offset)
        self._run(self._fetch, self._generation, self.query_text, offset, self.page_size, False)

    def _run(self, function: Any, *args: Any, group: str = "gallery-query") -> None:
        self.run_worker(partial(function, *args), thread=True, group=group, exit_on_error=False)

    def _fetch(self, generation: int, text: str, offset: int, limit: int, count: bool) -> None:
        """One page, on a thread; for a new query (`count`) the count follows the page (a short page is
        the whole result). The screen's first query then catches the index up with other processes'
        sessions and asks again if that changed anything (first, when it found nothing: a new index)."""
        from studio.review.index import IndexBusy
        from studio.review.query import QueryError, parse_query

        started = time.perf_counter()
        try:
            query = parse_query(text)
            hits = self.index.search(query, limit=limit, offset=offset)
            if not self._updated and not hits:
                self._updated = True
                self._catch_up(IndexBusy)
                hits = self.index.search(query, limit=limit, offset=offset)
            exact = not count or len(hits) < limit
            total = offset + len(hits) if count else None
            if count:
                self.last_query_s = time.perf_counter() - started  # the bench reports it
            self.post_message(self.Results(generation, offset, hits, total, counted=exact))
            if count:
                self._shown.wait(5)  # the count and the catch-up wait for the page: they would share its core
            if not exact:
                self.post_message(self.Counted(generation, self.index.count(query)))
            if not self._updated:
                self._updated = True
                if self._catch_up(IndexBusy):
                    self._fetch(generation, text, offset, limit, count)
        except QueryError as exc:
            self.post_message(self.Results(generation, offset, [], 0, str(exc)))
        except Exception as exc:  # an unreadable index is rebuilt inside; anything else is one line
            self.post_message(self.Results(generation, offset, [], 0, f"search failed: {exc}"))

    def _catch_up(self, busy: type[Exception]) -> int:
        """Read the sessions other processes wrote since this studio started; how many."""
        try:
            return self.index.update()
        except busy:
            return 0  # another studio is updating it: search what is there

    @on(Results)
    def _results(self, message: Results) -> None:
        if message.generation != self._generation:
            return  # an older query's page
        if message.error or message.total is not None:
            self._searching = False
        if message.error:
            self.total = 0
            self._draw()
            self._status(message.error)
            self._add_footer()
            return
        if message.total is not None:
            self.total = message.total
            self.counting = not message.counted
        if len(self.hits) > _KEEP:
            self.hits.clear()
            self._asked = {message.offset}
        for i, hit in enumerate(message.hits):
            self.hits[message.offset + i] = hit
        for key in self._settled:
            self._overrides.pop(key, None)
        self._settled.clear()
        self._draw()
        if not self.total:
            self._add_footer()  # nothing to draw: no first page to wait for

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.generation == self._generation:
            self.total, self.counting = message.total, False
            self._draw()

    def _load_thumbs(self, start: int) -> None:
        wanted = []
        for position in range(start, min(self.total, start + self.page_size)):
            hit = self.hits.get(position)
            if hit is not None and hit.images:
                path = hit.images[0]
                if path not in self.thumbs and path not in self._loading:
                    wanted.append(path)
        if wanted:
            self._loading.update(wanted)
            self._run(self._make_thumbs, wanted, group="gallery-thumbs")

    def _make_thumbs(self, paths: list[Path]) -> None:
        from studio.review.thumbs import thumbnail

        done: dict[Path, Path | None] = {}
        for path in paths:
            done[path] = thumbnail(path)
            if len(done) == 8:  # a row or so at a time: the page fills in as they are made
                self.post_message(self.Thumbs(done))
                done = {}
        if done:
            self.post_message(self.Thumbs(done))

    @on(Thumbs)
    def _thumbs_ready(self, message: Thumbs) -> None:
        self.thumbs.update(message.thumbs)
        self._loading.difference_update(message.thumbs)
        if self.image_class is not None:
            self._draw()

    @on(Input.Submitted, "#gallery-query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._search(event.value.strip())
        self.query_one("#gallery-grid").focus()

    # -- moving ---------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self._go(self.cursor + delta)

    def action_move_row(self, delta: int) -> None:
        self._go(self.cursor + delta * self.columns)

    def action_page(self, delta: int) -> None:
        self._go(self.cursor + delta * self.page_size)

    def action_focus_query(self) -> None:
        self.query_one("#gallery-query", Input).focus()

    def action_close(self) -> None:
        self.app.pop_screen()

    def _go(self, position: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, position))
            self._draw()

    def selected(self) -> Any:
        hit = self._hit(self.cursor) if self.total else None
        if hit is None:
            self.notify("no entry selected", severity="warning")
        return hit

    # -- keys on the selected entry ----------------------------------------------------

    def action_show_entry(self) -> None:
        hit = self.selected()
        if hit is not None:
            self._run(self._load_entry, "show", hit, group="gallery-entry")

    def action_branch(self) -> None:
        hit = self.selected()
        if hit is not None:
            self._run(self._load_entry, "branch", hit, group="gallery-entry")

    def action_set_init(self) -> None:
        hit = self.selected()
        if hit is not None:
            self._run(self._load_entry, "init", hit, group="gallery-entry")

    def _load_entry(self, purpose: str, hit: Any) -> None:
        from studio.store.session import SessionStore

        try:
            entry = SessionStore(self.index.root).open(hit.session, read_only=True).get(hit.id)
        except Exception as exc:  # renamed, archived or unreadable since the index saw it
            self.post_message(self.Loaded(purpose, hit, None, str(exc)))
            return
        self.post_message(self.Loaded(purpose, hit, entry))

    @on(Loaded)
    def _entry_loaded(self, message: Loaded) -> None:
        hit, entry = message.hit, message.entry
        if message.error:
            self.notify(printable(message.error), severity="error")
        elif message.purpose == "show":
            from studio.tui.widgets.entry_detail import EntryDetail

            image = hit.images[0] if hit.images and hit.images[0].is_file() else None
            self.app.push_screen(EntryDetail(hit.session, entry, image, self.image_class))
        elif message.purpose == "init":
            app: Any = self.app
            image = hit.images[0] if hit.images and hit.images[0].is_file() else None
            if image is None or not app.params.ready:
                self.notify(printable(f"{hit.key} has no image to start from"), severity="warning")
                return
            app.params.set_init(str(image.resolve()), "", size=entry.recipe.size)
            app.pop_screen()
            app.notify(printable(f"init image: {hit.key}; every generate is img2img until f12"))
        else:
            app = self.app
            if not app.params.ready:
                return
            app.prompt_pane.set_texts(entry.recipe.prompt, entry.recipe.negative_prompt)
            app.params.load(entry.recipe, lock_seed=True)
            app.pop_screen()
            app.prompt_pane.focus_prompt()
            app.notify(printable(f"recipe of {hit.key} loaded; seed locked"))

    def action_contact_sheet(self) -> None:
        from studio.tui.widgets.gallery_sheet import make_contact_sheet

        self._run(make_contact_sheet, self, group="gallery-sheet")

    def action_open_session(self) -> None:
        hit = self.selected()
        if hit is None:
            return
        app: Any = self.app
        app.open_session(hit.session, hit.id)  # in place, the entry highlighted (studio/tui/session_switch.py)

    def action_favourite(self) -> None:
        hit = self.selected()
        if hit is not None:
            self._mark(hit, favourite=not hit.favourite)

    def action_rate(self, delta: int) -> None:
        hit = self.selected()
        if hit is not None:
            rating = max(0, min(MAX_RATING, hit.rating + delta))
            if rating != hit.rating:
                self._mark(hit, rating=rating)

    def action_edit_note(self) -> None:
        from studio.tui.widgets.note import NoteDialog

        hit = self.selected()
        if hit is None:
            return

        def save(note: str | None) -> None:
            if note is not None and note != hit.note:
                self._mark(hit, note=note)

        self.app.push_screen(NoteDialog(hit.id, hit.note), save)

    def _mark(self, hit: Any, **fields: Any) -> None:
        """Write to the entry's own session (the app's live one when it is this session), then the index."""
        app: Any = self.app
        live = app.session if hit.session == app.session.name and app.session.path.parent == self.index.root else None
        index, root = self.index, self.index.root

        def write() -> None:
            from studio.store.session import SessionStore

            session = live or SessionStore(root).open(hit.session)
            session.mark(hit.id, **fields)
            index.update_session(session.path, live=session)

        self._overrides.setdefault(hit.key, {}).update(fields)
        self._queued[hit.key] = self._queued.get(hit.key, 0) + 1
        number = len(self._write_keys) + 1
        self._write_keys[number] = (hit.key, live is not None)
        self.writes.put(number, "mark", write)
        self._draw()

    def on_session_written(self, message: Any) -> None:
        message.stop()
        key, current = self._write_keys.pop(message.entry_id, ("", False))
        left = self._queued.pop(key, 1) - 1
        if left:
            self._queued[key] = left
        else:
            self._settled.add(key)
        if message.error:
            self._overrides.pop(key, None)
            self.notify(printable(f"{key} not marked: {message.error}"), severity="error")
        if current:
            self.app.refresh_history()  # type: ignore[attr-defined]
        size = self.page_size
        start = (self.cursor // size) * size
        self._fetch_page(start, again=True)  # read the marks back from the index

    def on_unmount(self) -> None:
        self._shown.set()
        for error in self.writes.flush():
            self.log.error(f"gallery write lost: {error}")


def _replace(hit: Any, fields: dict[str, Any]) -> Any:
    from dataclasses import replace

    return replace(hit, **fields)

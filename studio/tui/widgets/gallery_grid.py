"""The gallery's grid: every cell of a page drawn by ONE widget, through the Line API.

A page is a list of `Cell`s (a hit, its thumbnail, whether it is selected). The
grid draws each cell's border, thumbnail and two caption lines itself and keeps
the rows of each cell until that cell changes, so opening the gallery builds no
widget per cell, and a page turn or a thumbnail arriving repaints only the cells
that changed: no re-layout of the screen.

Thumbnails are drawn with the preview's renderer (`graphics.image_widget_class`):
half-cells, Unicode and Kitty graphics are rich renderables, rendered into
each cell's rows (one per thumbnail and size, kept while it is near the page,
so a Kitty image is sent to the terminal once). Rendering one reads and scales
the image with PIL, so it is done on a thread worker, never on the event loop:
a cell whose picture is not rendered yet draws its frame and caption at once,
and its picture when `Pictures` brings it. Sixel cannot be a row of text:
textual-image writes it from a widget of its own at that widget's place on the
screen, so with Sixel, and only then, each cell that has a thumbnail gets one
image widget placed over its picture area.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from studio.printable import printable

CELL_WIDTH = 20  # columns a cell wants, border included
CELL_HEIGHT = 9  # rows: border, image, two caption lines
MAX_RATING = 5
_PLAIN = "╭─╮│╰╯"
_SELECTED = "┏━┓┃┗┛"


def stars(hit: Any) -> str:
    return ("★ " if hit.favourite else "") + ("●" * hit.rating + "○" * (MAX_RATING - hit.rating) if hit.rating else "")


class Cell(NamedTuple):
    hit: Any = None  # None: an empty place after the last hit
    thumb: Path | None = None
    selected: bool = False


def is_sixel(image_class: Any) -> bool:
    if image_class is None:
        return False
    from textual_image.widget.sixel import Image as SixelImage

    return issubclass(image_class, SixelImage)


class GalleryGrid(Widget, can_focus=True):
    """The cells of one page; it has the focus while the arrows move through the results."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"gallery-grid--border", "gallery-grid--selected"}
    DEFAULT_CSS = """
    GalleryGrid { height: 1fr; }
    GalleryGrid > .gallery-grid--border { color: $panel-lighten-2; }
    GalleryGrid > .gallery-grid--selected { color: $accent; }
    GalleryGrid .gallery-sixel { position: absolute; }
    """

    def __init__(self, image_class: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_class = image_class
        self.cols = self.rows = 0
        self.cells: list[Cell] = []
        self._rows: dict[int, list[Strip]] = {}  # cell index -> its drawn rows, until it changes
        self._pictures: OrderedDict[tuple, tuple[Any, list[Strip]]] = OrderedDict()
        self._sixel = is_sixel(image_class)
        self._sixels: dict[int, Any] = {}  # cell index -> its image widget (Sixel only)
        self._styles: tuple[Style, Style, Style] | None = None  # base, border, selected border
        self._wanted: dict[tuple, None] = {}  # pictures asked for by a draw, to render on a thread
        self._rendering: set[tuple] = set()  # handed to a worker, not back yet
        self._unreadable: set[tuple] = set()

    def styled(self) -> tuple[Style, Style, Style]:
        """The cells' styles, worked out once (`rich_style` is dear and every `refresh` forgets it)."""
        if self._styles is None:
            base = self.rich_style
            self._styles = (base, base + self.get_component_rich_style("gallery-grid--border", partial=True),
                            base + self.get_component_rich_style("gallery-grid--selected", partial=True))
        return self._styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None  # a theme or CSS change: draw every cell again
        self._rows.clear()

    class Fitted(Message):
        """The number of cells changed with the grid's size."""

    class Pictures(Message):
        """Thumbnails rendered on a thread: (path, width, height) -> (renderable, its rows), or None if unreadable."""

        def __init__(self, pictures: dict[tuple, tuple[Any, list[Strip]] | None]) -> None:
            super().__init__()
            self.pictures = pictures

    @property
    def page_size(self) -> int:
        return self.cols * self.rows

    def on_resize(self) -> None:
        if self.fit():
            self.post_message(self.Fitted())

    def fit(self) -> bool:
        """Columns and rows for the size now; True when the number of cells changed."""
        width, height = self.size
        if not width or not height:
            return False
        cols, rows = max(1, width // CELL_WIDTH), max(1, height // CELL_HEIGHT)
        self._rows.clear()  # the cells' sizes change with the grid's even when their number does not
        self.refresh()
        if (cols, rows) == (self.cols, self.rows):
            self._place_sixels()
            return False
        self.cols, self.rows = cols, rows
        self.cells = [Cell()] * (cols * rows)
        for index in [i for i in self._sixels if i >= cols * rows]:
            self._sixels.pop(index).remove()
        return True

    def box(self, index: int) -> Region:
        """Where cell `index` lies in the grid: the width and height shared out as evenly as they divide."""
        width, height = self.size
        col, row = index % self.cols, index // self.cols
        x, y = col * width // self.cols, row * height // self.rows
        return Region(x, y, (col + 1) * width // self.cols - x, (row + 1) * height // self.rows - y)

    def show(self, cells: list[Cell]) -> None:
        """A page to draw; only the cells that differ from what is drawn are repainted."""
        cells = (cells + [Cell()] * self.page_size)[: self.page_size]
        for index, cell in enumerate(cells):
            if cell != self.cells[index]:
                self.cells[index] = cell
                self._rows.pop(index, None)
                self.refresh(self.box(index))
        if self._sixel:
            self._place_sixels()

    # -- drawing ---------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if not self.cols or y >= height:
            return Strip.blank(width, self.styled()[0])
        row = min(self.rows - 1, (y * self.rows) // height)
        while row and y < row * height // self.rows:
            row -= 1
        while row < self.rows - 1 and y >= (row + 1) * height // self.rows:
            row += 1
        top = row * height // self.rows
        return Strip.join(self._cell_rows(row * self.cols + col)[y - top] for col in range(self.cols))

    def _cell_rows(self, index: int) -> list[Strip]:
        rows = self._rows.get(index)
        if rows is None:
            rows = self._rows[index] = self._draw_cell(self.cells[index], self.box(index))
        return rows

    def _draw_cell(self, cell: Cell, box: Region) -> list[Strip]:
        base, plain, selected = self.styled()
        blank = Strip.blank(box.width, base)
        if cell.hit is None or box.width < 3 or box.height < 3:
            return [blank] * box.height
        inner, picture_rows = box.width - 2, max(0, box.height - 4)
        style = selected if cell.selected else plain
        left, across, right, side, bottom_left, bottom_right = _SELECTED if cell.selected else _PLAIN
        edge = Strip([Segment(side, style)], 1)
        middle = self._picture(cell.thumb, inner, picture_rows) + self._caption(cell.hit, inner)
        rows = [Strip([Segment(left + across * inner + right, style)], box.width)]
        rows += [Strip.join([edge, line.adjust_cell_length(inner, base), edge]) for line in middle[: box.height - 2]]
        rows.append(Strip([Segment(bottom_left + across * inner + bottom_right, style)], box.width))
        return (rows + [blank] * box.height)[: box.height]

    def _caption(self, hit: Any, width: int) -> list[Strip]:
        head = Text().append(printable(f"{hit.session}:{hit.id}"), style="bold")  # spans: render() ignores Text.style
        if hit.favourite or hit.rating:
            head.append(" " + stars(hit), style="yellow")
        line = Text().append(printable(" ".join(hit.prompt.split())), style="dim")
        console = self.app.console
        strips = []
        for text in (head, line):
            text.truncate(width, overflow="ellipsis", pad=True)
            strips.append(Strip(list(text.render(console)), width).apply_style(self.styled()[0]))
        return strips

    def _picture(self, thumb: Path | None, width: int, height: int) -> list[Strip]:
        blank = [Strip.blank(width, self.styled()[0])] * height
        if thumb is None or self.image_class is None or self._sixel or not width or not height:
            return blank
        key = (thumb, width, height)
        drawn = self._pictures.get(key)
        if drawn is None:
            if key not in self._rendering and key not in self._unreadable:
                if not self._wanted:
                    self.call_later(self._render_wanted)  # once, after this draw has asked for all it lacks
                self._wanted[key] = None
            return blank  # drawn when its rows come back (`Pictures`)
        self._pictures.move_to_end(key)
        return drawn[1] + blank[len(drawn[1]):]

    def pictures_ready(self) -> bool:
        """Every cell with a thumbnail has its picture rendered (or found unreadable): what tests wait for."""
        if self.image_class is None or self._sixel:
            return True
        for index, cell in enumerate(self.cells):
            box = self.box(index)
            key = (cell.thumb, box.width - 2, box.height - 4)
            if cell.hit is not None and cell.thumb is not None and min(key[1:]) > 0 and box.width >= 3 \
                    and key not in self._pictures and key not in self._unreadable:
                return False
        return True

    def _render_wanted(self) -> None:
        keys, self._wanted = list(self._wanted), {}
        if keys:
            self._rendering.update(keys)
            self.run_worker(partial(self._render_pictures, self.image_class, keys), thread=True,
                            group="gallery-pictures", exit_on_error=False)

    def _render_pictures(self, image_class: Any, keys: list[tuple]) -> None:
        """On a thread: read, scale and render each thumbnail into rows (PIL's work, off the event loop)."""
        console = self.app.console
        done: dict[tuple, tuple[Any, list[Strip]] | None] = {}
        for key in keys:
            thumb, width, height = key
            try:
                renderable = image_class._Renderable(thumb, width, height)
                lines = console.render_lines(renderable, console.options.update_dimensions(width, height), pad=True)
                done[key] = (renderable, [Strip(line, width) for line in lines[:height]])
            except (OSError, ValueError):  # an unreadable thumbnail (or one too big for Kitty) draws as empty
                done[key] = None
            if len(done) == 8:  # a row or so at a time: the page fills in as they are made
                self.post_message(self.Pictures(done))
                done = {}
        if done:
            self.post_message(self.Pictures(done))

    def on_gallery_grid_pictures(self, message: Pictures) -> None:
        message.stop()
        for key, drawn in message.pictures.items():
            self._rendering.discard(key)
            if drawn is None:
                self._unreadable.add(key)
            else:
                self._pictures[key] = drawn
        while len(self._pictures) > max(64, 3 * self.page_size):  # this page and the ones either side
            self._pictures.popitem(last=False)[1][0].cleanup()  # a Kitty image leaves the terminal too
        thumbs = {key[0] for key in message.pictures}
        for index, cell in enumerate(self.cells):
            if cell.hit is not None and cell.thumb in thumbs:
                self._rows.pop(index, None)
                self.refresh(self.box(index))

    def _place_sixels(self) -> None:
        """Sixel only: one image widget over each picture area that has a thumbnail."""
        if not self._sixel or not self.cols:
            return
        for index, cell in enumerate(self.cells):
            widget = self._sixels.get(index)
            thumb = cell.thumb if cell.hit is not None else None
            if widget is None and thumb is None:
                continue
            if widget is None:
                widget = self._sixels[index] = self.image_class(thumb, classes="gallery-sixel")
                self.mount(widget)
            elif widget.image != thumb:
                widget.image = thumb
            box = self.box(index)
            widget.styles.offset = (box.x + 1, box.y + 1)
            widget.styles.width, widget.styles.height = max(1, box.width - 2), max(1, box.height - 4)
            widget.display = thumb is not None

    def on_unmount(self) -> None:
        for renderable, _ in self._pictures.values():
            renderable.cleanup()
        self._pictures.clear()

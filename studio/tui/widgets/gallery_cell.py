"""A gallery cell: one thumbnail, drawn with the preview's renderer, and two caption lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from studio.printable import printable

MAX_RATING = 5


def stars(hit: Any) -> str:
    return ("★ " if hit.favourite else "") + ("●" * hit.rating + "○" * (MAX_RATING - hit.rating) if hit.rating else "")


class Caption(Widget):
    """Two lines under a thumbnail; a fixed size, so a new caption repaints without a re-layout."""

    def __init__(self) -> None:
        super().__init__(classes="gallery-caption")
        self.text: Text = Text("")

    def set(self, text: Text) -> None:
        self.text = text
        self.refresh()

    def render(self) -> Text:
        return self.text


class GalleryCell(Vertical):
    """One thumbnail and its two caption lines; reused for whatever hit lands in its place."""

    def __init__(self, image_class: Any) -> None:
        super().__init__(classes="gallery-cell")
        self.image_class = image_class
        self.shown: Any = None  # the thumbnail path on screen
        self._state: Any = ()  # what the cell shows now: a page turn touches only the cells that change

    def compose(self) -> ComposeResult:
        if self.image_class is not None:
            yield self.image_class(None, classes="gallery-image")
        else:
            yield Static("", classes="gallery-image")
        yield Caption()

    def show(self, hit: Any, thumb: Path | None, selected: bool) -> None:
        state = (hit, thumb, selected)
        if state == self._state:
            return
        if not self._state or self._state[2] != selected:
            self.set_class(selected, "-selected")
        if not self._state or (self._state[0] is None) != (hit is None):
            self.set_class(hit is None, "-empty")
        self._state = state
        caption = self.query_one(Caption)
        if hit is None:
            caption.set(Text(""))
            self._picture(None)
            return
        head = Text(printable(f"{hit.session}:{hit.id}"), style="bold")
        if hit.favourite or hit.rating:
            head.append(" " + stars(hit), style="yellow")
        line = Text(printable(" ".join(hit.prompt.split())), style="dim")
        text = Text("\n").join([head, line])
        text.no_wrap, text.overflow = True, "ellipsis"
        caption.set(text)
        self._picture(thumb)

    def _picture(self, thumb: Path | None) -> None:
        if thumb == self.shown:
            return
        self.shown = thumb
        image = self.query_one(".gallery-image")
        if self.image_class is not None:
            image.image = thumb
        else:
            image.update("")

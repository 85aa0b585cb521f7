"""Compare two entries side by side, with a diff of their recipes."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from studio.printable import printable
from studio.tui.widgets.preview import image_or_line

# Bookkeeping that differs between any two runs and says nothing about the image.
_IGNORED = {"studio_version"}


def recipe_diff(a: Any, b: Any) -> list[tuple[str, str, str]]:
    """(field, value in a, value in b) for every recipe field that differs."""
    left, right = a.to_dict(), b.to_dict()
    return [
        (key, _show(left.get(key)), _show(right.get(key)))
        for key in left
        if key not in _IGNORED and left.get(key) != right.get(key)
    ]


def _show(value: Any) -> str:
    """A recipe value as one printable line: prompts and names come from files anyone writes."""
    if isinstance(value, str):
        return printable(value) if value else '""'
    return printable(value)


def _with_mask(entry: Any, image: Any) -> Any:
    """An inpainted entry's image with its mask tinted over it (red, half strength); others as they are."""
    if image is None or not entry.recipe.mask:
        return image
    from PIL import Image, UnidentifiedImageError

    from studio.iterate import tinted

    try:
        with Image.open(image) as picture:
            return tinted(picture, entry.recipe)
    except (OSError, UnidentifiedImageError, ValueError):
        return image


class CompareScreen(Screen):
    DEFAULT_CSS = """
    CompareScreen #compare-images { height: 2fr; }
    CompareScreen .compare-side { align: center middle; width: 1fr; border: round $panel-lighten-2; }
    CompareScreen .compare-image { height: 1fr; width: auto; }
    CompareScreen .compare-caption { height: 1; width: auto; color: $text-muted; }
    CompareScreen #compare-diff { height: 1fr; border: round $panel-lighten-2; }
    """
    BINDINGS = [Binding("escape,q,c", "app.pop_screen", "Close")]

    def __init__(self, left: Any, right: Any, left_image: Any, right_image: Any, image_class: Any) -> None:
        super().__init__()
        self.left, self.right = left, right
        self.images = tuple(_with_mask(entry, image) for entry, image in ((left, left_image), (right, right_image)))
        self.image_class = image_class
        self.diff = recipe_diff(left.recipe, right.recipe)

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-images"):
            for entry, image in zip((self.left, self.right), self.images, strict=True):
                with Vertical(classes="compare-side"):
                    if self.image_class is not None and image is not None:
                        yield image_or_line(self.image_class, image, classes="compare-image")
                    else:
                        yield Static("(no image)", classes="compare-image")
                    masked = " · mask tinted" if entry.recipe.mask and image is not None else ""
                    yield Static(f"#{entry.id} · seed {entry.recipe.seed}{masked}", classes="compare-caption")
        with VerticalScroll(id="compare-diff"):
            yield Static(self._diff_table())
        yield Footer()

    def _diff_table(self) -> Any:
        diff = self.diff
        if not diff:
            return "the two recipes are the same"
        table = Table(expand=True, show_edge=False)
        table.add_column("field", style="bold")
        table.add_column(f"#{self.left.id}", style="red")
        table.add_column(f"#{self.right.id}", style="green")
        for key, a, b in diff:
            table.add_row(key, escape(a), escape(b))
        return table

"""One entry of any session, full screen: its image and its whole recipe (from the gallery's Enter)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from studio.printable import printable
from studio.tui.widgets.preview import image_or_line


def recipe_table(entry: Any) -> Table:
    """The entry's recipe, a field a row; every value is file text, so it goes through printable."""
    table = Table(expand=True, show_header=False, show_edge=False, box=None)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in entry.recipe.to_dict().items():
        table.add_row(key, Text(printable(str(value), one_line=False)))
    for key in ("status", "time", "rating", "favourite", "note", "model_hash"):
        table.add_row(key, Text(printable(str(getattr(entry, key, "")), one_line=False)))
    return table


class EntryDetail(Screen):
    BINDINGS = [Binding("escape,q,enter", "app.pop_screen", "Close")]
    DEFAULT_CSS = """
    EntryDetail #detail-body { height: 1fr; }
    EntryDetail #detail-side { width: 1fr; align: center middle; }
    EntryDetail #detail-image { height: 100%; width: auto; }
    EntryDetail #detail-recipe { width: 1fr; border: round $panel-lighten-2; }
    EntryDetail #detail-caption { height: 1; color: $text-muted; }
    """

    def __init__(self, session_name: str, entry: Any, image: Any, image_class: Any) -> None:
        super().__init__()
        self.session_name = session_name
        self.entry = entry
        self.image = image
        self.image_class = image_class

    def compose(self) -> ComposeResult:
        with Horizontal(id="detail-body"):
            with Vertical(id="detail-side"):
                if self.image_class is not None and self.image is not None:
                    yield image_or_line(self.image_class, self.image, id="detail-image")
                else:
                    yield Static("(no image)", id="detail-image")
            with VerticalScroll(id="detail-recipe"):
                yield Static(recipe_table(self.entry))
        yield Static(Text(printable(f"{self.session_name}:{self.entry.id} · seed {self.entry.recipe.seed}")),
                     id="detail-caption")
        yield Footer()

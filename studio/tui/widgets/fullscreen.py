"""A full-screen view of one image."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center
from textual.screen import Screen
from rich.markup import escape
from textual.widgets import Footer, Static

from studio.printable import printable
from studio.tui.widgets.preview import image_or_line


def fullscreen_caption(link: str, prompt: str = "") -> str:
    """Markup for the caption: the prompt, printable and escaped (it is file text), then the file's link."""
    if not prompt:
        return link
    return f"{escape(printable(' '.join(prompt.split())))}  {link}"


class FullscreenPreview(Screen):
    DEFAULT_CSS = """
    FullscreenPreview #full-canvas { align: center middle; height: 1fr; }
    FullscreenPreview #full-image { height: 100%; width: auto; }
    FullscreenPreview #full-caption { height: 1; color: $text-muted; }
    """
    BINDINGS = [Binding("escape,q,v,ctrl+f", "app.pop_screen", "Close")]

    def __init__(self, image: Any, image_class: Any, caption: str) -> None:
        super().__init__()
        self.image = image
        self.image_class = image_class
        self.caption = caption

    def compose(self) -> ComposeResult:
        with Center(id="full-canvas"):
            if self.image_class is not None and self.image is not None:
                yield image_or_line(self.image_class, self.image, id="full-image")
            else:
                yield Static("nothing to show")
        yield Static(self.caption, id="full-caption")
        yield Footer()

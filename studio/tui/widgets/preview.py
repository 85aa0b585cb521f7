"""The preview pane: the current image, live step previews while a job renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.widgets import Static

from studio.printable import printable
from studio.tui.widgets.live_preview import LivePreview


def file_link(path: Path, text: str | None = None) -> str:
    """Content markup for a path as an OSC 8 hyperlink (plain text where unsupported)."""
    path = Path(path).resolve()
    return f"[link={escape(path.as_uri())!r}]{escape(printable(text or str(path)))}[/link]"


class PreviewPane(Vertical, can_focus=True):
    """Pane 3. Finished images with the renderer the app picked; live previews as half-cells."""

    BORDER_TITLE = "3 Preview"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._image_class: Any = None
        self._image_widget: Any = None
        self.current: Any = None  # a Path or a PIL image
        self.path: Path | None = None  # the file shown, if any (for full screen)
        self._live = LivePreview(id="live")
        self._live.display = False

    def compose(self) -> ComposeResult:
        with Center(id="canvas"):
            yield Static("no image yet · ctrl+g to generate", id="placeholder")
        yield Static("", id="caption")

    def on_mount(self) -> None:
        # Hidden until a job's first step: mounted just after the first frame.
        self.call_after_refresh(self.query_one("#canvas").mount, self._live, after="#placeholder")

    def set_renderer(self, image_class: Any) -> None:
        """Called once textual-image is loaded (None: graphics off)."""
        self._image_class = image_class
        if self.path is not None:
            self._show_file(self.path)

    def show_file(self, path: Path, caption: str = "") -> None:
        self.path = Path(path)
        self.current = self.path
        self._show_file(self.path)
        link = file_link(self.path, f"{self.path.parent.name}/{self.path.name}")
        self.query_one("#caption", Static).update(f"{escape(printable(caption))}  {link}" if caption else link)

    def show_live(self, image: Any) -> None:
        """A step preview; the status bar shows which step, so nothing here re-lays out."""
        if self._image_class is None:
            return  # graphics off (or not loaded yet)
        self.current = image
        self.path = None
        live = self._live
        if not live.display:
            self._only(live)
            self.query_one("#caption", Static).update("live preview")
        live.set_image(image)

    def _show_file(self, path: Path) -> None:
        if self._image_class is None:
            return  # the caption names the file; textual-image is not loaded yet, or graphics are off
        image = read_image(path)
        if isinstance(image, str):  # deleted, cut short or not an image: say so, keep running
            placeholder = self.query_one("#placeholder", Static)
            placeholder.update(escape(image))
            self._only(placeholder)
            return
        if self._image_widget is None:
            self._image_widget = self._image_class(image, id="image")
            self.query_one("#canvas").mount(self._image_widget)
        else:
            self._image_widget.image = image
        self._only(self._image_widget)

    def _only(self, shown: Any) -> None:
        for child in self.query_one("#canvas").children:
            child.display = child is shown


def read_image(path: Path) -> Any:
    """The image at `path`, decoded (a PIL image), or one printable line saying why it cannot be shown.

    Decoded here, not by the renderer as it draws: a file deleted since it was recorded, cut short
    or not an image at all would otherwise raise inside the render and close the window.
    """
    from PIL import Image

    try:
        with Image.open(path) as opened:
            opened.load()
            return opened.copy()
    except FileNotFoundError:
        return f"image missing: {printable(Path(path).name)} (deleted or moved since it was made)"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"cannot show {printable(Path(path).name)}: {printable(str(exc) or type(exc).__name__)}"


def image_or_line(image_class: Any, image: Any, **kwargs: Any) -> Any:
    """A renderer widget for `image` (a path or a PIL image), or a Static line saying why not."""
    if isinstance(image, (str, Path)):
        image = read_image(Path(image))
    if isinstance(image, str):
        return Static(escape(image), **kwargs)
    return image_class(image, **kwargs)

"""Live step previews, drawn as coloured half-cells by studio itself.

A step preview is a latent projection (1/8 of the image's size), so half-cells
show all there is to see, whatever the terminal supports. Drawing it here
costs a resize in PIL and one styled cell per character, with no re-layout
and no image encoding, so previews several times a second do not slow typing.
Finished images still go through textual-image (Kitty, Sixel, ...).
"""

from __future__ import annotations

from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget


class LivePreview(Widget):
    DEFAULT_CSS = """
    LivePreview {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._image: Any = None
        self._lines: list[Strip] | None = None

    def set_image(self, image: Any) -> None:
        self._image = image
        self._lines = None
        self.refresh()  # repaint only: the widget's size never depends on the image

    def on_resize(self) -> None:
        self._lines = None

    def render_line(self, y: int) -> Strip:
        if self._lines is None:
            self._lines = self._draw(self.size.width, self.size.height)
        return self._lines[y] if y < len(self._lines) else Strip.blank(self.size.width)

    def _draw(self, width: int, height: int) -> list[Strip]:
        if self._image is None or width < 1 or height < 1:
            return []
        from PIL import Image

        image = self._image.convert("RGB")
        aspect = image.width / max(image.height, 1)
        # A half-cell is about square, so a cell is one pixel wide and two tall.
        cols = width
        pixel_rows = max(2, round(cols / aspect))
        if pixel_rows > 2 * height:
            pixel_rows = 2 * height
            cols = max(1, round(pixel_rows * aspect))
        pixel_rows -= pixel_rows % 2
        # Upscaling a latent preview adds nothing: nearest keeps runs of equal cells to merge.
        grow = cols >= image.width
        small = image.resize((cols, pixel_rows), Image.Resampling.NEAREST if grow else Image.Resampling.BOX)
        data = bytes(value & 0xF8 for value in small.tobytes())  # 32 levels a channel: styles repeat
        left = (width - cols) // 2
        top = (height - pixel_rows // 2) // 2
        blank = Strip.blank(width)
        lines = [blank] * top
        stride = cols * 3
        for row in range(0, pixel_rows, 2):
            upper, lower = data[row * stride : (row + 1) * stride], data[(row + 1) * stride : (row + 2) * stride]
            segments = [Segment(" " * left)] if left else []
            run, start = None, 0
            for x in range(cols + 1):
                key = (upper[3 * x : 3 * x + 3], lower[3 * x : 3 * x + 3]) if x < cols else None
                if key != run:
                    if run is not None:
                        segments.append(Segment("▀" * (x - start), _style(run)))
                    run, start = key, x
            lines.append(Strip(segments).extend_cell_length(width))
        return lines


_STYLES: dict[tuple[bytes, bytes], Style] = {}


def _style(key: tuple[bytes, bytes]) -> Style:
    """One Style per colour pair, kept: building Styles is the slow part of drawing."""
    style = _STYLES.get(key)
    if style is None:
        if len(_STYLES) > 50_000:
            _STYLES.clear()
        upper, lower = key
        style = _STYLES[key] = Style(color=Color.from_rgb(*upper), bgcolor=Color.from_rgb(*lower))
    return style

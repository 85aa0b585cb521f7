"""Small coloured half-cell thumbnails for lists: no graphics protocol needed.

History rows use these rather than terminal graphics so that scrolling a long
list never juggles dozens of Kitty or Sixel images; each cell is '▀' with the
upper pixel as foreground and the lower one as background.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

THUMB_COLS = 8  # cells; 8 x 8 pixels -> 8 columns x 4 rows


class HalfcellThumbnail:
    """A Rich renderable of a tiny RGB image (a list of rows of (r, g, b))."""

    def __init__(self, pixels: list[list[tuple[int, int, int]]]) -> None:
        self.pixels = pixels

    @property
    def rows(self) -> int:
        return (len(self.pixels) + 1) // 2

    def lines(self) -> list[Text]:
        """The thumbnail as Text lines, to set beside other text without a Table."""
        pixels = self.pixels
        out = []
        for top in range(0, len(pixels), 2):
            upper = pixels[top]
            lower = pixels[top + 1] if top + 1 < len(pixels) else None
            line = Text()
            for x, rgb in enumerate(upper):
                bg = Color.from_rgb(*lower[x]) if lower else None
                line.append("▀", Style(color=Color.from_rgb(*rgb), bgcolor=bg))
            out.append(line)
        return out

    def __rich_console__(self, console: Any, options: Any):
        pixels = self.pixels
        for top in range(0, len(pixels), 2):
            upper = pixels[top]
            lower = pixels[top + 1] if top + 1 < len(pixels) else None
            for x, rgb in enumerate(upper):
                bg = Color.from_rgb(*lower[x]) if lower else None
                yield Segment("▀", Style(color=Color.from_rgb(*rgb), bgcolor=bg))
            yield Segment.line()

    def __rich_measure__(self, console: Any, options: Any):
        from rich.measure import Measurement

        width = len(self.pixels[0]) if self.pixels else 0
        return Measurement(width, width)


def load_thumbnail(path: Path, cols: int = THUMB_COLS) -> HalfcellThumbnail | None:
    """Read an image and shrink it to `cols` x `cols` pixels; None if unreadable."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            image.draft("RGB", (cols * 4, cols * 4))  # JPEGs decode smaller, faster
            small = image.convert("RGB").resize((cols, cols), Image.Resampling.BOX)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    data = list(small.getdata())
    return HalfcellThumbnail([data[y * cols : (y + 1) * cols] for y in range(cols)])

"""The labelled grid PNG of a finished sweep, one per Z value, laid out as A1111 draws it.

X labels centred above their columns, Y labels to the left of their rows, the
Z label (when there is a Z axis) as a title over the whole. A cell that has no
image (it failed, or was cancelled) is left blank. The PNG carries A1111's
`parameters` of its first cell, as A1111's grids do, and a `studio-sweep`
chunk describing the sweep (its id, axes, labels and cell entry ids).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.atomic import atomic_writer

if TYPE_CHECKING:
    from PIL import Image

SWEEP_KEY = "studio-sweep"
_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)


def compose(
    cells: dict[tuple[int, int], Image.Image | None],
    size: tuple[int, int],
    x_labels: list[str],
    y_labels: list[str],
    title: str = "",
) -> Image.Image:
    """One grid: `cells[(x, y)]` an image (or None), each `size` big; empty labels draw nothing."""
    from PIL import Image, ImageDraw

    width, height = size
    nx, ny = max(len(x_labels), 1), max(len(y_labels), 1)
    font = _font(max(12, (width + height) // 25))
    line = _line_height(font)
    column_lines = [_wrap(text, font, width) for text in x_labels]
    row_width = min(max((_text_width(font, text) for text in y_labels), default=0), 3 * width)
    row_lines = [_wrap(text, font, row_width) for text in y_labels]
    pad = line // 2
    top = (max((len(lines) for lines in column_lines), default=0) * line + pad) if any(x_labels) else 0
    left = (row_width + 2 * pad) if any(y_labels) else 0
    title_lines = _wrap(title, font, left + nx * width) if title else []
    head = len(title_lines) * line + (pad if title_lines else 0)
    grid = Image.new("RGB", (left + nx * width, head + top + ny * height), _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    _draw_lines(draw, title_lines, font, 0, left + nx * width, 0, line)
    for i, lines in enumerate(column_lines):
        _draw_lines(draw, lines, font, left + i * width, width, head + top - pad - len(lines) * line, line)
    for j, lines in enumerate(row_lines):
        y = head + top + j * height + (height - len(lines) * line) // 2
        _draw_lines(draw, lines, font, pad, row_width, y, line)
    for (i, j), image in cells.items():
        if image is not None:
            grid.paste(image.convert("RGB").resize(size) if image.size != size else image.convert("RGB"),
                       (left + i * width, head + top + j * height))
    return grid


def save_grid(image: Image.Image, path: Path, parameters: str, sweep: dict[str, Any]) -> None:
    """Write the grid atomically, with the first cell's A1111 parameters and the sweep described."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if parameters:
        info.add_text("parameters", parameters)
    info.add_itxt(SWEEP_KEY, json.dumps(sweep, ensure_ascii=False, sort_keys=True))
    info.add_text("Software", "studio")
    with atomic_writer(Path(path)) as handle:
        image.save(handle, format="PNG", pnginfo=info)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # a Pillow built without FreeType: the bitmap font
        return ImageFont.load_default()


def _line_height(font: Any) -> int:
    _, top, _, bottom = font.getbbox("Ag")
    return int(bottom - top) + 4


def _text_width(font: Any, text: str) -> int:
    return int(font.getlength(text)) if text else 0


def _wrap(text: str, font: Any, width: int) -> list[str]:
    """`text` in lines no wider than `width` (a single long word stays whole)."""
    if not text:
        return []
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(font, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _draw_lines(draw: Any, lines: list[str], font: Any, x: int, width: int, y: int, line: int) -> None:
    for n, text in enumerate(lines):
        draw.text((x + (width - _text_width(font, text)) // 2, y + n * line), text, font=font, fill=_INK)

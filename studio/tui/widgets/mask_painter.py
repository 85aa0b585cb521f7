"""The mask painter: paint where to repaint over an image, with the mouse or the keyboard alone.

The image fills the canvas as coloured half-cells ("▀": the top pixel is the
foreground, the bottom one the background), so the mask has two rows a cell.
The grid is as large as the screen allows, up to one half-cell an image pixel,
and follows the terminal's size (the mask painted so far is rescaled with it).
The mouse paints (left button) and erases (right button, or shift); where the
terminal reports pixel positions the pointer's half-cell is exact. Without
mouse reporting a cursor moves with the arrows or hjkl and space paints, x
erases. Painted pixels are tinted red over the image. Enter saves the mask as
a PNG at the image's size (white repaints) and closes with its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Input, Static

from studio.printable import printable
from studio.tui.actions import bindings

CHROME_ROWS = 2  # the caption and the footer under the canvas
TINT = np.array([255, 0, 0])


class MaskCanvas(Widget, can_focus=True):
    """The image and the mask over it, one half-cell a mask pixel."""

    def __init__(self, image: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.brush = 2  # radius in half-cells
        self._stroke: bool | None = None  # True paints, False erases, while a button is down
        self.mask = np.zeros(image.shape[:2], dtype=bool)
        self.set_grid(image)

    def set_grid(self, image: np.ndarray) -> None:
        """Show `image` ((rows*2, columns, 3) uint8, scaled to the grid); the mask follows it."""
        from PIL import Image

        if self.mask.shape != image.shape[:2]:
            scaled = Image.fromarray(self.mask.astype(np.uint8) * 255).resize(image.shape[1::-1], Image.Resampling.NEAREST)
            self.mask = np.asarray(scaled) >= 128
        self.pixels = image
        self.cursor = (image.shape[1] // 2, image.shape[0] // 2)  # (x, half-row y)
        self.styles.width = image.shape[1]
        self.styles.height = image.shape[0] // 2
        self.refresh()

    def render_line(self, y: int) -> Strip:
        if 2 * y + 1 >= self.pixels.shape[0]:
            return Strip.blank(self.size.width)
        shown = self.pixels.astype(int)
        tinted = np.where(self.mask[..., None], (shown + TINT) // 2, shown)
        segments = []
        for x in range(self.pixels.shape[1]):
            top, bottom = tinted[2 * y, x], tinted[2 * y + 1, x]
            style = Style(color=_rgb(top), bgcolor=_rgb(bottom))
            if self.has_focus and (x, 2 * y) == self.cursor or (x, 2 * y + 1) == self.cursor:
                style += Style(reverse=True)
            segments.append(Segment("▀", style))
        return Strip(segments)

    def dab(self, x: int, y: int, paint: bool) -> None:
        """Paint (or erase) a round dab of the brush's radius at half-cell (x, y)."""
        rows, columns = self.mask.shape
        ys, xs = np.ogrid[:rows, :columns]
        self.mask[(xs - x) ** 2 + (ys - y) ** 2 <= self.brush**2] = paint
        self.refresh()

    def move(self, dx: int, dy: int) -> None:
        x, y = self.cursor
        self.cursor = (min(max(x + dx, 0), self.mask.shape[1] - 1), min(max(y + dy, 0), self.mask.shape[0] - 1))
        self.refresh()

    def _at(self, event: events.MouseEvent) -> tuple[int, int]:
        return int(event.pointer_x), int(event.pointer_y * 2)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._stroke = not (event.button == 3 or event.shift)
        self.capture_mouse()
        self.cursor = self._at(event)
        self.dab(*self.cursor, self._stroke)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._stroke is not None:
            self.cursor = self._at(event)
            self.dab(*self.cursor, self._stroke)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._stroke = None
        self.release_mouse()


class MaskPainter(Screen[Path | None]):
    """Paint a mask over `image_path`; dismissed with the saved mask's path, or None."""

    BINDINGS = bindings("painter")

    def __init__(self, image_path: Path, mask_path: Path, initial_mask: Path | None = None) -> None:
        super().__init__()
        from PIL import Image

        self.image_path, self.mask_path = Path(image_path), Path(mask_path)
        with Image.open(self.image_path) as image:
            self.picture = image.convert("RGB")
        self.size_px = self.picture.size
        self.canvas = MaskCanvas(self._grid(80, 24), id="mask-canvas")
        if initial_mask is not None:
            self.load_mask(initial_mask)

    def compose(self) -> ComposeResult:
        yield self.canvas
        yield Static(self._caption(), id="mask-caption")
        yield Footer()

    def on_mount(self) -> None:
        self.canvas.focus()

    def on_resize(self, event: events.Resize) -> None:
        grid = self._grid(event.size.width, event.size.height)
        if grid.shape != self.canvas.pixels.shape:
            self.canvas.set_grid(grid)
            self._changed()

    def _grid(self, width: int, height: int) -> np.ndarray:
        """The picture at the largest grid that fits width x height cells (less the chrome)."""
        from PIL import Image

        w, h = self.size_px
        scale = min(width / w, 2 * max(1, height - CHROME_ROWS) / h, 1.0)
        columns, rows = max(1, int(w * scale)), max(2, int(h * scale) // 2 * 2)
        return np.asarray(self.picture.resize((columns, rows), Image.Resampling.LANCZOS))

    def _caption(self) -> str:
        painted = self.canvas.mask.mean() * 100
        return f"mask over {self.image_path.name} · brush {self.canvas.brush} · {painted:.0f}% painted"

    def _changed(self) -> None:
        self.query_one("#mask-caption", Static).update(self._caption())
        self.canvas.refresh()

    def load_mask(self, path: Path) -> None:
        """A mask file (white repaints), scaled to the grid."""
        from PIL import Image

        with Image.open(path) as mask:
            grid = np.asarray(mask.convert("L").resize(self.canvas.mask.shape[::-1]))
        self.canvas.mask = grid >= 128

    def mask_image(self):
        from PIL import Image

        grid = Image.fromarray(self.canvas.mask.astype(np.uint8) * 255)
        return grid.resize(self.size_px, Image.Resampling.NEAREST)

    # -- the keys (studio/tui/actions.py, where="painter") ------------------------

    def action_cursor(self, dx: int, dy: int) -> None:
        self.canvas.move(dx, dy)

    def action_dab(self, paint: bool) -> None:
        self.canvas.dab(*self.canvas.cursor, paint)
        self._changed()

    def action_brush(self, delta: int) -> None:
        self.canvas.brush = min(max(self.canvas.brush + delta, 0), 32)
        self._changed()

    def action_fill(self, value: str) -> None:
        mask = self.canvas.mask
        self.canvas.mask = ~mask if value == "invert" else np.full_like(mask, value == "fill")
        self._changed()

    def action_save(self) -> None:
        from studio.atomic import atomic_writer

        if not self.canvas.mask.any():
            self.notify("nothing painted: paint where to repaint, or f to fill", severity="warning")
            return
        with atomic_writer(self.mask_path) as handle:
            self.mask_image().save(handle, format="PNG")
        self.dismiss(self.mask_path)

    def action_close(self) -> None:
        fields = self.query("#mask-file")
        if fields:  # escape in the mask-file field closes the field, not the painter
            fields.remove()
            self.canvas.focus()
            return
        self.dismiss(None)

    def action_open_mask(self) -> None:
        if self.query("#mask-file"):
            self.query_one("#mask-file", Input).focus()
            return
        field = Input(placeholder="mask file (white repaints), enter to load, escape to go back", id="mask-file")
        self.mount(field, before=self.query_one(Footer))
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from studio.iterate import open_image
        from studio.recipe import RecipeError

        event.stop()
        path = Path(event.value.strip()).expanduser()
        try:
            open_image(path, "mask")
            self.load_mask(path)
        except RecipeError as exc:
            self.notify(printable(str(exc)), severity="error")
            return
        event.input.remove()
        self._changed()
        self.canvas.focus()


def _rgb(pixel: np.ndarray) -> str:
    return f"rgb({int(pixel[0])},{int(pixel[1])},{int(pixel[2])})"

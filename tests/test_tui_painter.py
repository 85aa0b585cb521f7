"""The mask painter on its own (no engine): it fills the screen, follows resizes, keeps the
mask-file field's escape to itself, and looks as it should (a snapshot); compare tints masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from textual.app import App
from textual.widgets import Input

from studio.iterate import tinted
from studio.recipe import Recipe
from studio.tui.widgets.mask_painter import MaskCanvas, MaskPainter


def drawn(folder, size=(512, 256)):
    image = Image.new("RGB", size, (255, 255, 0))
    ImageDraw.Draw(image).rectangle((2, 2, size[0] // 2, size[1] // 2), fill=(0, 0, 255))
    image.save(folder / "picture.png")
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((size[0] // 2, size[1] // 4, size[0] - 4, size[1] - 4), fill=255)
    mask.save(folder / "mask.png")
    return folder / "picture.png", folder / "mask.png"


class PainterApp(App):
    def __init__(self, image, mask_path, initial=None):
        super().__init__()
        self.args = (image, mask_path, initial)
        self.result = "open"

    def on_mount(self) -> None:
        def closed(value):
            self.result = value

        self.push_screen(MaskPainter(*self.args), closed)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_grid_fills_the_screen_and_follows_a_resize_keeping_the_mask(tmp_path, anyio_backend):
    image, mask = drawn(tmp_path)
    app = PainterApp(image, tmp_path / "out.png", mask)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        canvas = app.screen.query_one(MaskCanvas)
        assert canvas.mask.shape == (40, 80) and canvas.size.width == 80 and canvas.size.height == 20
        painted = canvas.mask.mean()
        assert 0.1 < painted < 0.4 and canvas.mask[20, 60] and not canvas.mask[5, 5]
        await pilot.resize_terminal(120, 48)
        await pilot.pause()
        assert canvas.mask.shape == (60, 120) and canvas.size.width == 120
        assert abs(canvas.mask.mean() - painted) < 0.02 and canvas.mask[30, 90]
        await pilot.resize_terminal(300, 40)
        await pilot.pause()
        assert canvas.mask.shape == (76, 152)  # height-bound: 38 rows, two half-cells each
    (tmp_path / "small").mkdir()
    small = PainterApp(drawn(tmp_path / "small", (64, 32))[0], tmp_path / "o2.png")
    async with small.run_test(size=(120, 48)) as pilot:
        await pilot.pause()
        assert small.screen.query_one(MaskCanvas).mask.shape == (32, 64)  # never finer than the image


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_escape_in_the_mask_file_field_closes_the_field_not_the_painter(tmp_path, anyio_backend):
    image, mask = drawn(tmp_path)
    app = PainterApp(image, tmp_path / "out.png")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("o")
        field = app.screen.query_one("#mask-file", Input)
        assert field.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MaskPainter) and not app.screen.query("#mask-file")
        assert app.screen.query_one(MaskCanvas).has_focus and app.result == "open"
        await pilot.press("o", *str(mask), "enter")
        await pilot.pause()
        assert app.screen.query_one(MaskCanvas).mask.any() and not app.screen.query("#mask-file")
        await pilot.press("escape")
        await pilot.pause()
        assert app.result is None and not isinstance(app.screen, MaskPainter)


def test_mask_painter_snapshot(snap_compare, tmp_path):
    image, mask = drawn(tmp_path)
    assert snap_compare(PainterApp(image, tmp_path / "out.png", mask), terminal_size=(80, 24))


def test_compare_tints_the_mask_over_the_image(tmp_path):
    image, mask = drawn(tmp_path, (64, 64))
    recipe = Recipe(prompt="x", model="studio-tiny", width=64, height=64, init_image=str(image), mask=str(mask))
    shown = np.asarray(tinted(Image.open(image), recipe)).astype(int)
    before = np.asarray(Image.open(image).convert("RGB")).astype(int)
    painted = np.asarray(Image.open(mask))
    white, black = painted == 255, painted == 0
    assert white.sum() > 100 and (shown[black] == before[black]).all()
    assert (np.abs(shown[white] - (before[white] + [255, 0, 0]) / 2) <= 1).all()  # half red
    assert (np.asarray(tinted(Image.open(image), recipe.replace(mask="", init_image=""))) == before).all()

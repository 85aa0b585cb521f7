"""The mask painter and the history keys that take an entry further, driven by the pilot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter
from textual.widgets import Input, TextArea

from studio.engine import LocalEngine
from studio.tui.app import make_app
from studio.tui.widgets.mask_painter import MaskCanvas, MaskPainter
from tests.test_tui_support import started, wait_until

SIZE = (120, 48)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app(tmp_path):
    engines = []

    def factory(on_event):
        engines.append(LocalEngine(on_event, reserve_core=False))
        return engines[-1]

    made = make_app(tmp_path / "sessions", None, engine_factory=factory, graphics="halfcell", model="studio-tiny")
    yield made
    for engine in engines:
        engine.shutdown(wait=True)


def done(app):
    return [e for e in app.session.entries() if e.status == "done"]


async def make_first_image(app, pilot):
    await started(pilot)
    app.query_one("#prompt", TextArea).text = "a blue square on a yellow background"
    app.query_one("#steps", Input).value = "8"
    app.query_one("#size", Input).value = "64x64"
    app.query_one("#seed", Input).value = "5"
    app.query_one("#seed-lock").value = True
    await pilot.press("ctrl+g")
    await wait_until(pilot, lambda: len(done(app)) == 1, timeout=120)


@pytest.mark.slow
async def test_paint_with_mouse_and_keyboard_then_inpaint(app):
    async with app.run_test(size=SIZE) as pilot:
        await make_first_image(app, pilot)
        app.query_one("#prompt", TextArea).text = "a red circle on a yellow background"
        app.query_one("#strength", Input).value = "1.0"
        await pilot.press("alt+5", "m")
        painter = await wait_until(pilot, lambda: isinstance(app.screen, MaskPainter) and app.screen)
        canvas = painter.query_one(MaskCanvas)
        assert canvas.mask.shape == (64, 64)  # one half-cell a pixel of the 64x64 image
        # the mouse: a dab near the top left, then erase part of it with shift
        await pilot.mouse_down(canvas, offset=(8, 4))
        await pilot.mouse_up(canvas, offset=(8, 4))
        assert canvas.mask[8, 8] and canvas.mask[6:11, 6:11].sum() >= 13
        await pilot.mouse_down(canvas, offset=(10, 4), shift=True)
        await pilot.mouse_up(canvas, offset=(10, 4))
        assert not canvas.mask[8, 10] and canvas.mask[8, 6]
        # the keyboard alone: a bigger brush, the cursor to the lower right, space
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert canvas.brush == 4
        start = canvas.cursor
        await pilot.press(*["l"] * 14, *["j"] * 14, "space")
        x, y = start[0] + 14, start[1] + 14
        assert canvas.cursor == (x, y) and canvas.mask[y, x] and canvas.mask[y - 4, x] and not canvas.mask[y - 5, x]
        await pilot.press("i")
        assert not canvas.mask[y, x]
        await pilot.press("i", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, MaskPainter))
        await wait_until(pilot, lambda: len(done(app)) == 2, timeout=120)

        first, inpainted = done(app)
        recipe = inpainted.recipe
        assert recipe.init_image == str(app.session.image_path(first.images[0]).resolve())
        assert recipe.mask and recipe.mask_hash and recipe.strength == 1.0
        mask = Image.open(recipe.mask)
        assert mask.size == (64, 64)
        painted = np.asarray(mask) > 0
        assert painted[8, 6] and painted[y, x] and not painted[8, 10] and painted.mean() < 0.2
        blurred = np.asarray(mask.filter(ImageFilter.GaussianBlur(recipe.mask_blur)))
        before = np.asarray(Image.open(app.session.image_path(first.images[0])).convert("RGB"))
        after = np.asarray(Image.open(app.session.image_path(inpainted.images[0])).convert("RGB"))
        assert (after[blurred == 0] == before[blurred == 0]).all()
        assert (after[painted] != before[painted]).any()  # repainted where painted


@pytest.mark.slow
async def test_img2img_and_variation_from_history(app):
    async with app.run_test(size=SIZE) as pilot:
        await make_first_image(app, pilot)
        app.query_one("#strength", Input).value = "0.5"
        app.query_one("#variation", Input).value = "0.25"
        await pilot.press("alt+5", "i")
        await wait_until(pilot, lambda: len(done(app)) == 2, timeout=120)
        await pilot.press("ctrl+down", "V")  # the first entry again, under the new one
        await wait_until(pilot, lambda: len(done(app)) == 3, timeout=120)
        first, img2img, varied = done(app)
        assert img2img.recipe.init_image.endswith(first.images[0]) and img2img.recipe.strength == 0.5
        assert varied.recipe.seed == first.recipe.seed and varied.recipe.variation_strength == 0.25
        assert not varied.recipe.init_image


async def test_bad_strength_is_one_line(app):
    async with app.run_test(size=SIZE) as pilot:
        await make_first_image(app, pilot)
        app.query_one("#strength", Input).value = "3"
        await pilot.press("alt+5", "i")
        await pilot.pause()
        assert len(app.session.entries()) == 1
        assert any("strength must be between 0 and 1" in n.message for n in app._notifications)


@pytest.mark.slow
async def test_the_form_holds_an_init_image_and_mask_across_generates_until_cleared(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        await make_first_image(app, pilot)
        first = done(app)[0]
        image = app.session.image_path(first.images[0]).resolve()
        app.query_one("#strength", Input).value = "0.4"
        app.query_one("#seed-lock").value = False
        app.query_one("#size", Input).value = "32x32"
        await pilot.press("alt+5", "I")
        assert app.query_one("#init", Input).value == str(image)
        assert app.query_one("#size", Input).value == "64x64"  # the entry's size
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(done(app)) == 2, timeout=120)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(done(app)) == 3, timeout=120)
        held = done(app)[1:]
        assert all(e.recipe.init_image == str(image) and e.recipe.strength == 0.4 for e in held)
        assert held[0].recipe.seed != held[1].recipe.seed  # kept across generates, new seeds
        assert app.query_one("#init", Input).value == str(image)

        # a mask from a file, in the form's field: ctrl+g inpaints
        mask = tmp_path / "drawn-mask.png"
        Image.new("L", (64, 64), 0).save(mask)
        Image.new("L", (32, 32), 255).save(tmp_path / "quarter.png")
        square = Image.open(mask)
        square.paste(255, (0, 0, 32, 32))
        square.save(mask)
        app.query_one("#mask", Input).value = str(mask)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(done(app)) == 4, timeout=120)
        inpainted = done(app)[3]
        assert inpainted.recipe.mask == str(mask) and inpainted.recipe.mask_hash
        before = np.asarray(Image.open(image).convert("RGB"))
        after = np.asarray(Image.open(app.session.image_path(inpainted.images[0])).convert("RGB"))
        assert (after[48:, 48:] == before[48:, 48:]).all()  # far outside the blurred square

        # a mask of another size is one line, and nothing is queued
        app.query_one("#mask", Input).value = str(tmp_path / "quarter.png")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert len(app.session.entries()) == 4
        assert any("is 32x32 but the init image is 64x64" in n.message for n in app._notifications)

        await pilot.press("f12")
        assert app.query_one("#init", Input).value == app.query_one("#mask", Input).value == ""
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(done(app)) == 5, timeout=120)
        assert not done(app)[4].recipe.init_image and not done(app)[4].recipe.mask


async def test_a_mask_without_an_init_image_in_the_form_is_one_line(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.query_one("#mask", Input).value = str(tmp_path / "m.png")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not app.session.entries()
        assert any("a mask needs an init image" in n.message for n in app._notifications)

"""The history's U key: the highlighted entry upscaled 2x by the built-in upscaler, as a new entry."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.test_tui_mask import SIZE, anyio_backend, app, done, make_first_image  # noqa: F401
from tests.test_tui_support import wait_until

pytestmark = pytest.mark.anyio


@pytest.mark.slow
async def test_u_upscales_the_highlighted_entry(app):  # noqa: F811
    async with app.run_test(size=SIZE) as pilot:
        await make_first_image(app, pilot)
        await pilot.press("alt+5", "U")
        await wait_until(pilot, lambda: len(done(app)) == 2, timeout=120)
        first, upscaled = done(app)
        assert upscaled.recipe.init_image.endswith(first.images[0])
        assert (upscaled.recipe.upscaler, upscaled.recipe.upscale_scale) == ("studio-2x", 2)
        assert len(upscaled.recipe.upscaler_hash) == 10
        assert Image.open(app.session.image_path(upscaled.images[0])).size == (128, 128)

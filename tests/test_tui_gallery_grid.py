"""The gallery's grid on its own: one widget drawing every cell, repainting only the cells that change,
and thumbnails through each renderer (half-cells drawn in its rows, Sixel as a widget over the cell)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from studio.review.index import Hit
from studio.tui.widgets.gallery_grid import CELL_HEIGHT, CELL_WIDTH, Cell, GalleryGrid
from tests.test_tui_support import gradient_png, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def hit(number: int, image=None) -> Hit:
    return Hit(session="s", id=number, time="2026-11-01T10:00:00Z", status="done", model="m", model_hash="",
               sampler="euler", seed=number, width=64, height=64, rating=0, favourite=False,
               prompt=f"prompt {number}", negative="", note="", images=(image,) if image else ())


class GridApp(App):
    def __init__(self, image_class) -> None:
        super().__init__()
        self.image_class = image_class

    def compose(self) -> ComposeResult:
        yield GalleryGrid(self.image_class)


def text(grid: GalleryGrid) -> list[str]:
    return [grid.render_line(y).text for y in range(grid.size.height)]


def halfcells():
    from studio.tui.graphics import image_widget_class, load

    load("halfcell")
    return image_widget_class("halfcell")


async def test_the_grid_fits_cells_and_draws_captions_and_borders_itself():
    app = GridApp(None)
    async with app.run_test(size=(3 * CELL_WIDTH + 5, 2 * CELL_HEIGHT + 1)) as pilot:
        grid = app.query_one(GalleryGrid)
        await pilot.pause()
        assert (grid.cols, grid.rows, grid.page_size) == (3, 2, 6)
        grid.show([Cell(hit(1)), Cell(hit(2), selected=True)])  # a short page: the rest are empty places
        await pilot.pause()
        lines = text(grid)
        assert lines[0].startswith("╭" + "─" * (grid.box(0).width - 2) + "╮┏━")
        assert "s:1" in lines[grid.box(0).height - 3] and "prompt 2" in lines[grid.box(0).height - 2]
        assert lines[grid.box(3).y].strip() == ""  # no border round an empty place
        assert sum(grid.box(i).width for i in range(3)) == grid.size.width  # the width shared out, none lost
        assert not grid.children


async def test_a_page_turn_repaints_only_the_cells_that_change(tmp_path):
    app = GridApp(halfcells())
    async with app.run_test(size=(2 * CELL_WIDTH, 2 * CELL_HEIGHT)) as pilot:
        grid = app.query_one(GalleryGrid)
        await pilot.pause()
        thumb = gradient_png(tmp_path / "a.png", hue=40)
        page = [Cell(hit(i)) for i in range(4)]
        grid.show(page)
        await pilot.pause()
        drawn = dict(grid._rows)
        assert len(drawn) == 4
        grid.show([page[0], Cell(hit(1), thumb), page[2], page[3]])  # a thumbnail arrives for one cell
        assert set(grid._rows) == {0, 2, 3} and all(grid._rows[i] is drawn[i] for i in (0, 2, 3))
        await wait_until(pilot, grid.pictures_ready)  # rendered on a thread worker: one pause may not be enough
        await pilot.pause()
        picture = grid.render_line(grid.box(1).y + 1)
        assert "▀" in picture.text  # half-cells, as the preview draws them
        assert any(seg.style and seg.style.bgcolor for seg in picture)
        assert not grid.children  # drawn in the grid's own rows, no widget
        assert grid._pictures  # and kept: the next repaint of that cell does not decode it again


async def test_sixel_thumbnails_are_image_widgets_over_their_cells(tmp_path):
    from textual_image.widget import SixelImage

    app = GridApp(SixelImage)
    async with app.run_test(size=(2 * CELL_WIDTH, CELL_HEIGHT)) as pilot:
        grid = app.query_one(GalleryGrid)
        await pilot.pause()
        thumb = gradient_png(tmp_path / "a.png", hue=40)
        grid.show([Cell(hit(1)), Cell(hit(2), thumb)])
        await pilot.pause()
        images = list(grid.query(SixelImage))
        assert len(images) == 1 and images[0].image == thumb  # only the cell with a thumbnail
        box = grid.box(1)
        assert images[0].region.offset == (grid.region.x + box.x + 1, grid.region.y + box.y + 1)
        assert images[0].region.size == (box.width - 2, box.height - 4)
        grid.show([Cell(hit(1)), Cell(hit(3))])  # the next page has no thumbnail there yet
        await pilot.pause()
        assert not images[0].display

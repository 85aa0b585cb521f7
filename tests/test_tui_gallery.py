"""Pilot tests of the gallery and the session browser (issue 16): queries, moving, Enter,
marks landing in the entry's own session file, rename and archive."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList

from studio.store.session import SessionStore
from studio.tui.app import make_app
from studio.tui.widgets.entry_detail import EntryDetail
from studio.tui.widgets.gallery import GalleryScreen
from studio.tui.widgets.sessions_browser import NameDialog
from tests.test_tui_support import IdleEngine, open_browser, seeded_session, started, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def two_sessions(tmp_path):
    root = tmp_path / "sessions"
    seeded_session(root, "here", count=3)
    seeded_session(root, "there", count=3)
    return root


def make(root, name="here"):
    return make_app(root, name, engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")


async def open_gallery(pilot):
    await started(pilot)
    await pilot.press("ctrl+l")
    gallery = await wait_until(pilot, lambda: isinstance(pilot.app.screen, GalleryScreen) and pilot.app.screen)
    await wait_until(pilot, lambda: gallery.total and gallery.first_page_at is not None and not gallery.counting)
    return gallery


def entries(root, name):
    return {e.id: e for e in SessionStore(root).open(name, read_only=True).entries()}


async def test_gallery_query_move_and_enter(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = await open_gallery(pilot)
        assert gallery.total == 6  # both sessions, not only the open one
        assert gallery.page_size > 1
        first = gallery.selected()
        assert first.session == "there"  # newest first

        await pilot.press("right")
        assert gallery.cursor == 1
        await pilot.press("left", "left")
        assert gallery.cursor == 0  # stops at the first

        gallery.query_one("#gallery-query", Input).value = "lighthouse dawn"
        gallery.query_one("#gallery-query", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: gallery.total == 2 and gallery.hits)
        assert {h.session for h in gallery.hits.values()} == {"here", "there"}
        assert all("dawn" in h.prompt for h in gallery.hits.values())

        await pilot.press("enter")
        detail = await wait_until(pilot, lambda: isinstance(app.screen, EntryDetail) and app.screen)
        assert detail.entry.recipe.prompt == "a lighthouse at dawn, watercolour"
        await pilot.press("escape")
        assert app.screen is gallery

        gallery.query_one("#gallery-query", Input).value = "lora:"
        gallery.query_one("#gallery-query", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "lora" in str(gallery.query_one("#gallery-status").render()))
        assert gallery.total == 0


async def test_gallery_marks_land_in_the_entrys_own_session(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = await open_gallery(pilot)
        hit = gallery.selected()
        assert hit.session == "there"
        await pilot.press("plus", "plus", "f")
        await wait_until(pilot, lambda: entries(two_sessions, "there")[hit.id].favourite
                         and entries(two_sessions, "there")[hit.id].rating == 2)
        assert not any(e.rating or e.favourite for e in entries(two_sessions, "here").values())
        # the index has it too: a query for favourites finds exactly that entry
        await wait_until(pilot, lambda: not gallery._overrides)
        assert app.studio.index.count("fav:yes") == 1

        # an entry of the open session goes through the app's own session object
        await pilot.press("pagedown")  # past the end: the last (oldest) entry, which is this session's
        await wait_until(pilot, lambda: gallery.selected() is not None)
        assert gallery.cursor == gallery.total - 1
        mine = gallery.selected()
        await pilot.press("minus", "plus")
        await wait_until(pilot, lambda: entries(two_sessions, "here")[mine.id].rating == 1)
        assert app.session.get(mine.id).rating == 1


async def test_gallery_branch_loads_the_recipe(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = await open_gallery(pilot)
        hit = gallery.selected()
        await pilot.press("b")
        await wait_until(pilot, lambda: not isinstance(app.screen, GalleryScreen))
        assert app.prompt_pane.prompt == hit.prompt
        assert app.read_form().seed == hit.seed

        await pilot.press("ctrl+l")
        gallery = await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen) and app.screen)
        await wait_until(pilot, lambda: gallery.total)
        hit = gallery.selected()
        assert hit.session == "there"
        await pilot.press("o")  # another session: the window switches to it (tests/test_tui_session_switch.py)
        await wait_until(pilot, lambda: app.session.name == "there" and not app.loading)
        assert not isinstance(app.screen, GalleryScreen) and app.history.highlighted_id == hit.id


async def test_gallery_pages_through_many_entries(tmp_path):
    root = tmp_path / "sessions"
    seeded_session(root, "here", count=1)
    big = SessionStore(root).create("big")
    from studio.recipe import Recipe

    for i in range(120):
        big.queue(Recipe(prompt=f"entry {i}", seed=i))
    app = make(root)
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = await open_gallery(pilot)
        size = gallery.page_size
        assert gallery.total == 121
        assert len(gallery.grid.cells) == size < 121  # a page of cells, not a widget per entry
        assert not gallery.grid.children  # nor a widget per cell: the grid draws them all
        await pilot.press("pagedown", "pagedown")
        await wait_until(pilot, lambda: gallery.selected() is not None)
        assert gallery.cursor == 2 * size
        await pilot.press("down")
        assert gallery.cursor == 2 * size + gallery.columns
        await pilot.press("pageup")
        await wait_until(pilot, lambda: gallery.selected() is not None)
        assert gallery.cursor == size + gallery.columns
        assert gallery.selected().prompt == f"entry {119 - gallery.cursor}"


async def test_the_first_page_is_drawn_before_the_count_and_the_footer(tmp_path, monkeypatch):
    """A big query's first page waits neither for counting every match nor for the footer's keys."""
    import threading

    from textual.widgets import Footer

    from studio.recipe import Recipe
    from studio.review.index import ReviewIndex

    root = tmp_path / "sessions"
    seeded_session(root, "here", count=1)
    big = SessionStore(root).create("big")
    for i in range(80):
        big.queue(Recipe(prompt=f"entry {i}", seed=i))
    release, counted = threading.Event(), []
    real = ReviewIndex.count

    def slow_count(self, query):
        release.wait(30)
        counted.append(1)
        return real(self, query)

    monkeypatch.setattr(ReviewIndex, "count", slow_count)
    footer_at_first_page = []
    painted = GalleryScreen._painted
    monkeypatch.setattr(GalleryScreen, "_painted",
                        lambda self: (footer_at_first_page.append(bool(self.query(Footer))), painted(self)))
    app = make(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("ctrl+l")
        gallery = await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen) and app.screen)
        await wait_until(pilot, lambda: gallery.first_page_at is not None)
        assert not counted and gallery.counting and gallery.total == 64  # a full first page: at least that many
        assert footer_at_first_page == [False]
        assert "1/64+" in str(gallery.query_one("#gallery-status").render())
        release.set()
        await wait_until(pilot, lambda: not gallery.counting)
        assert gallery.total == 81 and counted
        assert "1/81 " in str(gallery.query_one("#gallery-status").render())
        await wait_until(pilot, lambda: gallery.query(Footer))


async def test_a_gallery_on_an_index_never_built_catches_up_before_saying_no_matches(tmp_path, monkeypatch):
    root = tmp_path / "sessions"
    seeded_session(root, "here", count=2)
    seeded_session(root, "other", count=2)  # written by "another process": not in this app's index yet
    statuses = []
    status = GalleryScreen._status
    monkeypatch.setattr(GalleryScreen, "_status", lambda self, error="": (
        status(self, error), statuses.append(str(self.query_one("#gallery-status").render())))[0])
    app = make(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("ctrl+l")
        gallery = await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen) and app.screen)
        await wait_until(pilot, lambda: gallery.total == 4 and gallery.first_page_at is not None)
        assert not any("no matches" in line for line in statuses)


async def test_session_browser_rename_and_archive(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        browser = await open_browser(pilot)
        assert [(r.name, r.entries) for r in browser.rows] == [("here", 3), ("there", 3)]
        ol = browser.query_one(OptionList)
        await wait_until(pilot, lambda: browser.strips.get("there"))
        assert len(browser.strips["there"]) == 3

        ol.highlighted = 0  # the open session: refused, one line
        await pilot.press("a")
        assert (two_sessions / "here").is_dir()

        ol.highlighted = 1
        await pilot.press("r")
        dialog = await wait_until(pilot, lambda: isinstance(app.screen, NameDialog) and app.screen)
        dialog.query_one(Input).value = "elsewhere"
        await pilot.press("enter")
        await wait_until(pilot, lambda: [r.name for r in browser.rows] == ["elsewhere", "here"])
        assert (two_sessions / "elsewhere" / "session.toml").is_file()
        assert not (two_sessions / "there").exists()
        assert len(entries(two_sessions, "elsewhere")) == 3

        ol.highlighted = 0
        await pilot.press("a")
        await wait_until(pilot, lambda: [r.name for r in browser.rows] == ["here"])
        assert (two_sessions / "archive" / "elsewhere" / "session.toml").is_file()
        assert app.studio.index.count("session:elsewhere") == 0


async def test_gallery_entry_becomes_the_forms_init_image(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = await open_gallery(pilot)
        hit = gallery.selected()
        assert hit.images and hit.images[0].is_file()
        await pilot.press("I")
        await wait_until(pilot, lambda: not isinstance(app.screen, GalleryScreen))
        assert app.params.init_image == str(hit.images[0].resolve())
        recipe = app.read_form()
        assert recipe is not None and recipe.init_image == str(hit.images[0].resolve())


async def test_the_contact_sheet_key_records_a_sheet_in_the_open_session(two_sessions):
    from PIL import Image

    from studio.formats.png import save_png

    for name in ("here", "there"):  # real pictures, so the sheet has images to draw
        session = SessionStore(two_sessions).open(name)
        for entry in session.entries():
            save_png(Image.new("RGB", (16, 16), "red"), session.image_path(entry.images[0]), entry.recipe)
    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = await open_gallery(pilot)
        gallery.query_one("#gallery-query", Input).value = "lighthouse"
        gallery.query_one("#gallery-query", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: gallery.total and gallery.query_text == "lighthouse" and not gallery.counting)
        expected = [hit.key for hit in app.studio.index.search("lighthouse")]
        before = len(app.session.entries())
        await pilot.press("c")
        await wait_until(pilot, lambda: len(app.session.entries()) == before + 1)
        sheet = app.session.entries()[-1]
        assert sheet.sheet == {"query": "lighthouse", "entries": expected} and sheet.status == "done"
        assert (app.session.path / sheet.images[0]).is_file()
        assert f"here:{sheet.id}" in [h.key for h in app.studio.index.search("contact sheet")]  # indexed at once
        await wait_until(pilot, lambda: any(str(sheet.id) == str(o.id) for o in
                                            [app.history.option_list.get_option_at_index(i)
                                             for i in range(app.history.option_list.option_count)]))


async def test_thumbnails_are_rendered_into_cells_off_the_event_loop(two_sessions, monkeypatch):
    """Reading and scaling a thumbnail into half-cells (PIL) happens on a worker thread; the cells
    then show the pictures."""
    import threading

    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        image_class = app.image_class
        real = image_class._Renderable
        threads = []

        def recording(*args):
            threads.append(threading.current_thread())
            return real(*args)

        monkeypatch.setattr(image_class, "_Renderable", recording)
        gallery = await open_gallery(pilot)
        grid = gallery.grid
        await wait_until(pilot, lambda: len(gallery.thumbs) == gallery.total and grid.pictures_ready())
        await pilot.pause()
        assert threads and threading.main_thread() not in threads
        shown = [c for c in grid.cells if c.hit is not None]
        assert shown and all(c.thumb is not None for c in shown)
        picture_row = grid.render_line(2)  # a row inside the first row of cells, below the border
        assert "▀" in picture_row.text


async def test_the_window_footer_is_not_rebuilt_under_the_gallery(two_sessions, monkeypatch):
    from studio.tui.widgets.footer import StudioFooter

    app = make(two_sessions)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        footer = await wait_until(pilot, lambda: app.screen_stack[0].query(StudioFooter) and
                                  app.screen_stack[0].query_one(StudioFooter))
        await wait_until(pilot, lambda: len(footer.children) > 0)
        rebuilt = []
        real = StudioFooter.recompose

        async def recompose(self):
            rebuilt.append(app.screen is self.screen)
            await real(self)

        monkeypatch.setattr(StudioFooter, "recompose", recompose)
        gallery = await open_gallery(pilot)
        await pilot.pause()
        assert footer.stale  # the window's bindings changed under the gallery
        assert rebuilt.count(True) == 0  # not rebuilt while covered
        assert app.screen is gallery
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.screen_stack[0] and not footer.stale)
        await wait_until(pilot, lambda: len(footer.children) > 0)
        assert True in rebuilt  # rebuilt once shown again

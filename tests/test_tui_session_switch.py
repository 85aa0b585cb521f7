"""Opening another session in the running window (issue 16's browser Open; studio/tui/session_switch.py):
the history follows, a generate lands in the new session's file and never the old one's, the engine stays,
a switch is refused while a job runs, the gallery's "open its session" highlights the entry, and
renaming the open session keeps the window writing into the renamed folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from studio.engine import events as ev
from studio.recipe import Recipe
from studio.store.session import SessionStore
from studio.tui.app import make_app
from studio.tui.widgets.gallery import GalleryScreen
from studio.tui.widgets.sessions_browser import NameDialog, SessionsScreen
from tests.test_tui_support import IdleEngine, gradient_png, open_browser, seeded_session, started, wait_until

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


@pytest.fixture
def anyio_backend():
    return "asyncio"


class FinishingEngine(IdleEngine):
    """Runs each job at once: a small image in `out_dir`, then Started and Finished."""

    built = 0

    def __init__(self, on_event):
        FinishingEngine.built += 1
        super().__init__(on_event)

    def submit(self, recipe: Recipe, out_dir: Path, stem: str | None = None, job_id: str | None = None) -> str:
        job_id = super().submit(recipe, out_dir, stem, job_id)
        self.on_event(ev.Started(job_id, recipe))
        path = gradient_png(Path(out_dir) / f"{stem or job_id}.png", hue=10)
        self.on_event(ev.Finished(job_id, recipe.replace(device="cpu", dtype="float32"), (path,), 0.1))
        return job_id


@pytest.fixture
def two_sessions(tmp_path):
    root = tmp_path / "sessions"
    seeded_session(root, "here", count=2)
    there = seeded_session(root, "there", count=3)
    there.queue(Recipe(prompt="only in there, a blue square", model="studio-tiny", seed=7, width=64, height=64))
    there.cancel(4, "test")
    return root


def make(root, name="here", engine=FinishingEngine):
    return make_app(root, name, engine_factory=engine, graphics="halfcell", model="studio-tiny")


def on_disk(root, name):
    return SessionStore(root).open(name, read_only=True).entries()


def choose(browser, name):
    browser.query_one(OptionList).highlighted = [r.name for r in browser.rows].index(name)


def history_prompts(app):
    return [e.recipe.prompt for e in app.history._entries]


async def generate(pilot, prompt):
    app = pilot.app
    app.prompt_pane.set_texts(prompt, "")
    app.action_generate()
    await wait_until(pilot, lambda: not app.studio._entries and not app.jobs)


async def test_open_another_session_from_the_browser_and_generate_into_it(two_sessions):
    here_file = two_sessions / "here" / "session.toml"
    app = make(two_sessions)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        engine = app.engine
        before = here_file.read_bytes()
        choose(browser, "there")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SessionsScreen) and not app.loading)
        assert app.session.name == "there" and app.studio.session is app.session
        assert app.sub_title == "session there"
        await wait_until(pilot, lambda: "only in there, a blue square" in history_prompts(app))
        assert len(app.history._entries) == 4
        assert app.engine is engine  # the engine (and the model it has loaded) stayed
        assert here_file.read_bytes() == before  # switching writes nothing into the session it left

        await generate(pilot, "a green triangle after the switch")
        there = on_disk(two_sessions, "there")
        assert there[-1].recipe.prompt == "a green triangle after the switch" and there[-1].status == "done"
        assert (two_sessions / "there" / there[-1].images[0]).is_file()  # the image in the new session's folder
        assert here_file.read_bytes() == before
        assert all("green triangle" not in e.recipe.prompt for e in on_disk(two_sessions, "here"))
        await wait_until(pilot, lambda: "a green triangle after the switch" in history_prompts(app))
        assert app.studio.index.count('session:there "green triangle"') == 1  # the review hooks follow
        assert FinishingEngine.built >= 1 and app.engine is engine


async def test_a_switch_is_refused_while_a_job_of_the_open_session_runs(two_sessions):
    app = make(two_sessions, engine=IdleEngine)  # its jobs never end
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.prompt_pane.set_texts("still running", "")
        app.action_generate()
        await wait_until(pilot, lambda: app.studio._entries)
        browser = await open_browser(pilot)
        choose(browser, "there")
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.name == "here" and app.studio.session.name == "here"
        assert isinstance(app.screen, SessionsScreen)  # the browser stays, with the one line
        said = [n.message for n in app._notifications]
        assert any("queued or running" in m and "cancel" in m for m in said), said
        assert on_disk(two_sessions, "here")[-1].recipe.prompt == "still running"


async def test_the_gallerys_open_its_session_switches_and_highlights_the_entry(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+l")
        gallery = await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen) and app.screen)
        await wait_until(pilot, lambda: gallery.total and gallery.first_page_at is not None and not gallery.counting)
        gallery.query_one("#gallery-query", Input).value = "session:there lighthouse dusk"
        gallery.query_one("#gallery-query", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: gallery.total == 1 and gallery.hits and gallery.query_text.endswith("dusk"))
        hit = gallery.selected()
        assert hit.session == "there" and hit.id == 1  # the oldest: not the row the history starts on
        gallery.query_one("#gallery-grid").focus()
        await pilot.press("o")
        await wait_until(pilot, lambda: app.session.name == "there" and not app.loading
                         and app.history.highlighted_id == hit.id)
        assert not isinstance(app.screen, GalleryScreen)


async def test_renaming_the_open_session_keeps_the_window_on_the_renamed_folder(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        choose(browser, "here")
        await pilot.press("r")
        dialog = await wait_until(pilot, lambda: isinstance(app.screen, NameDialog) and app.screen)
        dialog.query_one(Input).value = "renamed"
        await pilot.press("enter")
        await wait_until(pilot, lambda: sorted(r.name for r in browser.rows) == ["renamed", "there"])
        assert not (two_sessions / "here").exists()
        assert app.session.path == two_sessions / "renamed" and app.sub_title == "session renamed"
        assert "(open here)" in str(browser._row(next(r for r in browser.rows if r.name == "renamed")))
        await pilot.press("escape")

        await generate(pilot, "made after the rename")
        renamed = on_disk(two_sessions, "renamed")
        assert len(renamed) == 3 and renamed[-1].recipe.prompt == "made after the rename"
        assert (two_sessions / "renamed" / renamed[-1].images[0]).is_file()
        assert not (two_sessions / "here").exists()  # nothing recreated the old folder


async def test_a_session_that_cannot_be_read_sends_the_window_back(two_sessions):
    app = make(two_sessions)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        (two_sessions / "there" / "session.toml").write_text("this is not a session\n")
        choose(browser, "there")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.name == "here" and not app.loading and app.history._entries)
        assert app.is_running and app.studio.session is app.session
        assert any("cannot open that session" in n.message for n in app._notifications)
        await generate(pilot, "still here")
        assert on_disk(two_sessions, "here")[-1].recipe.prompt == "still here"

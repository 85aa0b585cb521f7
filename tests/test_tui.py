"""Pilot tests of the studio TUI against the tiny model: one test per action."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, TextArea

from studio.engine import LocalEngine
from studio.store.session import FILE_NAME, SessionStore
from studio.tui.app import make_app
from studio.recipe import Recipe
from tests.test_tui_support import IdleEngine, gradient_png, seeded_session, started, wait_until, written

SIZE = (120, 40)
pytestmark = pytest.mark.anyio  # pilot tests are coroutines; anyio's plugin runs them


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def engines():
    made: list[LocalEngine] = []

    def factory(on_event):
        engine = LocalEngine(on_event, previews=True, preview_interval=0.0, preview_budget=None, reserve_core=False)
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        engine.shutdown(wait=True)


@pytest.fixture
def studio(tmp_path, tiny_model_dir, engines):
    """make(session_name=None) -> an app on the tiny model in a temporary sessions folder."""

    def make(session_name=None, engine_factory=None):
        return make_app(
            tmp_path / "sessions",
            session_name,
            engine_factory=engine_factory or engines,
            graphics="halfcell",
            model=str(tiny_model_dir),
        )

    return make


def fill_form(app, prompt="a red circle", steps=2, seed=None):
    app.query_one("#prompt", TextArea).text = prompt
    app.query_one("#steps", Input).value = str(steps)
    app.query_one("#size", Input).value = "64x64"
    if seed is not None:
        app.query_one("#seed", Input).value = str(seed)
        app.query_one("#seed-lock").value = True


def final_entries(app):
    return [e for e in app.session.entries() if e.final]


# -- imports -----------------------------------------------------------------


def test_importing_the_app_pulls_in_neither_torch_nor_diffusers():
    code = (
        "import sys, studio.tui.app, studio.cli.tui;"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'textual_image') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- launch --------------------------------------------------------------------


async def test_launch_focuses_the_prompt_and_the_engine_becomes_ready(studio, tmp_path):
    app = studio()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert isinstance(app.focused, TextArea) and app.focused.id == "prompt"
        assert (app.session.path / FILE_NAME).is_file()
        assert app.session.path.parent == tmp_path / "sessions"
        await wait_until(pilot, lambda: app.query_one("#state").content == "ready")


# -- generate ------------------------------------------------------------------


async def test_generate_puts_the_image_in_history_and_records_it(studio):
    app = studio()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press(*"a red circle")
        fill_form(app, prompt=app.query_one("#prompt", TextArea).text, seed=42)
        await pilot.press("ctrl+g")
        entries = await wait_until(pilot, lambda: final_entries(app))
        entry = entries[0]
        assert entry.status == "done", entry.reason
        assert entry.recipe.prompt == "a red circle" and entry.recipe.seed == 42
        image = app.session.image_path(entry.images[0])
        assert image.is_file() and image.name == "0001.png"
        history = app.query_one("#history-list", OptionList)
        await wait_until(pilot, lambda: history.option_count == 1)
        assert history.get_option_at_index(0).id == "1"
        # the preview takes the finished image from a later message than the one that records it
        await wait_until(pilot, lambda: "0001.png" in str(app.query_one("#caption").render()))
    record = tomllib.loads((app.session.path / FILE_NAME).read_text())
    kinds = [event["kind"] for event in record["event"]]
    assert kinds == ["queued", "started", "done"]
    assert record["event"][0]["recipe"]["prompt"] == "a red circle"


async def test_unlocked_seed_rerolls_and_queue_more_uses_new_seeds(studio):
    app = studio()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        fill_form(app)
        app.query_one("#seed-lock").value = False
        app.query_one("#count", Input).value = "2"
        await pilot.press("ctrl+g")
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: len(final_entries(app)) == 4, timeout=120)
        entries = app.session.entries()
        assert all(e.status == "done" for e in entries)
        first, second = entries[0].recipe.seed, entries[1].recipe.seed
        assert second == first + 1  # one generate: seeds count up
        assert len({e.recipe.seed for e in entries}) == 4
        assert str(first) == app.query_one("#seed", Input).value


async def test_reroll_sets_a_new_locked_seed_and_generates(studio):
    app = studio()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        fill_form(app, seed=5)
        await pilot.press("ctrl+r")
        entries = await wait_until(pilot, lambda: final_entries(app))
        assert entries[0].recipe.seed != 5
        assert str(entries[0].recipe.seed) == app.query_one("#seed", Input).value
        assert app.query_one("#seed-lock").value is True


# -- cancel ---------------------------------------------------------------------


@pytest.mark.slow
async def test_cancel_stops_the_running_job_and_empties_the_queue(studio):
    app = studio()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        fill_form(app, steps=1000, seed=1)
        app.query_one("#count", Input).value = "2"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.running is not None and app.jobs[app.running].step >= 1)
        await pilot.press("ctrl+t")  # the running one
        await wait_until(pilot, lambda: app.running is not None and app.running != "1")
        app.query_one("#queue-list", OptionList).focus()
        await pilot.press("x")  # the second, from the queue pane
        await wait_until(pilot, lambda: len(final_entries(app)) == 2)
        assert [e.status for e in app.session.entries()] == ["cancelled", "cancelled"]
        assert app.query_one("#queue-list", OptionList).option_count == 0
        assert not list(app.session.path.glob("*.png"))


# -- history actions --------------------------------------------------------------


async def test_enter_on_history_branches_the_recipe_into_the_form(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old")
    app = studio("old")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("alt+5")
        assert app.focused.id == "history-list"
        await pilot.press("down", "enter")  # newest first: down is entry #1
        assert app.query_one("#prompt", TextArea).text == "a lighthouse at dusk, oil painting"
        assert app.query_one("#seed", Input).value == "100"
        assert app.query_one("#steps", Input).value == "20"
        assert app.query_one("#sampler").value == "DDIM"
        assert app.query_one("#seed-lock").value is True
        assert app.focused.id == "prompt"


async def test_rerun_makes_the_entry_again(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old", count=1)
    app = studio("old")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        # the seeded entry names the built-in model; point it at the tiny one
        fill_form(app, seed=100)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(final_entries(app)) == 2)
        await pilot.press("alt+5", "r")
        await wait_until(pilot, lambda: len(final_entries(app)) == 3)
        entries = app.session.entries()
        assert entries[2].recipe.seed == entries[1].recipe.seed == 100
        assert entries[2].status == "done"


async def test_favourite_delete_and_undo(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("alt+5", "f")
        await written(pilot)
        assert app.session.get(2).favourite
        await pilot.press("asterisk")
        assert app.query_one("#history-list", OptionList).option_count == 1
        await pilot.press("asterisk", "d")
        await written(pilot)
        assert app.session.get(2).deleted
        assert app.query_one("#history-list", OptionList).option_count == 1
        await pilot.press("u")
        await written(pilot)
        assert not app.session.get(2).deleted
        assert app.query_one("#history-list", OptionList).option_count == 2


@pytest.mark.slow
async def test_rating_and_note_are_recorded_and_shown(studio, tmp_path):
    from studio.tui.widgets.note import NoteDialog

    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("alt+5", *["plus"] * 7, "minus")
        await written(pilot)
        assert app.session.get(2).rating == 4  # clamped at 5, then one down
        await pilot.press("n")
        assert isinstance(app.screen, NoteDialog)
        await pilot.press(*"keep  this one", "enter")
        await written(pilot)
        assert app.session.get(2).note == "keep this one"
        await pilot.press("n", "x", "escape")  # escape leaves the note as it was
        await written(pilot)
        assert app.session.get(2).note == "keep this one"
        row = str(app.query_one("#history-list", OptionList).get_option_at_index(0).prompt)
        assert "●●●●○" in row and "keep this one" in row
        await pilot.press("slash", *"keep", "enter")  # the filter searches notes
        assert app.query_one("#history-list", OptionList).option_count == 1
    reopened = SessionStore(tmp_path / "sessions").open("old").get(2)
    assert (reopened.rating, reopened.note) == (4, "keep this one")


async def test_a_failed_mark_is_one_line_and_the_app_goes_on(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)

        def full_disk(*args, **kwargs):
            raise OSError(28, "No space left on device")

        app.session.mark = full_disk
        await pilot.press("alt+5", "f")
        await written(pilot)
        messages = [n.message for n in app._notifications]
        assert any("not marked" in m and "No space left" in m for m in messages), messages
        assert not app.session.get(2).favourite


async def test_history_filter(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old", count=3)
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("alt+5", "slash", *"dawn", "enter")
        history = app.query_one("#history-list", OptionList)
        assert history.option_count == 1 and history.get_option_at_index(0).id == "2"
        assert app.focused is history


async def test_compare_two_entries_shows_a_recipe_diff(studio, tmp_path):
    from studio.tui.widgets.compare import CompareScreen

    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("alt+5", "c", "down", "c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert (screen.left.id, screen.right.id) == (2, 1)
        assert [row[0] for row in screen.diff] == ["prompt", "sampler", "steps", "cfg_scale", "seed"]
        assert ("seed", "101", "100") in screen.diff
        assert "cfg_scale" in app.export_screenshot()
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)


def test_recipe_diff_lists_only_what_differs():
    from studio.recipe import Recipe
    from studio.tui.widgets.compare import recipe_diff

    a = Recipe(prompt="x", seed=1, steps=20)
    b = a.replace(seed=2, studio_version="9.9")
    assert recipe_diff(a, b) == [("seed", "1", "2")]


# -- resume after a crash ------------------------------------------------------------


def _crashed_session(root: Path, tiny_model_dir: Path, monkeypatch):
    import studio.store.session as store_module
    from studio.recipe import Recipe

    session = SessionStore(root).create("crashed")
    monkeypatch.setattr(store_module, "_OWNER", "another-host:1")  # a process that is gone
    recipe = Recipe(prompt="left behind", model=str(tiny_model_dir), steps=2, width=64, height=64, seed=3)
    session.queue(recipe)
    monkeypatch.undo()
    return session


async def test_resume_runs_unfinished_jobs_again(studio, tmp_path, tiny_model_dir, monkeypatch):
    from studio.tui.widgets.resume import ResumeDialog

    _crashed_session(tmp_path / "sessions", tiny_model_dir, monkeypatch)
    app = studio("crashed")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, ResumeDialog))
        await pilot.press("y")
        entries = await wait_until(pilot, lambda: final_entries(app))
        assert entries[0].id == 1 and entries[0].status == "done"
        assert (app.session.path / "0001.png").is_file()


async def test_declining_resume_marks_the_jobs_cancelled(studio, tmp_path, tiny_model_dir, monkeypatch):
    from studio.tui.widgets.resume import ResumeDialog

    _crashed_session(tmp_path / "sessions", tiny_model_dir, monkeypatch)
    app = studio("crashed", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, ResumeDialog))
        await pilot.press("n")
        await pilot.pause()
        assert app.session.get(1).status == "cancelled"
        assert not app.session.unfinished()


# -- model picker, themes, panes, palette -----------------------------------------


async def test_model_picker_filters_and_fills_the_form(studio, monkeypatch):
    from studio.tui.widgets import model_picker

    rows = [
        model_picker.ModelRow("/models/dreamy.safetensors", "SD 1.x", 2_000_000_000, "abcdef0123", "/models"),
        model_picker.ModelRow("/models/sharp-xl.safetensors", "SDXL", 6_900_000_000, "9876543210", "/models"),
    ]
    monkeypatch.setattr(model_picker, "list_models", lambda dirs=None: rows)
    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, model_picker.ModelPicker))
        await wait_until(pilot, lambda: app.screen.query_one("#model-list", OptionList).option_count == 2)
        await pilot.press(*"xl")
        assert app.screen.query_one("#model-list", OptionList).option_count == 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#model", Input).value == "/models/sharp-xl.safetensors"


def test_themes_come_from_the_wheel_install_when_the_project_folder_is_absent(tmp_path, monkeypatch):
    from studio.tui import themes

    shared = tmp_path / "share" / "studio" / "themes"
    shared.mkdir(parents=True)
    (shared / "slate.toml").write_text('primary = "#778899"\n')
    monkeypatch.setattr(themes, "PROJECT_THEMES", tmp_path / "no-checkout" / "themes")
    monkeypatch.setattr(themes, "INSTALLED_THEMES", shared)
    found, warnings = themes.load_themes()
    assert "slate" in [t.name for t in found] and not warnings
    # in a checkout the project folder wins, and it holds the themes the app defaults to
    monkeypatch.undo()
    assert {"darkroom", "paper"} <= {t.name for t in themes.load_themes([themes.PROJECT_THEMES])[0]}


async def test_theme_choice_is_kept_in_the_config(studio):
    from studio.config import load_config

    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert "paper" in app.available_themes and app.theme == "darkroom"
        app.theme = "paper"
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert load_config().theme == "paper"


async def test_panes_focus_by_number(studio):
    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        for key, widget_id in (("alt+2", "model"), ("alt+6", "queue-list"), ("alt+3", "preview"), ("alt+1", "prompt")):
            await pilot.press(key)
            assert app.focused.id == widget_id
        await pilot.press("alt+5", "2")  # plain digits work outside text fields
        assert app.focused.id == "model"


async def test_every_action_is_in_the_command_palette(studio):
    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
    for title in ("Generate", "Queue more", "Re-roll seed", "Cancel job", "Branch from entry", "Re-run entry",
                  "Favourite entry", "Rate entry higher", "Rate entry lower", "Edit note", "Delete entry", "Undo delete", "Compare entries", "Full-screen preview",
                  "Pick model", "Focus history", "Theme"):
        assert any(t.startswith(title) for t in titles), title


async def test_bad_form_values_are_reported_not_queued(studio):
    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.query_one("#size", Input).value = "huge"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.session.entries() == []
        assert any("size" in n.message for n in app._notifications)


# -- small pieces -------------------------------------------------------------------


def test_progress_and_preview_messages_merge_only_with_their_own_kind():
    from studio.engine import events as ev
    from studio.tui.messages import EngineEvent

    first = EngineEvent(ev.Progress("1", 1, 4, 2.0, 1.5))
    assert first.can_replace(EngineEvent(ev.Progress("1", 2, 4, 2.0, 1.0)))
    assert not first.can_replace(EngineEvent(ev.Progress("2", 1, 4, 2.0, 1.0)))
    assert not first.can_replace(EngineEvent(ev.Preview("1", 2, None)))
    finished = EngineEvent(ev.Cancelled("1", 2))
    assert not finished.can_replace(EngineEvent(ev.Cancelled("1", 2)))


def test_graphics_modes_accept_the_config_spelling():
    from studio.tui import graphics

    assert graphics.normalise("halfblock") == "halfcell"
    assert graphics.normalise(None) == "auto"
    with pytest.raises(ValueError):
        graphics.normalise("ascii-art")


def test_cli_has_the_tui_options():
    from studio.cli import build_parser

    args = build_parser().parse_args(["tui", "--session", "x", "--graphics", "sixel", "--model", "m", "--device", "cpu"])
    assert (args.session, args.graphics, args.model, args.device) == ("x", "sixel", "m", "cpu")
    run = getattr(args, "_run", None) or args.run
    assert args.command == "tui" and run.__module__ == "studio.cli.tui"


async def test_fullscreen_view_opens_and_closes(studio, tmp_path):
    from studio.tui.widgets.fullscreen import FullscreenPreview

    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await wait_until(pilot, lambda: app.preview.path is not None)
        assert app.preview.path.name == "0002.png"  # the newest entry is shown on launch
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, FullscreenPreview)
        await pilot.press("escape")
        assert not isinstance(app.screen, FullscreenPreview)


async def test_ctrl_up_and_down_move_through_history_and_the_preview_follows(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old", count=3)
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+down", "ctrl+down")
        assert app.history.highlighted_id == 1
        assert app.preview.path.name == "0001.png"
        assert app.focused.id == "prompt"  # moving through history keeps typing where it was
        await pilot.press("ctrl+up")
        assert app.history.highlighted_id == 2


async def test_a_long_history_shows_the_newest_rows_and_the_filter_searches_all(studio, tmp_path):
    from studio.recipe import Recipe
    from studio.store.session import now_iso, record_bytes
    from studio.tui.widgets.history import LIMIT

    session = SessionStore(tmp_path / "sessions").create("long")
    records = []
    for entry_id in range(1, LIMIT + 101):
        prompt = "the very first one" if entry_id == 1 else f"picture {entry_id}"
        recipe = Recipe(prompt=prompt, seed=entry_id).to_dict()
        records.append(record_bytes({"id": entry_id, "kind": "queued", "time": now_iso(), "recipe": recipe}))
        records.append(record_bytes({"id": entry_id, "kind": "cancelled", "time": now_iso(), "reason": "x"}))
    with open(session.file, "ab") as handle:
        handle.write(b"".join(records))
    app = studio("long", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        history = app.query_one("#history-list", OptionList)
        assert history.option_count == LIMIT
        assert app.history.border_subtitle == f"{LIMIT}+/{LIMIT + 100}"
        await pilot.press("alt+5", "slash", *"very first", "enter")
        assert history.option_count == 1 and history.get_option_at_index(0).id == "1"


def test_live_preview_draws_the_image_centred_in_half_cells():
    from PIL import Image

    from studio.tui.widgets.live_preview import LivePreview

    widget = LivePreview()
    widget._image = Image.new("RGB", (8, 8), (200, 10, 10))
    lines = widget._draw(20, 6)  # a square picture in a wide box: 12x12 half-cells, centred
    drawn = [line for line in lines if line.text.strip("▀ ") == "" and "▀" in line.text]
    assert len(drawn) == 6
    assert all(line.cell_length == 20 and line.text.count("▀") == 12 for line in drawn)
    assert drawn[0].text.startswith(" " * 4)


@pytest.mark.slow
async def test_step_previews_show_while_the_job_runs(studio):
    from studio.tui.widgets.live_preview import LivePreview

    app = studio()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await wait_until(pilot, lambda: app.image_class is not None)
        fill_form(app, steps=40, seed=1)
        live = app.preview.query_one(LivePreview)
        shown, show_live = [], app.preview.show_live

        def recorded(image):  # what each step preview put on screen (a loaded machine may run the job
            show_live(image)  # past any one moment a test polls at)
            shown.append((live.display, live._image is image, str(app.query_one("#caption").render())))

        app.preview.show_live = recorded
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: final_entries(app))
        await pilot.pause()
        assert shown and all(displayed and drawn for displayed, drawn, _ in shown), shown
        assert all("live preview" in caption for _, _, caption in shown)
        assert not live.display and app.preview.path.name == "0001.png"


# -- the action table, writes off the loop, thread-safe results ------------------------------


def test_readme_key_table_is_the_action_table():
    from studio.tui.actions import readme_with_table

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert readme_with_table(readme) == readme, (
        "README's key table is stale: rewrite it with studio.tui.actions.readme_with_table"
    )


def test_every_binding_and_palette_entry_comes_from_the_action_table():
    from studio.tui import actions
    from studio.tui.app import StudioApp
    from studio.tui.widgets.history import HistoryPane
    from studio.tui.widgets.queue import QueuePane

    table = {(a.where, a.target) for a in actions.ACTIONS}
    for where, cls in (("anywhere", StudioApp), ("history", HistoryPane), ("queue", QueuePane)):
        assert cls.BINDINGS and all((where, b.action) in table for b in cls.BINDINGS), cls
    keys = [k for a in actions.ACTIONS for k in (*a.keys, *a.plain_keys) if a.where == "history"]
    assert len(keys) == len(set(keys)), "a key bound twice in the history pane"


async def test_palette_entries_run_the_same_actions_with_their_arguments(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        await commands["Focus history"]()
        await pilot.pause()
        assert app.focused.id == "history-list"
        await commands["Rate entry higher"]()
        await commands["Rate entry higher"]()
        await commands["Rate entry lower"]()
        await commands["Favourites only"]()
        await written(pilot)
        assert app.session.get(2).rating == 1
        assert app.history.favourites_only


async def test_history_writes_run_off_the_event_loop_in_order(studio, tmp_path):
    import threading
    import time

    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        calls = []
        session = app.session

        def slow(name):
            real = getattr(session, name)

            def write(entry_id, **fields):
                time.sleep(0.05)  # a slow fsync: keys must not wait for it
                calls.append((name, entry_id, fields, threading.current_thread() is threading.main_thread()))
                real(entry_id, **fields)

            return write

        for name in ("mark", "delete", "restore"):
            setattr(session, name, slow(name))
        await pilot.press("alt+5", "f", "f", "f", "plus", "plus", "d", "u")
        await written(pilot)
        assert [c[:3] for c in calls] == [
            ("mark", 2, {"favourite": True}), ("mark", 2, {"favourite": False}), ("mark", 2, {"favourite": True}),
            ("mark", 2, {"rating": 1}), ("mark", 2, {"rating": 2}), ("delete", 2, {}), ("restore", 2, {}),
        ]
        assert not any(on_main for *_, on_main in calls)
        entry = app.session.get(2)
        assert entry.favourite and entry.rating == 2 and not entry.deleted
        assert "★" in str(app.query_one("#history-list", OptionList).get_option_at_index(0).prompt)


async def test_thumbnails_are_applied_on_the_event_loop(studio, tmp_path):
    import threading

    class MainThreadOnly(dict):
        def __setitem__(self, key, value):
            assert threading.current_thread() is threading.main_thread(), "thumbnails written from a worker"
            super().__setitem__(key, value)

        def update(self, *args, **kwargs):
            assert threading.current_thread() is threading.main_thread(), "thumbnails written from a worker"
            super().update(*args, **kwargs)

    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    app.thumbs = MainThreadOnly()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await wait_until(pilot, lambda: len(app.thumbs) == 2 and all(app.thumbs.values()))
        assert "▀" in str(app.query_one("#history-list", OptionList).get_option_at_index(0).prompt)


async def test_an_unsaved_record_is_one_line(studio):
    from studio.service import RecordFailed
    from studio.tui.messages import EngineEvent

    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.post_message(EngineEvent(RecordFailed("3", "No space left on device")))
        await pilot.pause()
        assert any("session not saved: No space left" in n.message for n in app._notifications)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_every_parameter_is_readable_and_nothing_overlaps(studio, size):
    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        app.query_one("#seed", Input).value = "4294967295"
        app.query_one("#sampler").value = "DPM++ 2M SDE Karras"
        await pilot.pause()
        inside = app.params.content_region
        ids = ("model", "pick-model", "sampler", "steps", "cfg", "size", "seed", "seed-lock", "count")
        regions = {i: app.query_one(f"#{i}").region for i in ids}
        for i, region in regions.items():
            assert region.area and inside.contains_region(region), (i, region, inside)
        for a in ids:
            for b in ids:
                assert a == b or not regions[a].overlaps(regions[b]), (a, b)
        assert regions["seed"].width > len("4294967295")  # every digit, and the cursor after them
        assert regions["seed"].right <= regions["seed-lock"].x
        assert "DPM++ 2M SDE Karras" in app.export_screenshot().replace("&#160;", " ")
        for pane in ("#prompt-pane", "#params", "#preview", "#history", "#queue"):
            assert app.query_one(pane).region.height >= 6 and app.query_one(pane).region.width >= 20, pane


async def test_a_star_pressed_just_before_quitting_still_lands(studio, tmp_path):
    seeded_session(tmp_path / "sessions", "old")
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("alt+5")
        app.writes._draining = True  # as if the drain's worker were cancelled before it began
        await pilot.press("f", "plus")
    reopened = SessionStore(tmp_path / "sessions").open("old").get(2)
    assert reopened.favourite and reopened.rating == 1


async def test_a_hostile_prompt_is_shown_escaped_in_history_compare_and_fullscreen(studio, tmp_path):
    from studio.tui.widgets.compare import CompareScreen
    from studio.tui.widgets.fullscreen import FullscreenPreview

    session = seeded_session(tmp_path / "sessions", "evil", count=2)
    hostile = "a fox \x1b]52;c;aGk=\x07 \x1b]0;title\x07 \u202e"
    entry = session.queue(Recipe(prompt=hostile, model="studio-tiny", width=64, height=64, seed=7))
    session.start(entry.id)
    gradient_png(session.path / f"{entry.stem}.png", hue=200)
    session.finish(entry.id, entry.recipe, [f"{entry.stem}.png"], 1.0)
    escaped = "\\x1b]52;c;aGk=\\x07"
    app = studio("evil", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        history = app.query_one("#history-list", OptionList)
        rows = [str(history.get_option_at_index(i).prompt) for i in range(history.option_count)]
        assert any(escaped in row for row in rows) and not any("\x1b" in row for row in rows)
        await pilot.press("alt+5", "c", "down", "c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        shot = app.export_screenshot()
        assert "\\x1b]52;c;aGk=" in shot and "\x1b]52" not in shot
        await pilot.press("escape", "alt+5", "home")
        await wait_until(pilot, lambda: app.preview.path is not None and app.preview.path.name == f"{entry.stem}.png")
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, FullscreenPreview)
        assert escaped in app.screen.caption and "\x1b" not in app.screen.caption
        shot = app.export_screenshot()
        assert "\\x1b]0;title" in shot and "\x1b]0" not in shot


async def test_the_hostile_corpus_never_reaches_the_screen_raw(studio, tmp_path):
    """Every entry of the printable corpus, as prompt, negative and note, in one history."""
    from tests.test_printable import HOSTILE

    session = seeded_session(tmp_path / "sessions", "corpus", count=1)
    for index, (raw, _) in enumerate(HOSTILE):
        entry = session.queue(Recipe(prompt=f"p{index} {raw}", negative_prompt=raw, model=f"m{raw}",
                                     width=64, height=64, seed=index))
        session.mark(entry.id, note=raw)
    app = studio("corpus", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        history = app.query_one("#history-list", OptionList)
        rows = [str(history.get_option_at_index(i).prompt) for i in range(history.option_count)]
        shot = app.export_screenshot()
    unsafe = [c for text in (*rows, shot) for c in text
              if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF
              or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"]
    assert len(rows) >= len(HOSTILE) and unsafe == []


async def test_the_token_count_follows_the_chosen_model(studio, tmp_path, tiny_model_dir):
    app = studio(engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert app.prompt_pane.tokenizer_dir == tiny_model_dir / "tokenizer"  # the fixture's model
        app._model_chosen("studio-tiny")
        await pilot.pause()
        assert app.prompt_pane.tokenizer_dir.parent.name == "studio-tiny"


async def test_images_deleted_or_damaged_since_they_were_made_are_a_line_not_a_crash(studio, tmp_path):
    """The newest entry's file deleted, an older one cut short: the preview says so, full screen too."""
    session = seeded_session(tmp_path / "sessions", "old", count=3)
    (session.path / "0003.png").unlink()
    damaged = session.path / "0002.png"
    damaged.write_bytes(damaged.read_bytes()[:60])
    app = studio("old", engine_factory=IdleEngine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        placeholder = app.preview.query_one("#placeholder")
        await wait_until(pilot, lambda: "image missing: 0003.png" in str(placeholder.render()))
        await pilot.press("ctrl+down")
        await wait_until(pilot, lambda: "cannot show 0002.png" in str(placeholder.render()))
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert "cannot show 0002.png" in str(app.screen.query_one("#full-image").render())
        await pilot.press("escape", "f5", "m")  # paint a mask over the damaged one: a notice, no painter
        await pilot.pause()
        assert any("cannot show 0002.png" in str(n.message) for n in app._notifications), (list(app._notifications), app.history.highlighted_id, app.focused)
        assert type(app.screen).__name__ != "MaskPainter"
        await pilot.press("ctrl+down")
        await wait_until(pilot, lambda: app.query_one("#image").display)  # a whole one draws again
        assert app.is_running

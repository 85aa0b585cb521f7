"""What the TUI does before its first frame: no second parse of the stylesheets, no tokenizer read."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from textual.color import Color
from textual.css.stylesheet import Stylesheet

from studio.config import Config
from studio.tui.app import make_app
from studio.tui.widgets import prompt as prompt_module
from tests.test_tui_support import IdleEngine, started, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _app(tmp_path, tiny_model_dir, theme=""):
    return make_app(tmp_path / "sessions", engine_factory=IdleEngine, graphics="halfcell",
                    model=str(tiny_model_dir), config=Config(theme=theme))


@pytest.mark.parametrize("theme", ["paper", "darkroom"])
async def test_the_chosen_theme_is_in_the_first_frame_without_a_second_parse(tmp_path, tiny_model_dir, monkeypatch, theme):
    reparsed = []
    real = Stylesheet.reparse
    monkeypatch.setattr(Stylesheet, "reparse", lambda self: (reparsed.append(1), real(self))[1])
    app = _app(tmp_path, tiny_model_dir, theme)
    seen = {}
    display = app._display

    def first_frame(screen, update):
        seen.setdefault("reparsed", len(reparsed))
        seen.setdefault("background", screen.styles.background)
        display(screen, update)

    app._display = first_frame
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        assert app.theme == theme
        assert f"-theme-{theme}" in app.classes
        dark = app.get_theme(theme).dark
        assert ("-dark-mode" in app.classes) == dark and ("-light-mode" in app.classes) == (not dark)
        assert seen["reparsed"] == 0
        assert seen["background"] == Color.parse(app.get_theme(theme).background)
        app.theme = "textual-light"  # a switch afterwards still re-styles the window
        await pilot.pause()
        assert app.screen.styles.background == Color.parse(app.get_css_variables()["background"])
        assert app.screen.styles.background != seen["background"]


async def test_the_token_count_is_read_off_the_event_loop_after_the_first_frame(tmp_path, tiny_model_dir, monkeypatch):
    from studio.prompts import chunks

    monkeypatch.setattr(prompt_module, "_COUNTERS", {})
    threads = []
    real = chunks.TokenCounter

    def counter(folder, *args):
        threads.append(threading.current_thread())
        return real(folder, *args)

    monkeypatch.setattr(chunks, "TokenCounter", counter)
    app = _app(tmp_path, tiny_model_dir)
    frames_before_read = []
    display = app._display

    def frame(screen, update):
        frames_before_read.append(not threads)
        display(screen, update)

    app._display = frame
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        pane = app.prompt_pane
        await wait_until(pilot, lambda: (pane.border_subtitle or "").startswith("tokens "))
        assert threads and all(t is not threading.main_thread() for t in threads)
        assert frames_before_read[0]  # the first frame was drawn before any tokenizer was read
        pane.set_texts("a red circle", "")
        await pilot.pause()
        assert pane.border_subtitle.startswith("tokens ") and pane.border_subtitle != "tokens 0/14 · negative 0/14"
        reads = len(threads)
        pane.set_texts("a blue square", "")
        await pilot.pause()
        assert len(threads) == reads  # read once, then counted on the loop


async def test_an_unreadable_tokenizer_gives_no_count_and_no_error(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(prompt_module, "_COUNTERS", {})
    broken = tmp_path / "broken-tokenizer"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{not json")
    app = _app(tmp_path, tiny_model_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        app.prompt_pane.set_tokenizer(broken)
        await wait_until(pilot, lambda: broken in prompt_module._COUNTERS)
        await pilot.pause()
        assert not app.prompt_pane.border_subtitle


def test_importing_the_app_loads_no_tokenizer_sqlite_or_image_library():
    """What the first frame does not need is not imported with the app."""
    code = ("import sys, studio.tui.app; "
            "print(sorted(m for m in ('tokenizers', 'PIL', 'textual_image', 'torch', 'sqlite3', 'studio.service',"
            " 'studio.engine', 'studio.engine.events', 'studio.models.library', 'studio.tui.engine_view')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_the_collector_is_paused_until_the_first_frame_then_back_on(tmp_path, tiny_model_dir):
    import gc

    assert gc.isenabled()  # importing the app left it on
    app = _app(tmp_path, tiny_model_dir)
    frames = []
    display = app._display

    def frame(screen, update):
        frames.append(gc.isenabled())
        display(screen, update)

    app._display = frame
    frozen = gc.get_freeze_count()
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        assert frames[0] is False  # no collection pass before the first frame
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen  # the window's widgets and rules, frozen after the first frame
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # closed: collectable again


def test_importing_the_app_leaves_the_collector_on():
    code = "import gc, studio.tui.app; print(gc.isenabled())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_what_the_import_made_is_frozen_not_left_for_the_next_collections():
    """Made while the collector was paused, the app's modules and classes would all be in the youngest
    generation, and the next collections (before the first frame) would scan every one of them."""
    code = "import gc, studio.tui.app; print(gc.get_freeze_count(), len(gc.get_objects(generation=0)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    frozen, young = map(int, out.stdout.split())
    assert frozen > 20_000 and young < 2_000


async def test_what_mounts_after_the_first_frame_is_in_before_the_keys_need_it(tmp_path, tiny_model_dir):
    from textual.widgets import ProgressBar, TextArea

    from studio.tui.widgets.live_preview import LivePreview

    app = _app(tmp_path, tiny_model_dir)
    first = {}
    display = app._display

    def frame(screen, update):
        first.setdefault("negative", bool(screen.query("#negative")))
        display(screen, update)

    app._display = frame
    async with app.run_test(size=(100, 30)) as pilot:
        app.prompt_pane.set_texts("a red circle", "blurry")  # before the negative prompt mounts
        await started(pilot)
        assert first["negative"] is False
        assert app.query_one("#negative", TextArea).text == "blurry"
        assert app.prompt_pane.negative == "blurry" and app.prompt_pane.prompt == "a red circle"
        assert app.status_bar.query_one(ProgressBar).total == 1
        assert not app.preview.query_one(LivePreview).display
        assert [w.id for w in app.status_bar.children] == ["state", "progress", "step-info", "device"]


_FIRST_FRAME = r"""
import os, sys
from pathlib import Path
from studio.config import Config
from studio.tui.app import make_app

app = make_app(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None, graphics="none", config=Config())
display = app._display

def first_frame(screen, update):
    display(screen, update)
    deferred = sorted(m for m in sys.modules if m in ("json", "studio.store.snapshot", "studio.tui.widgets.footer",
                      "textual.widgets._progress_bar", "studio.recipe", "studio.store.session", "studio.store.journal",
                      "tomllib") or m.startswith("rich._unicode_data.unicode"))
    deferred += ["the session opened"] if app._session is not None else []
    import json

    panes = {w.id: (w.region.width, w.region.height) for w in screen.query("PromptPane, ParamsPane, PreviewPane,"
                                                                        " HistoryPane, QueuePane, StatusBar")}
    print(json.dumps({"focused": app.focused.id if app.focused else None, "panes": panes,
                      "core": sorted(m for m in ("studio.service", "studio.engine", "studio.tui.engine_view")
                                     if m in sys.modules), "built": app._studio is not None,
                      # what the first frame does without, though the window soon needs it: each costs milliseconds
                      "deferred": deferred}), flush=True)
    os._exit(0)

app._display = first_frame
app.run(headless=True, size=(120, 36))
"""


@pytest.mark.parametrize("reopened", [False, True], ids=["new-session", "reopened"])
def test_the_first_frame_is_the_window_before_the_service_is_built(tmp_path, reopened):
    """The first frame is the real window (every pane laid out, the prompt focused), drawn before
    the service, the engine's events and the model library are imported or built, and before
    the session is opened: its folder is named (or made) first, the recipe and the reader after."""
    import json
    import os

    env = dict(os.environ, STUDIO_CONFIG=str(tmp_path / "config.toml"), STUDIO_CACHE_DIR=str(tmp_path / "cache"))
    name = []
    if reopened:
        from studio.store.folders import SessionFolders

        SessionFolders(tmp_path / "sessions").create_folder("earlier")
        name = ["earl"]  # a prefix, found before the frame
    out = subprocess.run([sys.executable, "-c", _FIRST_FRAME, str(tmp_path / "sessions"), *name], capture_output=True,
                         text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert out.stdout.strip(), out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["focused"] == "prompt"
    assert set(seen["panes"]) == {"prompt-pane", "params", "preview", "history", "queue", "status"}
    assert all(w > 0 and h > 0 for w, h in seen["panes"].values()), seen["panes"]
    assert seen["core"] == [] and seen["built"] is False
    # A character outside rich's single-cell ranges (an em dash, say) in the first frame's text loads
    # its unicode width table (12-20 ms); the footer, the progress bar, json and a new session's
    # snapshot lookup all come after the frame.
    assert seen["deferred"] == [], seen["deferred"]


async def test_the_service_is_built_once_after_the_first_frame(tmp_path, tiny_model_dir):
    app = _app(tmp_path, tiny_model_dir)
    built_at_frame = []
    display = app._display

    def frame(screen, update):
        built_at_frame.append(app._studio is not None)
        display(screen, update)

    app._display = frame
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        assert built_at_frame[0] is False
        studio = app.studio
        assert studio is app.studio and app.library is studio.library and studio.session is app.session
        assert app.engine is not None


_CLI_TO_RUN = r"""
import os, sys
import studio.tui.app as app_module

def run(self, *args, **kwargs):  # the window would start here: what the CLI imported by then
    heavy = ("studio.store.session", "studio.recipe", "tomllib", "numpy", "PIL", "textual_image.widget", "torch")
    print(sorted(m for m in heavy if m in sys.modules), flush=True)
    os._exit(0)

app_module.StudioApp.run = run
from studio.cli import main
main(["--sessions-dir", sys.argv[1], "--graphics", "halfcell"])
"""


def test_the_cli_starts_the_window_before_the_session_reader_and_the_renderers(tmp_path):
    """`studio` (the TUI) reaches the window's start without the session's reader, the recipe, tomllib
    (no config file), the image renderers or torch: each would be paid before the first frame."""
    import os

    env = dict(os.environ, STUDIO_CONFIG=str(tmp_path / "config.toml"), STUDIO_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", _CLI_TO_RUN, str(tmp_path / "sessions")], capture_output=True,
                         text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]

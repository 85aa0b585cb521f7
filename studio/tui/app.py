"""StudioApp: the panes and the keys, a face on the headless `Studio` service.

Import cost matters here: the window must paint before torch loads, so this
module imports Textual and the little of studio the first frame shows (the
config, the panes); the session, the recipe and the store's reader are
imported just after that frame (StudioApp.session), the service then too. The
engine starts after the first paint and imports torch on its own thread;
textual-image's renderers load on another (graphics.py: a real terminal was
asked what it shows before the app started).

The service records every job and event in the session; the app hears each
event through a message and only draws it. Only start_engine, stop_engine,
preload, submit, resubmit, cancel_job and action_cancel_all call the service.
What the engine's events do to the window is in engine_view.py; the history
keys in history_actions.py; every key, in actions.py.
"""

from __future__ import annotations

from studio.tui import startup

startup.pause()  # until the end of these imports: see startup.py

import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen

from studio.builtin import DEFAULT_MODEL
from studio.config import Config
from studio.errors import RecipeError
from studio.printable import printable
from studio.tui import actions, graphics
from studio.tui.history_actions import HistoryActions
from studio.tui.session_loading import SessionLoading
from studio.tui.session_switch import SessionSwitch
from studio.tui.theme_setup import ThemeSetup
from studio.tui.iterate_actions import IterateActions
from studio.tui.model_actions import ModelActions
from studio.tui.sweep_actions import SweepActions
from studio.tui.view_actions import ViewActions
from studio.tui.messages import EngineEvent, GraphicsReady
from studio.tui.widgets.history import HistoryPane
from studio.tui.widgets.params import ParamsPane
from studio.tui.widgets.preview import PreviewPane
from studio.tui.widgets.prompt import PromptPane
from studio.tui.widgets.queue import QueuePane
from studio.tui.widgets.status_bar import StatusBar
from studio.tui.writes import SessionWrites

if TYPE_CHECKING:  # imported after the first frame: see StudioApp.session and StudioApp.studio
    from studio.engine.protocol import Engine, EngineFactory
    from studio.recipe import Recipe
    from studio.store.session import Entry, Session
    from studio.models.library import ModelLibrary
    from studio.service import Studio
    from studio.sweeps.wildcards import Wildcards
    from studio.tui.engine_view import EngineView, JobView

startup.resume()


class StudioApp(ThemeSetup, SessionSwitch, SessionLoading, HistoryActions, IterateActions, SweepActions, ModelActions,
                ViewActions, App):
    CSS_PATH = "studio.tcss"
    TITLE = "studio"

    BINDINGS = actions.bindings("anywhere")

    def __init__(
        self,
        open_session: Callable[[], Session],
        build_studio: Callable[[Session], Studio],
        config: Config,
        *,
        session_name: str,
        fresh: bool,
        graphics_mode: str = "auto",
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        super().__init__()
        self._open_session = open_session
        self._session: Session | None = None
        self._session_name = session_name
        self._fresh = fresh  # a session just created: nothing to read
        self._build_studio = build_studio
        self._studio: Studio | None = None
        self._engine_view: EngineView | None = None
        self.config = config
        self.graphics_mode = graphics.normalise(graphics_mode)
        self._base: Recipe | None = None
        self._base_values = {"model": model, "device": device, "dtype": dtype, "safety_checker": config.safety_checker}
        self.writes = SessionWrites(self)
        self.last_recipe: Recipe | None = None
        self.undo_stack: list[int] = []
        self._unwritten: dict[int, dict[str, Any]] = {}  # marks queued, not yet on disk
        self._writes_queued: dict[int, int] = {}
        self.thumbs: dict[str, Any] = {}
        self.image_class: Any = None
        self._graphics_asked = False
        self.first_paint_at: float | None = None
        self.torch_at_first_paint: bool | None = None
        self._theme_ready = False
        self._theme_warnings = self._register_themes()  # before the first paint: a later switch re-styles everything

    # -- layout and start-up --------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield PromptPane(id="prompt-pane")
                yield ParamsPane(id="params")
            yield PreviewPane(id="preview")
        with Horizontal(id="bottom"):
            yield HistoryPane(id="history")
            yield QueuePane(id="queue")
        yield StatusBar(id="status")
        # The footer (its keys) mounts just after the first frame: see _after_first_paint.

    def on_load(self) -> None:
        startup.pause()  # until the first frame (or unmount): see startup.py

    def on_mount(self) -> None:
        # Kept, not queried: while a dialog is on top, queries see only the dialog.
        self.prompt_pane = self.query_one(PromptPane)
        self.params = self.query_one(ParamsPane)
        self.preview = self.query_one(PreviewPane)
        self.history = self.query_one(HistoryPane)
        self.queue_pane = self.query_one(QueuePane)
        self.status_bar = self.query_one(StatusBar)
        for warning in self._theme_warnings:
            self.notify(warning, severity="warning")
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._theme_ready = True
        self.sub_title = f"session {self.session_name}"
        self.prompt_pane.focus_prompt()
        self.start_loading()  # a session opened unread is read on a worker (session_loading.py)
        if self.config.warning:
            self.notify(printable(self.config.warning), severity="warning", timeout=8, markup=False)
        self.call_after_refresh(self._after_first_paint)

    @on(ParamsPane.Ready)
    def _fill_form(self) -> None:
        from studio.recipe import random_seed

        self.params.set_model(self.base.model)
        self.params.apply_defaults(self.library.defaults(self.base.model))
        self.prompt_pane.set_tokenizer(self.library.tokenizer_folder(self.base.model))
        self.params.set_seed(random_seed())

    def _after_first_paint(self) -> None:
        startup.resume()
        self.first_paint_at = time.perf_counter()
        self.torch_at_first_paint = "torch" in sys.modules
        from studio.tui.widgets.footer import StudioFooter  # its module and Textual's Footer: after the frame

        self.screen_stack[0].mount(StudioFooter())  # the main window's, even if a dialog is up by now
        if not self.loading:
            self.refresh_history()  # opens the session (StudioApp.session)
            self.start_engine()  # builds the service (self.studio) first
            self.show_session_warnings()
            self.load_graphics()
        self.read_after_first_paint()  # ... and once read, starts the engine and loads the renderers (session_loading.py)
        self.offer_resume()

    # -- the core, built after the first frame --------------------------------

    @property
    def session(self) -> Session:
        """The window's session, opened (not read: session_loading.py) on first use.

        `make_app` names, finds or creates its folder before the first frame;
        the `Session` itself, with the recipe and the store's reader, is some
        20 ms of imports the first frame does not need, so the app opens it
        just after that frame (`_after_first_paint`), or when asked earlier.
        """
        if self._session is None:
            self._session = self._open_session()
        return self._session

    @session.setter
    def session(self, session: Session) -> None:
        self._session = session

    @property
    def session_name(self) -> str:
        return self._session.name if self._session is not None else self._session_name

    @property
    def base(self) -> Recipe:
        """The recipe the form starts from: the model, device and dtype asked for (made on first use)."""
        if self._base is None:
            from studio.recipe import Recipe

            self._base = Recipe(prompt="", **self._base_values)
        return self._base

    @property
    def studio(self) -> Studio:
        """The service (session, model library, engine), built on first use.

        Importing it (the service, the engine's events, the model library) and
        building it are some 50 ms the first frame does not need; the app builds
        it right after that frame (`start_engine`), and anything asking earlier
        builds it then.
        """
        if self._studio is None:
            self._studio = self._build_studio(self.session)
            # The service records each event, then this hands it to the event loop.
            self._studio.subscribe(lambda event: self.post_message(EngineEvent(event)))
        return self._studio

    @property
    def library(self) -> ModelLibrary:
        return self.studio.library

    @property
    def engine_view(self) -> EngineView:
        """What the engine's events do to the window (engine_view.py), made on first use."""
        if self._engine_view is None:
            from studio.tui.engine_view import EngineView

            self._engine_view = EngineView(self)
        return self._engine_view

    @property
    def engine(self) -> Engine | None:
        return self._studio.engine if self._studio is not None else None

    def start_engine(self) -> None:
        if self.engine is not None:
            return
        from studio.tui.engine_view import STARTING

        self.status_bar.state = STARTING
        self.studio.start()
        try:  # the form may not be mounted yet: the model's own defaults are what it will show
            self.preload(self.base.replace(**self.library.defaults(self.base.model)))
        except (RecipeError, TypeError):
            pass  # odd defaults: the first generate loads the model instead

    def preload(self, recipe: Recipe | None = None) -> None:
        """Load the recipe's (by default the form's) model now, so the next generate does not wait for it."""
        if self.engine is None:
            return  # start_engine preloads the model it starts with
        recipe = recipe or self.read_form()
        if recipe is not None:
            self.studio.preload(recipe)

    def load_graphics(self) -> None:
        """Import the image renderers, once: on a thread, which a read of the session would share the
        interpreter with (some 0.2 s more before every entry of 100,000 is there), so after it."""
        if self._graphics_asked:
            return
        self._graphics_asked = True
        if self.graphics_mode == "none" or "textual_image.widget" in sys.modules:
            self.post_message(GraphicsReady())
        else:
            self._import_graphics()

    @work(thread=True, group="graphics")
    def _import_graphics(self) -> None:
        # The renderers' import (numpy, PIL), after the first frame; a real terminal was asked before it.
        self.graphics_mode = graphics.load(self.graphics_mode)
        self.post_message(GraphicsReady())

    def on_graphics_ready(self, _: GraphicsReady) -> None:
        self.image_class = graphics.image_widget_class(self.graphics_mode)
        self.status_bar.renderer = graphics.describe(self.graphics_mode)
        self.preview.set_renderer(self.image_class)

    def on_unmount(self) -> None:
        startup.thaw()
        for error in self.writes.flush():
            self.log.error(f"session write lost at exit: {error}")
        self.stop_engine(wait=False)

    def stop_engine(self, wait: bool = True) -> None:
        """Cancel every job and stop the worker; `wait` blocks until the running step ends.

        The CLI waits after the window closes, so a running job records its
        cancel and torch is never torn down mid-step by the interpreter exiting.
        """
        self.studio.shutdown(wait=wait)

    # -- engine events (posted from the worker thread) -------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        if self.is_running:  # closing: the session file has the record already
            self.engine_view.show(message.event)

    @property
    def jobs(self) -> dict[str, JobView]:
        return self.engine_view.jobs

    @property
    def running(self) -> str | None:
        return self.engine_view.running

    # -- actions: making images -------------------------------------------------

    def read_form(self) -> Recipe | None:
        if not self.params.ready:
            return None  # the first frame is still being built (a few milliseconds)
        prompt = self.prompt_pane
        try:
            recipe = self.params.read(self.base)
            return recipe.replace(prompt=prompt.prompt, negative_prompt=prompt.negative)
        except RecipeError as exc:
            self.notify(printable(exc), title="cannot generate", severity="error", markup=False)
            return None

    def wildcards(self) -> Wildcards:
        """The config's wildcard folders, then A1111's and ComfyUI's usual ones; files are read afresh each time."""
        from studio.sweeps.wildcards import Wildcards

        return Wildcards.for_user((), self.config.wildcard_dirs)

    def submit(self, recipes: Iterable[Recipe]) -> list[str]:
        """Queue `recipes` with their `__name__` and `{a|b}` drawn from each one's seed, as `studio generate`
        does (the template is recorded); a prompt that cannot be drawn is a notice and nothing is queued."""
        from studio.sweeps.wildcards import resolve_prompts

        recipes = list(recipes)
        try:
            wildcards = self.wildcards()
            jobs = [resolve_prompts(recipe, wildcards) for recipe in recipes]
        except RecipeError as exc:  # WildcardError: a missing file, a brace left open
            self.notify(printable(exc), title="cannot generate", severity="error", markup=False)
            return []
        if self.loading:
            self.hold(recipes)  # drawn again when queued: the same seeds draw the same prompts
            return []
        self.start_engine()
        ids = []
        for recipe, (drawn, template) in zip(recipes, jobs):
            try:
                ids.append(self.studio.submit(drawn, template=template))
            except Exception as exc:  # SessionError: read-only or unwritable session
                self.notify(printable(exc), title="cannot queue", severity="error", markup=False)
                break
            self.last_recipe = recipe
        return ids

    def action_generate(self) -> None:
        recipe = self.read_form()
        if recipe is None:
            return
        self.submit(recipe.series(self._count()))

    def action_queue_more(self) -> None:
        from studio.recipe import random_seed

        base = self.last_recipe or self.read_form()
        if base is not None:
            self.submit(base.replace(seed=random_seed()) for _ in range(self._count()))

    def action_reroll(self) -> None:
        from studio.recipe import random_seed

        if not self.params.ready:
            return
        self.params.set_seed(random_seed(), lock=True)
        self.action_generate()

    def _count(self) -> int:
        try:
            return self.params.count
        except RecipeError as exc:
            self.notify(str(exc), severity="warning")
            return 1

    def cancel_job(self, job_id: str) -> None:
        if self.studio.cancel(job_id):
            self.status_bar.state = f"cancelling #{job_id}…"

    def resubmit(self, entry: Entry) -> str:
        """Queue a crashed run's entry again, under its own id."""
        self.start_engine()
        return self.studio.resume([entry])[0]

    def action_cancel(self) -> None:
        target = self.running or next(iter(self.jobs), None)
        if target is None:
            self.notify("nothing to cancel")
        else:
            self.cancel_job(target)

    def action_cancel_all(self) -> None:
        self.studio.cancel_all()

    @on(ParamsPane.PickModel)
    def _pick_model_clicked(self) -> None:
        self.action_pick_model()  # model_actions.py

    # -- resume after a crash -------------------------------------------------

    def _resume(self, entries: list[Entry], resume: bool) -> None:
        for entry in entries:
            try:
                if resume:
                    self.resubmit(entry)
                else:
                    self.studio.abandon([entry])
            except Exception as exc:  # SessionError: the file cannot be written
                self.notify(printable(f"#{entry.id}: {exc}"), severity="error", markup=False)
        self.refresh_history()

    # -- command palette --------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        panes = {"history": self.history, "queue": self.queue_pane}
        for a in actions.palette():
            namespace = panes[a.where] if a.local else None
            yield SystemCommand(a.title, actions.palette_help(a), partial(self.run_action, a.action, namespace))


def make_app(
    sessions_dir: Path,
    session_name: str | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    graphics: str | None = None,
    model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    config: Config | None = None,
    model_dirs: list[Path] | None = None,
    preview: str | None = None,
) -> StudioApp:
    """Build the app on a new session in `sessions_dir`, or reopen `session_name`.

    Tests pass a temporary folder, a tiny model and an engine factory; the
    graphics mode defaults to the config's (then "auto").
    """
    from studio.config import load_config
    from studio.store.folders import SessionFolders

    if config is None:
        config = load_config()
    store = SessionFolders(Path(sessions_dir))
    # The folder is found or made now (a bad name is one line before the window opens);
    # the Session is opened just after the first frame (StudioApp.session).
    if session_name:
        folder, header = store.find(session_name), None
    else:
        folder, header = store.create_folder()

    def open_session() -> Session:
        from studio.store.session import Session

        return Session(folder, load=False) if header is None else Session.created(folder, header)

    def build_studio(session: Session) -> Studio:
        # After the first frame (StudioApp.studio): the window paints without these imports.
        from studio.models.library import ModelLibrary
        from studio.service import Studio
        from studio.upscale.spandrel_net import use_extra_arches

        library = ModelLibrary.from_config(config, extra_dirs=model_dirs or ())
        use_extra_arches(config.spandrel_extra_arches, check=False)  # installed at the first upscaler file loaded
        return Studio(session, library, engine_factory=engine_factory, cache_size=config.cache_models,
                      previews=preview or config.preview)

    return StudioApp(
        open_session,
        build_studio,
        config,
        session_name=folder.name,
        fresh=header is not None,
        graphics_mode=graphics or config.graphics or "auto",
        model=model or DEFAULT_MODEL,
        device=device,
        dtype=dtype,
    )

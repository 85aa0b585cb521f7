"""Running jobs from the command line: the service, a progress bar on stderr, paths on stdout.

`studio generate`, `rerun` and `import --run` all end here. Ctrl-C cancels
what is queued and stops the running job within a step; images already
written stay, and the session records every outcome.
"""

from __future__ import annotations

import argparse
import queue
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine import events as ev
from studio.printable import printable
from studio.recipe import Recipe

if TYPE_CHECKING:
    from studio.config import Config
    from studio.engine.protocol import EngineFactory
    from studio.models.library import ModelLibrary
    from studio.service import Studio
    from studio.store.session import Entry, Session


@dataclass
class RunResult:
    paths: list[Path] = field(default_factory=list)
    failed: int = 0
    cancelled: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled


def say(message: str) -> None:
    """One line for the user on stderr; the message may quote a file, so it is made printable."""
    print(printable(f"studio: {message}"), file=sys.stderr)


def library_for(config: Config, tokenizer: Path | None = None) -> ModelLibrary:
    from studio.models.library import ModelLibrary

    return ModelLibrary.from_config(config, tokenizer_dir=tokenizer)


def open_session(args: argparse.Namespace, config: Config) -> Session | None:
    """`--session NAME` (made if new), else a new session; None after saying why not."""
    from studio.config import sessions_dir_from
    from studio.store.session import SessionError, SessionStore

    store = SessionStore(sessions_dir_from(args, config))
    name = getattr(args, "session", None)
    try:
        if name and (store.root / name).is_dir():
            return store.open(name)
        return store.create(name)
    except (SessionError, OSError) as exc:
        say(f"cannot open a session: {exc}")
        return None


def make_studio(
    session: Session, library: ModelLibrary, config: Config, out_dir: Path | None = None,
    engine_factory: EngineFactory | None = None,
) -> Studio:
    from studio.service import Studio

    # No UI shares this process: the engine runs torch on every core (the TUI keeps one back).
    studio = Studio(session, library, out_dir=out_dir, cache_size=config.cache_models, engine_factory=engine_factory,
                    reserve_core=False)
    for note in studio.recovered:
        print(printable(f"note: {note}"), file=sys.stderr)
    return studio


def run_jobs(
    studio: Studio,
    submit: Callable[[Studio], list[str]],
    quiet: bool = False,
) -> RunResult:
    """Queue jobs through `submit(studio)`, print each image's path as it lands, wait for every job."""
    inbox: queue.Queue[ev.Event] = queue.Queue()
    studio.subscribe(inbox.put)
    run = _Run(_ProgressBar(quiet))
    try:
        job_ids = set(submit(studio))
        while not job_ids <= run.closed and not run.engine_broken:
            try:
                run.handle(inbox.get(timeout=0.1))
            except queue.Empty:
                continue
    except KeyboardInterrupt:
        print("\ncancelling…", file=sys.stderr)
        studio.shutdown(wait=True)  # cancels everything; the running job stops within a step
        while not inbox.empty():
            run.handle(inbox.get_nowait())
        raise
    finally:
        run.bar.close()
        studio.shutdown(wait=True)
    return run.result


def run_recipes(studio: Studio, recipes: list[Recipe], quiet: bool = False) -> RunResult:
    return run_jobs(studio, lambda s: [s.submit(recipe) for recipe in recipes], quiet)


def resume_entries(studio: Studio, entries: list[Entry], quiet: bool = False) -> RunResult:
    return run_jobs(studio, lambda s: s.resume(entries), quiet)


class _Run:
    """What one run has seen: progress, the outcome."""

    def __init__(self, bar: _ProgressBar) -> None:
        self.bar = bar
        self.result = RunResult()
        self.closed: set[str] = set()  # jobs that reached a final event
        self.engine_broken = False  # torch or diffusers would not even import

    def handle(self, event: ev.Event) -> None:
        from studio.service import RecordFailed

        self.bar.show(event)
        match event:
            case ev.Finished(paths=paths):
                for path in paths:
                    print(printable(path), flush=True)
                self.result.paths.extend(paths)
            case ev.Failed(job_id=job_id, reason=reason):
                say(f"{'job failed: ' if job_id else ''}{reason}")
                self.result.failed += 1
                self.engine_broken = not job_id
            case ev.Cancelled():
                self.result.cancelled += 1
            case ev.Notice(message=message):
                print(printable(f"warning: {message}"), file=sys.stderr)
            case RecordFailed(reason=reason):
                say(f"session not saved: {reason}")
        if isinstance(event, (ev.Finished, ev.Failed, ev.Cancelled)):
            self.closed.add(event.job_id)


class _ProgressBar:
    """A rich progress bar on stderr: step k/n, it/s and ETA for the running job."""

    def __init__(self, quiet: bool) -> None:
        self._progress = None
        self._task = None
        if quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()

    def show(self, event: ev.Event) -> None:
        if self._progress is None:
            return
        match event:
            case ev.Loading(model=model):
                self._new_task(f"loading {model}", None)
            case ev.Started(job_id=job_id, recipe=recipe):
                self._new_task(f"job {job_id}", recipe.steps)
            case ev.Progress(job_id=job_id, step=step, total=total, its=its, stage=stage) if self._task is not None:
                description = f"job {job_id} {stage}" if stage else None
                self._progress.update(self._task, completed=step, total=total, rate=f"{its:.1f} it/s",
                                      description=description)

    def _new_task(self, description: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, rate="")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()

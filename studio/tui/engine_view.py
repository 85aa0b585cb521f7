"""What the engine's events do to the window: the status bar, the queue pane, the preview.

The app hands every `EngineEvent` here on its own thread; the view keeps the
jobs the queue pane shows and which one is running. It never calls the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.engine import events as ev
from studio.printable import printable
from studio.recipe import Recipe
from studio.service import RecordFailed

if TYPE_CHECKING:
    from studio.tui.app import StudioApp

STARTING = "starting engine…"


@dataclass
class JobView:
    """What the queue pane shows about one job."""

    job_id: str
    recipe: Recipe
    status: str = "queued"  # queued, loading, running
    step: int = 0
    total: int = 0
    cell: str = ""  # a sweep cell's coordinates ("steps: 3 · sr: blue"), for the queue pane


class EngineView:
    def __init__(self, app: StudioApp) -> None:
        self.app = app
        self.jobs: dict[str, JobView] = {}
        """The queued and running jobs, in the order they were queued."""
        self.running: str | None = None
        """The id of the job on the worker, if any."""
        self._queue_painted = 0.0

    def show(self, event: ev.Event) -> None:
        app = self.app
        status = app.status_bar
        job = self.jobs.get(event.job_id)
        match event:
            case ev.Ready(device=device, dtype=dtype):
                status.device = f"{device} {dtype}"
                if status.state == STARTING:
                    status.state = "ready"
            case ev.Loading(model=model):
                status.state = f"loading {model}…"
                if job:
                    job.status = "loading"
            case ev.Loaded():
                status.state = "ready"
            case ev.Queued(job_id=job_id, recipe=recipe):
                self.jobs[job_id] = JobView(job_id, recipe, cell=self._cell(job_id))
                if self.running is None:
                    status.state = "queued"
                self._changed()
            case ev.Started(job_id=job_id, recipe=recipe):
                self.running = job_id
                if job:
                    job.status, job.total = "running", recipe.steps
                status.state = f"rendering #{job_id}"
                status.progress(0, recipe.steps, 0.0, 0.0)
                self._changed()
            case ev.Progress(step=step, total=total, its=its, eta=eta, stage=stage):
                if job:
                    job.step, job.total = step, total
                status.progress(step, total, its, eta, stage)
                if time.monotonic() - self._queue_painted > 0.5:
                    self.paint_queue()
                    self.paint_grid()
            case ev.Preview(image=image):
                if not app.history.has_focus_within:
                    app.preview.show_live(image)
            case ev.Finished(job_id=job_id, recipe=recipe, paths=paths, seconds=seconds):
                self._over(job_id)
                status.state = "ready"
                status.idle(f"#{job_id} done in {seconds:.1f}s")
                if paths:
                    app.preview.show_file(paths[0], f"#{job_id} · seed {recipe.seed}")
            case ev.Failed(job_id=job_id, reason=reason):
                self._over(job_id)
                status.state = "failed" if job_id else "engine failed"
                status.idle(printable(reason))
                app.notify(printable(reason), title="generation failed", severity="error", timeout=10, markup=False)
            case ev.Cancelled(job_id=job_id):
                self._over(job_id)
                if self.running is None:
                    status.state = "ready"
                status.idle(f"#{job_id} cancelled")
            case ev.Notice(job_id=job_id, message=message):
                app.notify(printable(message), title=f"#{job_id}", severity="warning", timeout=8)
            case RecordFailed(reason=reason):
                app.notify(printable(f"session not saved: {reason}"), severity="error", timeout=10, markup=False)

    def _over(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        if self.running == job_id:
            self.running = None
        self._changed()
        self.app.cell_ended(job_id, self.jobs)  # a sweep's last cell: its grid is drawn now

    def _changed(self) -> None:
        self.paint_queue()
        self.paint_grid()
        self.app.refresh_history()

    def _cell(self, job_id: str) -> str:
        try:
            sweep = self.app.session.get(job_id).sweep
        except Exception:  # noqa: BLE001  (not a session entry: a preload, or another session's)
            return ""
        return " · ".join(label for label in (sweep or {}).get("labels", []) if label)

    def paint_grid(self) -> None:
        """An open grid view follows its sweep's cells as they run."""
        from studio.tui.widgets.grid_view import GridView

        if isinstance(self.app.screen, GridView):
            self.app.screen.follow(self.app.session.get, self.jobs)

    def paint_queue(self) -> None:
        self._queue_painted = time.monotonic()
        self.app.queue_pane.set_jobs(list(self.jobs.values()))

"""The queue pane: pending and running jobs, each cancellable."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from studio.tui import actions
from studio.tui.widgets.history import STATUS_STYLE, excerpt


class QueuePane(Vertical):
    """Pane 6. `x` cancels the highlighted job; the app's ctrl+t cancels the running one."""

    BORDER_TITLE = "6 Queue"

    BINDINGS = actions.bindings("queue")

    def on_mount(self) -> None:
        self.call_after_refresh(self.mount, OptionList(id="queue-list"))  # after the first frame; empty at launch anyway

    def set_jobs(self, jobs: list[Any]) -> None:
        if not self.query("#queue-list"):
            return
        ol = self.query_one("#queue-list", OptionList)
        rows = [(job.job_id, self._row(job)) for job in jobs]
        if [i for i, _ in rows] == [ol.get_option_at_index(n).id for n in range(ol.option_count)]:
            for job_id, row in rows:  # same jobs, new step counts: repaint rows, no re-layout
                if ol.get_option(job_id).prompt != row:
                    ol.replace_option_prompt(job_id, row)
        else:
            keep = ol.highlighted
            ol.clear_options()
            ol.add_options([Option(row, id=job_id) for job_id, row in rows])
            if jobs:
                ol.highlighted = min(keep or 0, len(jobs) - 1)
        self.border_subtitle = f"{len(jobs)} pending" if jobs else "empty"

    @staticmethod
    def _row(job: Any) -> Text:
        row = Text(f"#{job.job_id} ", style="bold")
        row.append(job.status, style=STATUS_STYLE.get(job.status, "yellow"))
        if job.total:
            row.append(f" {job.step}/{job.total}", style="dim")
        row.append(f"  seed {job.recipe.seed}\n")
        if job.cell:  # a sweep's cell: where it sits says more than its prompt
            row.append(excerpt(f"cell {job.cell}", 40), style="cyan")
        else:
            row.append(excerpt(job.recipe.prompt, 40))
        return row

    def action_cancel_highlighted(self) -> None:
        ol = self.query_one("#queue-list", OptionList)
        if ol.highlighted is not None and ol.option_count:
            job_id = ol.get_option_at_index(ol.highlighted).id
            self.app.cancel_job(job_id)

"""The sweep keys: the builder over the form's recipe (f10; f7 is the text areas' select-all), and a sweep's grid view from history (g).

A mixin of StudioApp, beside HistoryActions and IterateActions. Cells are
queued through the service like any job; the grid PNG and its entry are made
by `studio.sweeps.run.finish_sweeps` on a worker thread once every cell has ended
(when the last one ends, and again, if it was not made then, when the grid view opens).
"""

from __future__ import annotations

import threading
from typing import Any

from studio.printable import printable

_GRID_LOCK = threading.Lock()


class SweepActions:
    # Set by StudioApp / HistoryActions.
    session: Any
    studio: Any
    params: Any
    prompt_pane: Any
    loading: bool

    def action_sweep_builder(self) -> None:
        from studio.tui.widgets.sweep_builder import SweepBuilder

        recipe = self.read_form()
        if recipe is None:
            return

        def built(sweep: Any) -> None:
            if sweep is None:
                return
            from studio.sweeps.run import submit_sweep

            if self.loading:  # the session's lock is the reader's until it is read
                self.notify("the session is still loading; queue the sweep once it has", severity="warning")
                return
            self.start_engine()
            try:
                submit_sweep(self.studio, sweep)
            except Exception as exc:  # SessionError: read-only or unwritable session
                self.notify(printable(str(exc)), title="cannot queue", severity="error")
                return
            self.notify(printable(sweep.describe()))

        self.push_screen(SweepBuilder(recipe, self.wildcards()), built)

    def action_grid_view(self) -> None:
        from studio.sweeps.run import sweeps_in
        from studio.tui.widgets.grid_view import GridView

        entry = self.highlighted_entry()
        if entry is not None and self.loading:
            self.notify("the session is still loading", severity="warning")
            return
        if entry is None or not entry.sweep:
            self.notify("not a sweep's cell or grid", severity="warning")
            return
        cells, _ = sweeps_in(self.session).get(entry.sweep["id"], ([], []))
        if not cells:
            return

        def branch(cell: Any) -> None:
            if cell is not None and self.params.ready:
                self.prompt_pane.set_texts(cell.recipe.prompt, cell.recipe.negative_prompt)
                self.params.load(cell.recipe, lock_seed=True)
                self.notify(f"recipe of #{cell.id} loaded; seed locked")

        self.push_screen(GridView(cells), branch)
        session = self.session  # the sweep's own, even if the window opens another meanwhile
        self.run_worker(lambda: self._finish_sweep(session, entry.sweep["id"]), thread=True)

    def cell_ended(self, job_id: str, jobs: dict[str, Any]) -> None:
        """A job has ended; if it was a sweep's cell and none of its sweep's cells is still queued or
        running (`jobs`), draw the grid now, whether the grid view is open or not."""
        sweep_id = self._sweep_of(job_id)
        if not sweep_id or any(self._sweep_of(other) == sweep_id for other in jobs):
            return
        session = self.session
        self.run_worker(lambda: self._finish_sweep(session, sweep_id), thread=True)

    def _sweep_of(self, job_id: str) -> str:
        """The sweep id of a cell's job ("" for any other job, a grid among them)."""
        try:
            sweep = self.session.get(job_id).sweep
        except Exception:  # noqa: BLE001  (not an entry of this session: a preload)
            return ""
        return sweep["id"] if sweep and "cells" not in sweep else ""

    def _finish_sweep(self, session: Any, sweep_id: str) -> None:
        """Draw and record the grid if every cell has ended and it is not there yet (a worker thread)."""
        from studio.sweeps.run import finish_sweeps

        try:
            with _GRID_LOCK:  # the last cell's end and the grid view's opening may both ask
                paths = finish_sweeps(session, only={sweep_id})
            for path in paths:
                self.call_from_thread(self.notify, printable(f"grid {path.name} recorded"))
        except Exception as exc:  # a full disk: the cells stay, the grid can be made later
            self.call_from_thread(self.notify, printable(str(exc)), title="no grid", severity="error")

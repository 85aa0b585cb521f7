"""A sweep's cells as a grid: arrows move, the cell's recipe shows below, enter branches from it.

Opened on a sweep still running, it follows it: the app calls `follow` as cells
start, step and end, and each cell shows its status, with steps for a running one."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from studio.formats.a1111 import a1111_parameters
from studio.printable import printable
from studio.tui.actions import bindings


class GridView(ModalScreen[Any]):
    """`cells`: one sweep's cell entries. Dismisses with the entry to branch from, or None."""

    BINDINGS = bindings("grid")
    DEFAULT_CSS = """
    GridView { align: center middle; }
    GridView > Vertical { width: 90%; height: auto; max-height: 90%; border: round $accent; padding: 0 1; background: $surface; }
    GridView #recipe { margin-top: 1; color: $text-muted; }
    """

    def __init__(self, cells: list[Any]) -> None:
        super().__init__()
        self.cells = {tuple(cell.sweep["at"]): cell for cell in cells}
        self.shape = tuple(cells[0].sweep["shape"])
        self.at = [0, 0, 0]
        self.steps: dict[int, tuple[int, int]] = {}  # a running cell's id -> (step, total)

    def follow(self, entry: Any, jobs: dict[str, Any]) -> None:
        """Redraw from the session's entries (`entry(id)`) and the engine's jobs (id -> JobView)."""
        self.cells = {at: entry(cell.id) for at, cell in self.cells.items()}
        self.steps = {cell.id: (job.step, job.total) for cell in self.cells.values()
                      if (job := jobs.get(str(cell.id))) is not None and job.status == "running"}
        if self.is_mounted:
            self._show()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="title", markup=False)
            yield Static("", id="grid")
            yield Static("", id="recipe", markup=False)

    def on_mount(self) -> None:
        self._show()

    @property
    def current(self) -> Any:
        return self.cells.get(tuple(self.at))

    def action_move(self, dx: int, dy: int, dz: int = 0) -> None:
        for axis, delta in enumerate((dx, dy, dz)):
            self.at[axis] = max(0, min(self.shape[axis] - 1, self.at[axis] + delta))
        self._show()

    def action_branch(self) -> None:
        if self.current is not None:
            self.dismiss(self.current)

    def action_close(self) -> None:
        self.dismiss(None)

    def _cell_text(self, cell: Any) -> str:
        if cell is None:
            return "(none)"
        if cell.id in self.steps:
            step, total = self.steps[cell.id]
            return f"#{cell.id} {step}/{total}"
        return f"#{cell.id} {cell.status}"

    def _show(self) -> None:
        nx, ny, nz = self.shape
        x, y, z = self.at
        rows = []
        for j in range(ny):
            row = []
            for i in range(nx):
                cell = self.cells.get((i, j, z))
                text = self._cell_text(cell)
                row.append(f"[reverse]{text:^14}[/]" if (i, j) == (x, y) else f"{text:^14}")
            rows.append(" ".join(row))
        self.query_one("#grid", Static).update("\n".join(rows))
        cell = self.current
        where = " · ".join(label for label in (cell.sweep["labels"] if cell else []) if label)
        self.query_one("#title", Label).update(printable(f"sweep {cell.sweep['id'] if cell else ''} · {where}"
                                                         + (f" · z {z + 1}/{nz}" if nz > 1 else "")))
        self.query_one("#recipe", Static).update(printable(a1111_parameters(cell.recipe), one_line=False)
                                                 if cell else "no cell here")

"""The sweep builder: type an axis per line (FIELD=v1,v2,...), see the cell count, enter runs it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from studio.printable import printable
from studio.recipe import Recipe, RecipeError
from studio.sweeps.sweep import Sweep
from studio.sweeps.wildcards import Wildcards
from studio.tui.actions import bindings


class SweepBuilder(ModalScreen["Sweep | None"]):
    """Axes over the form's recipe; dismisses with the checked Sweep, or None (escape)."""

    BINDINGS = bindings("sweep")
    DEFAULT_CSS = """
    SweepBuilder { align: center middle; }
    SweepBuilder > Vertical { width: 80; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    SweepBuilder #count { margin-top: 1; }
    """

    def __init__(self, base: Recipe, wildcards: Wildcards | None = None) -> None:
        super().__init__()
        self.base = base
        self.wildcards = wildcards
        self.sweep: Sweep | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Sweep: FIELD=v1,v2,... (steps=10-40(+10), cfg=4-8[3], sr=red,blue, lora:NAME=0.2,1)", markup=False)
            for axis in ("x", "y", "z"):
                yield Input(placeholder=f"{axis.upper()} axis", id=f"axis-{axis}")
            yield Label("no axis yet", id="count", markup=False)

    def on_mount(self) -> None:
        self.query_one("#axis-x", Input).focus()

    @on(Input.Changed)
    def _recount(self) -> None:
        texts = [self.query_one(f"#axis-{axis}", Input).value.strip() or None for axis in ("x", "y", "z")]
        label = self.query_one("#count", Label)
        try:
            self.sweep = Sweep.build(self.base, *texts, wildcards=self.wildcards)
        except RecipeError as exc:
            self.sweep = None
            label.update(printable(str(exc)))
            return
        label.update(printable(self.sweep.describe().split(": ", 1)[1] + " · enter runs"))

    @on(Input.Submitted)
    def _run(self) -> None:
        if self.sweep is not None:
            self.dismiss(self.sweep)

    def action_close(self) -> None:
        self.dismiss(None)

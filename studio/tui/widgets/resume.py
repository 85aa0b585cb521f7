"""Offer to resume jobs a crashed run left queued or running."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from studio.tui.widgets.history import excerpt


class ResumeDialog(ModalScreen[bool]):
    """Dismisses with True to run the jobs again, False to mark them cancelled."""

    DEFAULT_CSS = """
    ResumeDialog { align: center middle; }
    ResumeDialog .buttons { height: auto; margin-top: 1; }
    ResumeDialog Button { margin-right: 2; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Resume"),
        Binding("n,escape", "answer(False)", "Discard"),
    ]

    def __init__(self, entries: list[Any]) -> None:
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            count = len(self.entries)
            yield Label(f"{count} unfinished job{'s' if count != 1 else ''} from an earlier run:", classes="title")
            for entry in self.entries[:8]:
                yield Label(f"  #{entry.id} {entry.status}: {excerpt(entry.recipe.prompt, 50)}")
            if count > 8:
                yield Label(f"  … and {count - 8} more")
            with Horizontal(classes="buttons"):
                yield Button("Resume (y)", id="yes", variant="primary")
                yield Button("Discard (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

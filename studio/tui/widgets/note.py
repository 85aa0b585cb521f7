"""Edit the note kept with a history entry."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class NoteDialog(ModalScreen[str | None]):
    """Dismisses with the new note (enter), or None to leave it as it was (escape).

    One line, like a commit subject: it shows in the history row and the filter
    searches it. An empty note clears it.
    """

    DEFAULT_CSS = """
    NoteDialog { align: center middle; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, entry_id: int, note: str) -> None:
        super().__init__()
        self.entry_id = entry_id
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Note for #{self.entry_id} (enter saves, escape cancels)", classes="title")
            yield Input(value=self.note, placeholder="what is this image to you?", id="note-input")

    def on_mount(self) -> None:
        self.query_one("#note-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(" ".join(event.value.split()))

    def action_cancel(self) -> None:
        self.dismiss(None)

"""The prompt pane: positive and negative prompts, both multi-line."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, TextArea


class PromptPane(Vertical):
    """Pane 1. Plain text areas: the artist's words go into the recipe unchanged."""

    BORDER_TITLE = "1 Prompt"

    def compose(self) -> ComposeResult:
        yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        yield Label("negative", classes="field-label")
        yield TextArea(id="negative", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")

    @property
    def prompt(self) -> str:
        return self.query_one("#prompt", TextArea).text.strip()

    @property
    def negative(self) -> str:
        return self.query_one("#negative", TextArea).text.strip()

    def set_texts(self, prompt: str, negative: str) -> None:
        self.query_one("#prompt", TextArea).text = prompt
        self.query_one("#negative", TextArea).text = negative

    def focus_prompt(self) -> None:
        self.query_one("#prompt", TextArea).focus()

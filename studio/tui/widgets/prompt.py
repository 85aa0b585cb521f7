"""The prompt pane: positive and negative prompts, both multi-line, with A1111's token counter."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, TextArea

from studio.builtin import BUILTIN_DIR, DEFAULT_MODEL

DEFAULT_TOKENIZER = BUILTIN_DIR / DEFAULT_MODEL / "tokenizer"
MAX_COUNTED = 20_000  # characters; past that, counting on every key would lag the typing


class PromptPane(Vertical):
    """Pane 1. Plain text areas: the artist's words go into the recipe unchanged.

    The border's subtitle counts tokens per chunk of the encoder's window, as
    A1111 does (`80/150`), so a prompt past the window shows it at once.
    """

    BORDER_TITLE = "1 Prompt"

    tokenizer_dir: Path | None = DEFAULT_TOKENIZER
    """The tokenizer files the count uses (vocab.json + merges.txt, or tokenizer.json); None: no count."""

    def compose(self) -> ComposeResult:
        yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        yield Label("negative", classes="field-label")
        yield TextArea(id="negative", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")

    def on_mount(self) -> None:
        self._count_tokens(self.prompt, self.negative)

    @property
    def prompt(self) -> str:
        return self.query_one("#prompt", TextArea).text.strip()

    @property
    def negative(self) -> str:
        return self.query_one("#negative", TextArea).text.strip()

    def set_texts(self, prompt: str, negative: str) -> None:
        self.query_one("#prompt", TextArea).text = prompt
        self.query_one("#negative", TextArea).text = negative

    def set_tokenizer(self, folder: Path | None) -> None:
        """Count with this model's tokenizer from now on; None when it has none studio can read."""
        self.tokenizer_dir = Path(folder) if folder is not None else None
        self._count_tokens(self.prompt, self.negative)

    def focus_prompt(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    @on(TextArea.Changed)
    def _text_changed(self) -> None:
        self._count_tokens(self.prompt, self.negative)

    def _count_tokens(self, prompt: str, negative: str) -> None:
        """On the event loop, so the count is never stale: the Rust tokenizer takes
        microseconds for a prompt; the first count reads its files once (lazily)."""
        if self.tokenizer_dir is None:
            self.border_subtitle = ""
            return
        if len(prompt) + len(negative) > MAX_COUNTED:
            self.border_subtitle = "tokens: too long to count"
            return
        try:
            counter = _counter(self.tokenizer_dir)
            self.border_subtitle = f"tokens {counter.label(prompt)} · negative {counter.label(negative)}"
        except Exception:  # a missing or unreadable tokenizer: no count rather than a crash
            self.border_subtitle = ""


@lru_cache(maxsize=4)
def _counter(folder: Path):  # noqa: ANN202 - TokenCounter, imported lazily
    from studio.prompts.chunks import TokenCounter

    return TokenCounter(folder)

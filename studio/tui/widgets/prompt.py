"""The prompt pane: positive and negative prompts, both multi-line, with A1111's token counter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, TextArea

from studio.builtin import BUILTIN_DIR, DEFAULT_MODEL

DEFAULT_TOKENIZER = BUILTIN_DIR / DEFAULT_MODEL / "tokenizer"
MAX_COUNTED = 20_000  # characters; past that, counting on every key would lag the typing


def _negative_area(text: str = "") -> TextArea:
    return TextArea(text, id="negative", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")


class PromptPane(Vertical):
    """Pane 1. Plain text areas: the artist's words go into the recipe unchanged.

    The border's subtitle counts tokens per chunk of the encoder's window, as
    A1111 does (`80/150`), so a prompt past the window shows it at once.
    """

    BORDER_TITLE = "1 Prompt"

    tokenizer_dir: Path | None = DEFAULT_TOKENIZER
    """The tokenizer files the count uses (vocab.json + merges.txt, or tokenizer.json); None: no count."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: set[Path] = set()  # tokenizer folders being read on a thread
        self._negative = _negative_area()

    def compose(self) -> ComposeResult:
        yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")

    def on_mount(self) -> None:
        # The negative prompt mounts just after the first frame, which then
        # styles and draws one text area, as a bare Textual app does.
        self.call_after_refresh(self._mount_negative)
        self.call_after_refresh(self._count_tokens, self.prompt, self.negative)  # after the first frame

    def _mount_negative(self) -> None:
        self.mount(Label("negative", classes="field-label"), self._negative)

    @property
    def prompt(self) -> str:
        return self.query_one("#prompt", TextArea).text.strip()

    @property
    def negative(self) -> str:
        return self._negative.text.strip()

    def set_texts(self, prompt: str, negative: str) -> None:
        self.query_one("#prompt", TextArea).text = prompt
        if self._negative.is_mounted:
            self._negative.text = negative
        else:  # not mounted yet: the one it will mount holds the text
            self._negative = _negative_area(negative)

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
        microseconds for a prompt. Reading a tokenizer's files (and importing
        `tokenizers`) takes longer, tens of milliseconds for CLIP's 49,408 tokens,
        so a tokenizer not read yet is read on a thread, and the count follows."""
        if self.tokenizer_dir is None:
            self.border_subtitle = ""
            return
        if len(prompt) + len(negative) > MAX_COUNTED:
            self.border_subtitle = "tokens: too long to count"
            return
        if self.tokenizer_dir not in _COUNTERS:
            self._read_tokenizer(self.tokenizer_dir)
            return
        counter = _COUNTERS[self.tokenizer_dir]
        if counter is None:  # a missing or unreadable tokenizer: no count rather than a crash
            self.border_subtitle = ""
            return
        try:
            self.border_subtitle = f"tokens {counter.label(prompt)} · negative {counter.label(negative)}"
        except Exception:  # a tokenizer that cannot encode this text: no count rather than a crash
            self.border_subtitle = ""

    @work(group="tokenizer")
    async def _read_tokenizer(self, folder: Path) -> None:
        if folder in self._reading:
            return  # on its way: the text typed meanwhile is counted when it comes
        self._reading.add(folder)
        try:
            _COUNTERS[folder] = await asyncio.to_thread(_read_counter, folder)
        finally:
            self._reading.discard(folder)
        self._count_tokens(self.prompt, self.negative)


def _read_counter(folder: Path) -> Any:
    try:
        from studio.prompts.chunks import TokenCounter

        return TokenCounter(folder)
    except Exception:
        return None


_COUNTERS: dict[Path, Any] = {}  # tokenizer folder -> its TokenCounter, or None if unreadable; read once a process

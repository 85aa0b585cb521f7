"""Tokens cut into the text encoder's window, as A1111 cuts long prompts.

CLIP sees 77 tokens: BOS, 75 of the prompt, EOS (studio-tiny: 16 = 14 + 2).
A longer prompt is cut into chunks of that size, each encoded on its own; a
`BREAK` ends a chunk early. When a chunk fills up and its last comma is near
the end, the chunk ends after that comma and the words after it move to the
next chunk, so a phrase is not split across two chunks (A1111's "padding from
the last comma", 20 tokens of 75 by default; scaled here to the window).

`TokenCounter` counts a prompt's tokens per chunk without torch (for the TUI):
it reads the tokenizer's own files with the `tokenizers` library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.bounded import read_json_file
from studio.prompts.attention import Fragment, parse_attention
from studio.prompts.schedule import prompt_schedule

BACKOFF_OF_75 = 20  # A1111's default comma back-off, in tokens of a 75-token chunk


@dataclass
class Chunk:
    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


def comma_backoff(size: int) -> int:
    return max(1, size * BACKOFF_OF_75 // 75)


def chunk_tokens(
    fragments: Sequence[Fragment],
    tokenize: Callable[[str], list[int]],
    size: int,
    comma_id: int | None,
) -> list[Chunk]:
    """The fragments' tokens (without BOS/EOS) in chunks of at most `size`; at least one chunk."""
    backoff = comma_backoff(size)
    chunks: list[Chunk] = []
    current = Chunk()
    last_comma = -1

    for fragment in fragments:
        if fragment.is_break:
            if current.ids:
                chunks.append(current)
                current, last_comma = Chunk(), -1
            continue
        for token in tokenize(fragment.text) if fragment.text else []:
            if len(current.ids) == size:
                carried = Chunk()
                if last_comma >= 0 and size - (last_comma + 1) <= backoff:
                    cut = last_comma + 1
                    carried = Chunk(current.ids[cut:], current.weights[cut:])
                    current = Chunk(current.ids[:cut], current.weights[:cut])
                chunks.append(current)
                current, last_comma = carried, -1
            current.ids.append(token)
            current.weights.append(fragment.weight)
            if token == comma_id:
                last_comma = len(current.ids) - 1
    if current.ids or not chunks:
        chunks.append(current)
    return chunks


class TokenCounter:
    """Counts tokens with a CLIP tokenizer's files: tokenizer.json, or vocab.json + merges.txt."""

    def __init__(self, folder: Path, window: int = 77) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        else:
            from tokenizers import models, normalizers, pre_tokenizers

            vocab = read_json_file(folder / "vocab.json")
            lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
            merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#")]
            bpe = models.BPE(vocab, merges, end_of_word_suffix="</w>", unk_token="<|endoftext|>")
            self._tokenizer = Tokenizer(bpe)
            self._tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
            self._tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        self._tokenizer.no_padding()  # a saved tokenizer.json may pad and truncate to the window
        self._tokenizer.no_truncation()
        config = folder / "tokenizer_config.json"
        if config.is_file():
            window = int(read_json_file(config).get("model_max_length", window))
        self.size = max(1, min(window, 10_000) - 2)
        self.comma_id = self._tokenizer.token_to_id(",</w>")

    def tokenize(self, text: str) -> list[int]:
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return list(ids)

    def chunk_counts(self, prompt: str, steps: int = 20) -> list[int]:
        """Tokens in each chunk, for the longest text the prompt has at any step."""
        from studio.formats.lora_tags import extract_loras_lenient

        text, _ = extract_loras_lenient(prompt, [])
        best: list[int] = [0]
        for step_text in dict.fromkeys(prompt_schedule(text, steps).texts):
            chunks = chunk_tokens(parse_attention(step_text).fragments, self.tokenize, self.size, self.comma_id)
            counts = [len(chunk.ids) for chunk in chunks]
            if sum(counts) > sum(best) or len(counts) > len(best):
                best = counts
        return best

    def label(self, prompt: str) -> str:
        """A1111's counter: tokens used / the capacity of the chunks they fill, e.g. `80/150`."""
        counts = self.chunk_counts(prompt)
        text = f"{sum(counts)}/{self.size * len(counts)}"
        return text if len(counts) == 1 else f"{text} ({' + '.join(map(str, counts))})"

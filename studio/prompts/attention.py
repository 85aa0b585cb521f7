"""Emphasis: `(x)` x1.1, `((x))` x1.21, `(x:1.3)`, `[x]` /1.1, `\\(` literal, `BREAK`.

`parse_attention(text)` gives the text as fragments, each with its weight, in
order; a `BREAK` is a fragment of its own (`Fragment.is_break`). Nothing here
raises: a prompt that is not well formed is read the way A1111 reads it (an
unclosed bracket weights the rest of the prompt, a stray closer is text) and
the reading says so in its `warnings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROUND = 1.1  # what one pair of ( ) multiplies by
SQUARE = 1 / 1.1  # and one pair of [ ]
SANE_WEIGHTS = (0.0, 2.0)  # outside this, CLIP embeddings blow up or flip; said, then honoured

# An escape, an opener, an explicit weight closing a round bracket, a closer, a run of text, a colon.
_TOKEN = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


@dataclass(frozen=True)
class Fragment:
    text: str
    weight: float = 1.0
    is_break: bool = False


@dataclass
class Attention:
    fragments: list[Fragment]
    warnings: list[str] = field(default_factory=list)

    @property
    def is_plain(self) -> bool:
        """No weights other than 1 and no BREAK: the text CLIP would see anyway."""
        return all(f.weight == 1.0 and not f.is_break for f in self.fragments)


def parse_attention(text: str) -> Attention:
    pieces: list[list] = []  # [text, weight, is_break], mutable while brackets close
    rounds: list[int] = []  # where each open ( starts in `pieces`
    squares: list[int] = []
    warnings: list[str] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:
                piece[1] *= factor

    for match in _TOKEN.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0, False])
        elif token == "(":
            rounds.append(len(pieces))
        elif token == "[":
            squares.append(len(pieces))
        elif weight is not None and rounds:
            try:
                value = float(weight)
            except ValueError:
                warnings.append(f"weight {weight!r} is not a number; read as text")
                pieces.append([token, 1.0, False])
                continue
            scale(rounds.pop(), value)
        elif token == ")" and rounds:
            scale(rounds.pop(), ROUND)
        elif token == "]" and squares:
            scale(squares.pop(), SQUARE)
        else:
            if token in (")", "]"):
                warnings.append(f"unbalanced {token!r} at character {match.start() + 1}; read as text")
            _append_text(pieces, token)
    for start in rounds:
        scale(start, ROUND)
    for start in squares:
        scale(start, SQUARE)
    if rounds or squares:
        warnings.append("unclosed bracket: it weights the rest of the prompt, as in A1111")

    fragments = _merge(pieces)
    low, high = SANE_WEIGHTS
    for fragment in fragments:
        if not fragment.is_break and not low <= fragment.weight <= high and fragment.text.strip():
            warnings.append(f"weight {fragment.weight:.3g} on {fragment.text.strip()[:30]!r} is outside {low:g}..{high:g}")
    return Attention(fragments, warnings)


def _append_text(pieces: list[list], text: str) -> None:
    parts = _BREAK.split(text)
    for index, part in enumerate(parts):
        if index:
            pieces.append(["BREAK", 1.0, True])
        if part:
            pieces.append([part, 1.0, False])


def _merge(pieces: list[list]) -> list[Fragment]:
    """Neighbours of equal weight join; an empty prompt is one empty fragment."""
    merged: list[list] = []
    for piece in pieces:
        if merged and not piece[2] and not merged[-1][2] and merged[-1][1] == piece[1]:
            merged[-1][0] += piece[0]
        else:
            merged.append(list(piece))
    if not merged:
        merged = [["", 1.0, False]]
    return [Fragment(text, weight, is_break) for text, weight, is_break in merged]

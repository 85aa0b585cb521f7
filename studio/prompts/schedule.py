"""Prompt editing and alternation: which text the model sees at each step.

- `[from:to:when]` uses `from` for the first `when` steps, then `to`; `[to:when]`
  adds `to` after them and `[from::when]` removes `from`. A `when` below 1 is a
  fraction of the steps (`0.25` of 20 is 5), otherwise a step number.
- `[a|b|c]` alternates: a on step 1, b on step 2, c on step 3, a again…

Emphasis brackets stay in the texts (see `attention`), so `(x:1.2)` inside an
edit is still weighted. A bracket that closes nothing, or opens nothing, is
text, as in A1111. An `[a:b]` that is neither an edit nor an emphasis is a
syntax error: A1111 then reads the whole prompt without editing, and so do we,
saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

MAX_DEPTH = 50  # deeper nesting is read as plain text, not recursed into

_TEXT = re.compile(r"[^\\\[(]+")  # a run with no escape and no opener
_NUMBER = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*")


@dataclass(frozen=True)
class Edit:
    before: list[Node]
    after: list[Node]
    when: float

    def boundary(self, steps: int) -> int:
        """Steps that see `before`; the rest see `after`."""
        return int(self.when * steps) if self.when < 1 else int(self.when)


@dataclass(frozen=True)
class Alternation:
    options: list[list[Node]]


Node = Union[str, Edit, Alternation]


class _SyntaxError(Exception):
    pass


@dataclass
class Schedule:
    """The text of each step (one entry when the prompt never changes)."""

    texts: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)

    @property
    def is_static(self) -> bool:
        return len(set(self.texts)) <= 1

    def text_at(self, step: int) -> str:
        """The text for step `step`, counted from 0."""
        return self.texts[min(step, len(self.texts) - 1)]


def prompt_schedule(text: str, steps: int) -> Schedule:
    steps = max(1, steps)
    try:
        nodes = _Parser(text).parse()
    except _SyntaxError as exc:
        return Schedule((text,), [f"{exc}: the prompt is read without editing or alternation, as A1111 does"])
    except RecursionError:
        return Schedule((text,), ["brackets nested too deep: read without editing or alternation"])
    if all(isinstance(node, str) for node in nodes):
        return Schedule((text,))
    return Schedule(tuple(_render(nodes, step, steps) for step in range(steps)))


def _render(nodes: list[Node], step: int, steps: int) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Edit):
            out.append(_render(node.before if step < node.boundary(steps) else node.after, step, steps))
        else:
            out.append(_render(node.options[step % len(node.options)], step, steps))
    return "".join(out)


class _Parser:
    """Brackets are matched once, up front, so every construct is parsed at most once (no backtracking)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.match = _match_brackets(text)

    def parse(self) -> list[Node]:
        return self._sequence(0, len(self.text), 0)

    def _sequence(self, start: int, end: int, depth: int) -> list[Node]:
        if depth > MAX_DEPTH:
            raise _SyntaxError("brackets nested too deep")
        nodes: list[Node] = []
        i = start
        while i < end:
            c = self.text[i]
            close = self.match.get(i)
            if c == "\\":
                nodes.append(self.text[i : i + 2])
                i += 2
            elif c == "[" and close is not None:
                nodes.extend(self._square(i + 1, close, depth + 1))
                i = close + 1
            elif c == "(" and close is not None:
                nodes.extend(["(", *self._sequence(i + 1, close, depth + 1), ")"])
                i = close + 1
            else:
                run = _TEXT.match(self.text, i + 1, end)
                stop = run.end() if run else i + 1
                nodes.append(self.text[i:stop])
                i = stop
        return _join_text(nodes)

    def _square(self, start: int, end: int, depth: int) -> list[Node]:
        """`[...]` between start and end: an edit, an alternation, or emphasis (kept as text)."""
        colons, bars = self._separators(start, end)
        if bars and not colons:
            cuts = [start - 1, *bars, end]
            return [Alternation([self._sequence(a + 1, b, depth) for a, b in zip(cuts, cuts[1:])])]
        if not colons:
            return ["[", *self._sequence(start, end, depth), "]"]
        number = _NUMBER.fullmatch(self.text, colons[-1] + 1, end)
        if bars or len(colons) > 2 or number is None:
            raise _SyntaxError(f"[{self.text[start:end][:40]}] is neither an edit nor an alternation")
        when = float(number.group(1))
        if len(colons) == 1:
            return [Edit([], self._sequence(start, colons[0], depth), when)]
        before = self._sequence(start, colons[0], depth)
        return [Edit(before, self._sequence(colons[0] + 1, colons[1], depth), when)]

    def _separators(self, start: int, end: int) -> tuple[list[int], list[int]]:
        """Positions of `:` and `|` directly inside this bracket (not in nested ones, not escaped)."""
        colons: list[int] = []
        bars: list[int] = []
        i = start
        while i < end:
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c in "([" and i in self.match:
                i = self.match[i] + 1
                continue
            if c == ":":
                colons.append(i)
            elif c == "|":
                bars.append(i)
            i += 1
        return colons, bars


def _join_text(nodes: list[Node]) -> list[Node]:
    """Neighbouring strings become one."""
    joined: list[Node] = []
    text: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            text.append(node)
            continue
        if text:
            joined.append("".join(text))
            text = []
        joined.append(node)
    if text:
        joined.append("".join(text))
    return joined


def _match_brackets(text: str) -> dict[int, int]:
    """opener position -> closer position for every ( ) and [ ] pair; strays match nothing."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in "([":
            stack.append(i)
        elif c in ")]" and stack and text[stack[-1]] == ("(" if c == ")" else "["):
            pairs[stack.pop()] = i
        i += 1
    return pairs

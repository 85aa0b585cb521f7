"""Recipe tables as text: a big session's recipes are mostly one table but for three lines.

The writer (`studio.store.tomlio.dump_table`) lays a recipe out in Recipe's field
order, one `key = value` line each, so two entries made from one recipe differ
only in their `prompt`, `negative_prompt` and `seed` lines. `RecipeTexts` parses
the rest of a table once per distinct text (a template) and cuts every table
that has it down to those three lines and a reference to it, so a 100,000-entry
session is parsed as a few templates and 100,000 short tables. The result is
the same dicts: a `Templated` is a dict with every key of the table, which also
says which template it shares the rest with (so the fold can keep one copy).
Anything that does not fit (LoRA tables after it, lines in another order, a
table the strict reader refuses) is left in place and parsed as before.
"""

from __future__ import annotations

from typing import Any

from studio.store.tomlio import _as_json  # the strict subset reader of single records

HEADER = "\n[event.recipe]\n"
_OPENING = HEADER + "prompt = "
MARK = "@t"  # the key a cut-down table names its template by: not a bare key, so no file has it
VARYING = ("prompt", "negative_prompt", "seed")
_ENDS = ("\n[", "\n#")  # what follows a table's last line: a table, or the record's end
_SUBS = ("\n[event.recipe.", "\n[[event.recipe.")
_MAX = 4096  # distinct templates remembered; past that, tables are parsed whole


class Templated(dict):  # type: ignore[type-arg]
    """A recipe table read through a template: the whole table, and the template (the table's
    other keys, with the three varying ones set to placeholders) it shares them with."""

    __slots__ = ("template",)


class RecipeTexts:
    """The templates met so far in one read of a file."""

    MARK = MARK

    def __init__(self) -> None:
        # the lines between a table's negative prompt and its seed -> (the lines after the seed, template)
        self._by_before: dict[str, list[tuple[str, int]]] = {}
        self.templates: list[dict[str, Any]] = []

    def reduce(self, text: str) -> str | None:
        """`text` (records joined as the writer joins them) with every recipe table that fits a
        template cut to its three varying lines and an `@t = index` line; None if `text` names `@t`."""
        if "\n" + MARK + " = " in text or text.startswith(MARK + " = "):
            return None
        parts = text.split(_OPENING)  # the tables a recipe opens with its prompt (a `done` one never does)
        if len(parts) == 1:
            return text
        cut = self._cut
        return _OPENING.join([parts[0], *map(cut, parts[1:])])

    def _cut(self, part: str) -> str:
        """One table's text after its `prompt = ` (and whatever follows it in `part`), cut down when it fits."""
        a = part.find("\n")
        if a < 0 or not part.startswith("negative_prompt = ", a + 1):
            return part
        b = part.find("\n", a + 1)
        s = part.find("\nseed = ", b) if b >= 0 else -1
        c = part.find("\n", s + 1) if s >= 0 else -1
        if c < 0:
            return part
        before = part[b + 1 : s + 1]
        # A template met before: its lines after the seed, then the table's end, as then.
        for after, index in self._by_before.get(before, ()):
            end = c + len(after)
            if part.startswith(after, c + 1) and part.startswith(_ENDS, end) and not part.startswith(_SUBS, end):
                return f"{part[: b + 1]}{part[s + 1 : c + 1]}{MARK} = {index}{part[end:]}"
        table, comment = part.find("\n[", b), part.find("\n#", b)
        end = table if comment < 0 or 0 <= table < comment else comment
        if end < 0 or c > end:
            return part
        if part.startswith(_SUBS, end):
            return part  # LoRAs or another sub-table: the table is more than its lines
        after = part[c + 1 : end + 1]
        known = self._by_before.setdefault(before, [])
        if len(known) >= 8 or len(self.templates) >= _MAX:
            return part
        index = self._parse(before, after)
        if index < 0:
            return part
        known.append((after, index))
        return f"{part[: b + 1]}{part[s + 1 : c + 1]}{MARK} = {index}{part[end:]}"

    def template(self, before: str, after: str) -> dict[str, Any] | None:
        """The template of a table whose other lines are `before` and `after` its seed line (each
        line with its newline), as `_cut` finds or makes it; None where `_cut` would leave the table."""
        known = self._by_before.setdefault(before, [])
        for text, index in known:
            if text == after:
                return self.templates[index]
        if len(known) >= 8:
            return None
        index = self._parse(before, after)
        if index < 0:
            return None
        known.append((after, index))
        return self.templates[index]

    def _parse(self, before: str, after: str) -> int:
        """The template of a table whose other lines are `before` and `after` the seed; -1 if unfit."""
        if len(self.templates) >= _MAX:
            return -1
        first, second = _as_json(before), _as_json(after)
        if first is None or second is None:
            return -1
        import json  # (here: the TUI's first frame imports this module, and no JSON)

        try:
            head, tail = json.loads(f"[{first[0]},{second[0]}]")
        except ValueError:
            return -1
        if len(head) != first[1] or len(tail) != second[1] or head.keys() & tail.keys():
            return -1  # a duplicate key, or a value that smuggled in another
        if any(name in head or name in tail for name in VARYING):
            return -1
        self.templates.append({"prompt": "", "negative_prompt": "", **head, "seed": 0, **tail})
        return len(self.templates) - 1

    def expand(self, table: dict[str, Any]) -> dict[str, Any] | None:
        """A cut-down table (its three varying keys and `@t`) as the whole table; None if it is not one."""
        index = table.get(MARK)
        if type(index) is not int or not 0 <= index < len(self.templates) or len(table) != 4:
            return None
        if not all(name in table for name in VARYING):
            return None
        template = self.templates[index]
        whole = Templated(template)
        whole["prompt"], whole["negative_prompt"], whole["seed"] = table["prompt"], table["negative_prompt"], table["seed"]
        whole.template = template
        return whole

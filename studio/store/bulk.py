"""Studio's own records read in bulk: an entry's queued, started and done records, folded at once.

Most of a big session is that triple for one id after another, laid out by the
writer (`studio.store.tomlio.dump_table`) in one order, its recipe table one of
a few templates but for the prompt, negative prompt and seed. `BulkFold` reads
such a triple where it lies in the file's text with `find` and `startswith`
(C loops over the bytes), takes the recipe table through its template
(`studio.store.recipe_text`) and the done record's last lines through a table of
the texts met before, and folds it straight into the entry's `State`: no dict
per record, no `json.loads` of the text. It takes a triple only where the
general path (parse, `check_record`, `fold`, `RecipeMemo.settle`) would read
exactly that entry and report nothing, and says None for anything else (an
escape, a hand edit, another shape, a value out of range, an id already
folded), which the journal then reads as ever. tests/test_store_fastread.py
holds the two paths to the same entries on odd and mutated records.
"""

from __future__ import annotations

import re
from typing import Any

from studio.recipe import MAX_PROMPT_CHARS, MAX_SEED
from studio.store.entries import RecipeMemo, State, Values
from studio.store.recipe_text import VARYING, RecipeTexts
from studio.store.tomlio import _as_json

SEP = "\n[[event]]\n"
_QUEUED = 'kind = "queued"\ntime = "'
_RECIPE = '[event.recipe]\nprompt = "'
_NEGATIVE = 'negative_prompt = "'
_SEED = "seed = "
_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,17})?\Z")  # as the writer writes a duration
# What a TOML basic string may hold unescaped, besides '"' and '\\' (refused before this is asked)
_TOML_TEXT = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*\Z")
# ... the same as UTF-8 bytes (none is part of a longer character's), with '"' and '\\'
_REFUSED = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F]) + b'"\\'
_TAILS = 4096  # distinct done-record tails remembered
_MOST = MAX_PROMPT_CHARS + 2  # how far a prompt's closing quote may lie (the prompt then within its bound)
# What `_Shape.pattern` finds: a basic string's text up to its closing quote, a time of 24 characters
# and its quote (`_checks` then tests their characters, joined), a seed and a duration as TOML and
# the writer write them.
_PLAIN_TEXT = r'([^"]{0,%d}+)"' % MAX_PROMPT_CHARS
_TIME = r'(.{24})"'
_SEED_VALUE = r"(0|[1-9][0-9]{0,18}+)\n"
_DURATION = r"duration = ((?:0|[1-9][0-9]{0,15}+)(?:\.[0-9]{1,17}+)?+)\n"
_new_state = State.__new__


class _Shape:
    """What the triples of a run share, and the offsets between their values."""

    def __init__(self, lines: str, before: str, after: str, owner: str, tail: str, image: bool, images_line: bool,
                 duration: bool, tags: dict[str, Any], device: str, model_hash: str, values: dict[str, Any]) -> None:
        self.lines, self.before, self.after, self.owner, self.tail = lines, before, after, owner, tail
        self.image, self.images_line, self.duration = image, images_line, duration
        self.tags, self.device, self.model_hash, self.values = tags, device, model_hash, values
        # the text between the values (the id, times, prompts, seed, images and duration lines)
        self.gaps = (
            '\nkind = "queued"\ntime = "', f'"\n{lines}[event.recipe]\nprompt = "', '"\nnegative_prompt = "',
            f'"\n{before}seed = ', f"\n{after}# end ", "\n\n[[event]]\nid = ", '\nkind = "started"\ntime = "',
            f'"\n{owner}# end ', "\n\n[[event]]\nid = ", '\nkind = "done"\ntime = "', '"\n', f"{tail}# end ",
        )
        # an entry's own fields, in the order `fold` sets them, those that differ to be set
        self.values_of = Values(id=0, time="", status="done", **tags, finished="", images=(), duration=None,
                                device=device, model_hash=model_hash)
        self._patterns: dict[int, re.Pattern[str]] = {}

    def images_line_of(self, width: int) -> tuple[str, str]:
        """The done record's images line for ids of `width` digits, around the id (if it names one)."""
        if self.image:
            return 'images = ["' + "0" * (4 - width), '.png"]\n'
        return ("images = []\n" if self.images_line else ""), ""

    def pattern(self, width: int) -> re.Pattern[str]:
        """What finds a triple of this shape with ids of `width` digits: its values as groups (id,
        times, prompts, seed, duration), each checked character by character, and the text
        between them skipped by its length (the caller compares that text, made again)."""
        found = self._patterns.get(width)
        if found is None:
            g = [len(gap) for gap in self.gaps]
            images = sum(map(len, self.images_line_of(width))) + (width if self.image else 0)
            found = self._patterns[width] = re.compile(
                f"id = ([1-9][0-9]{{{width - 1}}})" + _skip(g[0]) + _TIME + _skip(g[1] - 1) + _PLAIN_TEXT + _skip(g[2] - 1)
                + _PLAIN_TEXT + _skip(g[3] - 1 - len(_SEED)) + _SEED + _SEED_VALUE + _skip(g[4] - 1 + 2 * width + g[5] + g[6])
                + _TIME + _skip(g[7] - 1 + 2 * width + g[8] + g[9]) + _TIME + _skip(g[10] - 1 + images)
                + (_DURATION if self.duration else "()") + _skip(g[11] + width + 1),
                re.DOTALL,
            )
        return found


def _skip(count: int) -> str:
    return f".{{{count}}}" if count else ""


def _time_line(text: str, pos: int, end: int, opening: str, closing: str) -> tuple[str, int] | None:
    """A started or done record's time: the record from `text[pos]` to `end` begins with `opening`
    and ends with `closing`, and the line `opening` begins holds a quoted value; (the value, where
    its line ends), else None."""
    if not text.startswith(opening, pos) or not text.startswith(closing, end - len(closing)):
        return None
    b = pos + len(opening)
    a = text.find("\n", b, end)
    if a <= b or text[a - 1] != '"':
        return None
    return text[b : a - 1], a


def _plain(text: str) -> bool:
    """Whether `text`, between the quotes of a basic string, reads as itself (no escapes, nothing
    TOML refuses), so that the string's value is `text`."""
    return '"' not in text and "\\" not in text and (text.isprintable() or _TOML_TEXT.match(text) is not None)


def _whole(digits: str, most: int) -> bool:
    """A whole number as TOML and JSON both read it: ASCII digits, no leading zero, at most `most`."""
    return 0 < len(digits) <= most and digits.isdigit() and digits.isascii() and (digits[0] != "0" or digits == "0")


class BulkFold:
    """Folds the triples it can read into `states` (a session's fold), settling each as `memo` would."""

    def __init__(self, states: dict[int, State], memo: RecipeMemo) -> None:
        self.states, self.memo = states, memo
        self.texts = RecipeTexts()
        self.folded = 0  # entries folded here (tests and benches look)
        self._before, self._after = "\0", "\0"  # the last recipe table's lines around its seed
        self._template: dict[str, Any] | None = None  # ... and its template
        self._tails: dict[str, tuple[str, str | None, dict[str, Any]] | None] = {}
        self._derived: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        self._shape: _Shape | None = None  # the last triple's, for `_run`
        self._ids: list[int] = []  # what `take` read last, for `commit`: the entries' ids,
        self._batch: list[State] = []  # their states,
        self._ends: list[tuple[Any, ...]] = []  # and for each, a tuple that ends with where its done record ends and the next's line
        self._prompt = self._negative = ("\0", "\0")  # the last prompt read, and the memo's copy of it
        self._durations: dict[str, float | int] = {}  # a duration line's text -> its value

    def take(self, text: str, pos: int, line: int) -> int:
        """Read the triples from `text[pos]` (just after a record separator; the first's `[[event]]`
        on `line`) for `commit`: the first line by line unless it has the last one's shape, then
        those of its shape that follow it (`_run`). Where the last ends; -1 if none is one."""
        self._ids, self._batch, self._ends = [], [], []
        end = self._run(text, pos, line) if self._shape is not None else -1
        if end < 0:
            end = self._one(text, pos, line)
            if end < 0:
                return -1
            if self._shape is not None and end < len(text):
                end = max(end, self._run(text, end + len(SEP), self._ends[-1][1]))
        return end

    def commit(self) -> tuple[int, int, int]:
        """Fold the triples `take` read last (the journal has had what came before them folded),
        in order, up to one whose id the fold holds already (the general path reports that):
        (the records folded, 3 each; where the last of them ends; the next record's line), or (0, -1, -1)."""
        ids, batch, states = self._ids, self._batch, self.states
        if states.keys().isdisjoint(ids) and len(set(ids)) == len(ids):
            states.update(zip(ids, batch))
            count = len(ids)
        else:
            count = 0
            for entry_id, state in zip(ids, batch):
                if entry_id in states:
                    break
                states[entry_id] = state
                count += 1
        self.folded += count
        end, line = self._ends[count - 1][-2:] if count else (-1, -1)
        self._ids, self._batch, self._ends = [], [], []
        return 3 * count, end, line

    def _one(self, text: str, pos: int, line: int) -> int:
        """`take` for one triple, read line by line; it becomes the shape `_run` looks for."""
        start = pos
        end = text.find(SEP, pos)
        if end < 0 or not text.startswith("id = ", pos):
            return -1
        # --- queued: id, time, owner, template, then the recipe table
        a = text.find("\n", pos, end)
        ident = text[pos + 5 : a]
        if a < 0 or not _whole(ident, 18) or ident == "0" or not text.startswith(_QUEUED, a + 1):
            return -1
        b = a + 1 + len(_QUEUED)
        a = text.find("\n", b, end)
        if a <= b or text[a - 1] != '"':
            return -1
        queued = text[b : a - 1]
        tags: dict[str, Any] = {}
        b = a + 1
        for key in ("owner", "template"):
            opening = f'{key} = "'
            if text.startswith(opening, b):
                a = text.find("\n", b, end)
                if a <= b + len(opening) or text[a - 1] != '"':
                    return -1
                tags[key] = text[b + len(opening) : a - 1]
                b = a + 1
        if not text.startswith(_RECIPE, b):
            return -1
        b += len(_RECIPE)
        a = text.find("\n", b, end)
        if a <= b or text[a - 1] != '"' or not text.startswith(_NEGATIVE, a + 1):
            return -1
        prompt = text[b : a - 1]
        b = a + 1 + len(_NEGATIVE)
        a = text.find("\n", b, end)
        if a <= b or text[a - 1] != '"':
            return -1
        negative = text[b : a - 1]
        b = a + 1
        # the table's lines before and after its seed: most often those of the table before
        before = self._before
        same = text.startswith(before, b) and text.startswith(_SEED, b + len(before))
        if not same:
            a = text.find("\n" + _SEED, b - 1, end)
            if a < 0:
                return -1
            before = text[b : a + 1]
        b += len(before) + len(_SEED)
        a = text.find("\n", b, end)
        seed = text[b:a]
        if a < 0 or not _whole(seed, 19):
            return -1
        b = a + 1
        closing = f"# end {ident}\n"
        after = self._after
        if not (same and end - len(closing) - b == len(after) and text.startswith(after, b)):
            same = False
            after = text[b : end - len(closing)]
        if not text.startswith(closing, end - len(closing)) or (after and after[-1] != "\n"):
            return -1
        if same:
            template = self._template
        else:
            template = self.texts.template(before, after)
            self._before, self._after, self._template = before, after, template
        if template is None:
            return -1
        # --- started: its time, perhaps an owner
        pos = end + len(SEP)
        end = text.find(SEP, pos)
        timed = _time_line(text, pos, end, f'id = {ident}\nkind = "started"\ntime = "', closing) if end >= 0 else None
        if timed is None:
            return -1
        started, a = timed
        owner = None
        b, last = a + 1, end - len(closing) - 1  # the owner line's newline, if it has one
        if b != last + 1:
            if last - b < 10 or not text.startswith('owner = "', b) or text[last - 1 : last + 1] != '"\n':
                return -1
            owner = text[b + 9 : last - 1]
            if "\n" in owner:
                return -1
        # --- done: time, images, duration, then lines a run repeats (device, hash, recipe changes)
        pos = end + len(SEP)
        end = text.find(SEP, pos)
        if end < 0:
            end = len(text)
        timed = _time_line(text, pos, end, f'id = {ident}\nkind = "done"\ntime = "', closing)
        if timed is None:
            return -1
        done, a = timed
        b = a + 1
        images: tuple[str, ...] = ()
        has_images = text.startswith("images = [", b)
        if has_images:
            a = text.find("\n", b, end)
            if a < 0 or text[a - 1] != "]":
                return -1
            names = text[b + 10 : a - 1]
            if names:
                if len(names) < 2 or names[0] != '"' or names[-1] != '"':
                    return -1
                names = names[1:-1]
                images = tuple(names.split('", "'))
            b = a + 1
        duration: float | int | None = None
        if text.startswith("duration = ", b):
            a = text.find("\n", b, end)
            number = text[b + 11 : a]
            if a < 0 or _NUMBER.match(number) is None:
                return -1
            duration = float(number) if "." in number else int(number)
            b = a + 1
        if b > end - len(closing):
            return -1
        tail = text[b : end - len(closing)]
        found = self._tails.get(tail, False)
        if found is False:
            found = self._tail(tail)
        if found is None:
            return -1
        device, model_hash, changes = found
        # --- every value as the general path reads and checks it
        if not _plain(queued + started + done + prompt + negative + "".join(images) + "".join(tags.values()) + (owner or "")):
            return -1
        entry_id = int(ident)
        if changes:
            key = (id(template), tail)
            derived = self._derived.get(key)
            if derived is None or derived[0] is not template:
                if len(self._derived) >= _TAILS:
                    self._derived.clear()
                derived = self._derived[key] = (template, {**template, **changes})  # holds `template`: its id stays
            template = derived[1]
        kept = self.memo.kept(template, prompt, negative, int(seed))
        if kept is None:
            return -1
        # --- the fold of the three records, as `fold` makes it
        merged = dict(tags)
        if owner is not None:
            merged["owner"] = owner  # (where the queued record had none, after its other tags, as `fold` puts it)
        if model_hash is None:
            model_hash = Values()["model_hash"]  # the entry's own so far: Entry's default
        if len(queued) == len(started) == len(done) == 24 and images in ((), (ident.zfill(4) + ".png",)):
            lines = "".join(f'{key} = "{value}"\n' for key, value in tags.items())
            self._shape = _Shape(
                lines, before, after, f'owner = "{owner}"\n' if owner is not None else "", tail,
                bool(images), has_images, duration is not None, merged, device, model_hash, kept[0],
            )
        self._fold(entry_id, queued, line, merged, done, images, duration, device, model_hash, kept)
        self._ends.append((end, line + text.count("\n", start, end) + 2))
        return end

    def _fold(self, entry_id: int, queued: str, line: int, tags: dict[str, Any], done: str, images: tuple[str, ...],
              duration: float | int | None, device: str, model_hash: str, kept: tuple[Any, ...]) -> None:
        state = _new_state(State)
        state.line, state.recipe_data, state.pending, state._recipe, state.entry, state.epoch = line, None, None, None, None, 0
        state.values = Values(id=entry_id, time=queued, status="done", **tags, finished=done, images=images,
                              duration=duration, device=device, model_hash=model_hash)
        state.kept = kept
        self._ids.append(entry_id)
        self._batch.append(state)

    def _run(self, text: str, pos: int, line: int) -> int:
        """Read the triples from `text[pos]` that have the last one's shape (its recipe template,
        tags, owner and done record's last lines; times of 24 characters) into the batch: each
        one's values found by the shape's pattern, which also checks their characters, and the
        run's text made again from them and compared at once. Where the run ends (-1: none)."""
        shape = self._shape
        assert shape is not None
        (g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11) = shape.gaps
        image, size, start = shape.image, len(text), pos
        found: list[tuple[Any, ...]] = []
        wholes: list[str] = []
        add, keep = found.append, wholes.append
        width, match, step, sep = -1, None, -1, len(SEP)
        timed, timed_end = ("duration = ", "\n") if shape.duration else ("", "")
        opening, closing, tail = "", "", timed_end + g11  # the text around the images line's id, for this width
        while pos < size:
            m = match(text, pos) if match is not None else None
            if m is None:  # perhaps the ids have grown a digit
                a = text.find("\n", pos + 5, pos + 25) - pos - 5
                if a <= 0 or a == width:
                    break
                width, match = a, shape.pattern(a).match
                opening, closing = shape.images_line_of(a)
                opening, closing = g10 + opening, closing + timed
                m = match(text, pos)
                if m is None:
                    break
            ident, queued, prompt, negative, seed, started, done, number = m.groups()
            whole = (
                f"id = {ident}{g0}{queued}{g1}{prompt}{g2}{negative}{g3}{seed}{g4}{ident}{g5}{ident}{g6}{started}{g7}"
                f"{ident}{g8}{ident}{g9}{done}{opening}{ident if image else ''}{closing}{number}{tail}{ident}\n"
            )
            if step < 0:
                step = whole.count("\n") + 2  # the same for every triple of the run (none of its values holds one)
            end = m.end()
            add((ident, seed, queued, started, done, prompt, negative, number, line, end, line + step))
            keep(whole)
            line += step
            pos = end + sep
        if not found:
            return -1
        end = found[-1][9]
        if not (text.startswith(SEP.join(wholes), start) and (end == size or text.startswith(SEP, end))):
            kept, pos = 0, start  # some text between the values differs: the run is what comes before it
            for whole, values in zip(wholes, found):
                end = values[9]
                if not (text.startswith(whole, pos) and (end == size or text.startswith(SEP, end))):
                    break
                kept, pos = kept + 1, end + len(SEP)
            del found[kept:]
        if found and not self._checks(found):
            kept = 0
            while kept < len(found) and self._checks(found[kept : kept + 1]):
                kept += 1
            del found[kept:]
        if not found:
            return -1
        self._fold_run(found, shape)
        return found[-1][9]

    def _checks(self, found: list[tuple[Any, ...]]) -> bool:
        """Whether every triple of `found` (as `_run` found them) reads as the general path reads
        it, past what the shape's pattern checks: every string plain (no escape, nothing TOML
        refuses: each a test of single characters, made on them joined), seeds within a recipe's bound."""
        text = "".join([values[2] + values[3] + values[4] + values[5] + values[6] for values in found]).encode()
        if len(text.translate(None, _REFUSED)) != len(text):
            return False
        seeds = [values[1] for values in found]
        return max(map(len, seeds)) < 19 or max(map(int, seeds)) <= MAX_SEED - 1024

    def _fold_run(self, found: list[tuple[Any, ...]], shape: _Shape) -> None:
        """The run's entries' states (checked by `_checks`), for `commit`."""
        ids, batch, ends = self._ids, self._batch, self._ends
        durations, text_of = self._durations, self.memo._text
        template, proto = shape.values, shape.values_of
        last_prompt, prompt_kept = self._prompt
        last_negative, negative_kept = self._negative
        new, image = _new_state, shape.image
        for ident, seed, queued, _, done, prompt, negative, number, line, _, _ in found:
            if prompt != last_prompt:
                last_prompt, prompt_kept = prompt, text_of(prompt)
            if negative != last_negative:
                last_negative, negative_kept = negative, text_of(negative)
            state = new(State)
            state.line, state.recipe_data, state.pending, state._recipe, state.entry, state.epoch = line, None, None, None, None, 0
            state.values = values = Values(proto)
            duration = durations.get(number) if number else None
            if duration is None and number:
                if len(durations) >= _TAILS:
                    durations.clear()
                duration = durations[number] = float(number) if "." in number else int(number)
            entry_id = int(ident)
            values["id"], values["time"], values["finished"], values["duration"] = entry_id, queued, done, duration
            if image:
                values["images"] = (ident.zfill(4) + ".png",)
            state.kept = (template, prompt_kept, negative_kept, int(seed))
            ids.append(entry_id)
            batch.append(state)
        ends += found  # (each ends with where the triple ends and the next record's line)
        self._prompt, self._negative = (last_prompt, prompt_kept), (last_negative, negative_kept)

    def _tail(self, tail: str) -> tuple[str, str | None, dict[str, Any]] | None:
        """A done record's lines after its duration (device, model hash, its recipe changes) as
        (device, model hash or None, changes); None unless the general path reads them the same."""
        if len(self._tails) >= _TAILS:
            self._tails.clear()
        self._tails[tail] = None
        lines = tail.split("\n")
        found: dict[str, str] = {}
        at = 0
        for key in ("device", "model_hash"):
            opening = f'{key} = "'
            if at < len(lines) and lines[at].startswith(opening) and lines[at].endswith('"'):
                value = lines[at][len(opening) : -1]
                if len(lines[at]) < len(opening) + 1 or not _plain(value):
                    return None
                found[key] = value
                at += 1
        changes: dict[str, Any] = {}
        if at < len(lines) - 1:
            if lines[at] != "[event.recipe]":
                return None
            prepared = _as_json("\n".join(lines[at + 1 :]))
            if prepared is None:
                return None
            import json  # (here: the TUI's first frame imports this module, and no JSON)

            try:
                changes = json.loads(prepared[0])
            except ValueError:
                return None
            if type(changes) is not dict or len(changes) != prepared[1] or any(name in changes for name in VARYING):
                return None
        elif lines[at:] != [""]:
            return None
        result = (found.get("device", ""), found.get("model_hash"), changes)
        self._tails[tail] = result
        return result

"""A derived copy of a big session's fold, so that reopening it need not parse every record again.

Never the source of truth: a JSON file in the user cache folder, one per session
file, holding every entry as of a byte offset of that file and a CRC-32 of every
byte before it. It is used only while the file still begins with exactly those
bytes; the file is append-only, so what follows is read as any catch-up is. A
hand edit, a replaced file, another studio version, or a damaged, foreign or odd
snapshot, and the file is read as ever. It is checked as the file is: each
recipe shape through `Recipe.from_dict`, each entry's own fields by type and
range. It can be deleted at any time.

It is columnar: one array per field (an entry's own fields, then which recipe
shape it has, its prompt, negative prompt, seed and line), so that reading
100,000 entries is a few `json.loads` of long arrays and checks that run over
a whole column at once, never a dict per entry read field by field. A column is

- `{"all": value}` when every entry has the one value;
- `{"pick": [distinct values], "at": [index per entry]}` when a few long values
  repeat (prompts: equal values are then one object in memory too);
- else the array itself, one value per entry;

and a column of at least `_LONG` entries (a shorter one reads as quickly in the
forms above) may also be

- `{"runs": [first, step, count, ...]}`: whole numbers in stretches that each go
  up by one step (ids, lines, seeds);
- `{"each": [value, ...], "times": [count, ...]}`: each value so many times in
  turn (statuses, a run's prompt);
- the images, `{"names": [every entry's names, in turn], "counts": [how many
  per entry]}`.

`at` and `counts` are columns of whole numbers themselves, in any form but
`pick`; `times` is an array. `save` writes each column in the form quickest to
read, by rough costs measured with `json.loads` (see `_runs`, `_repeats` and
`_picking_pays`): a value spelled out costs less than an index into picked
ones, so short text that repeats is spelled out. What a form asks for is
checked before anything is made of it (a count of a billion in a small file is
refused).

The entries are made a column at a time too, by C loops (map, zip): each
entry's `Values` is a copy of one dict that holds what most entries have, then
a pass per column that differs between entries sets each one's own value (for a
column kept as values in turn, only the entries of its later runs). A reopen
makes no Python call per entry; what it costs is mostly the objects it makes,
and the collector's pass over them once it is back on.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import fields
from itertools import accumulate, chain, compress, islice, repeat
from operator import lt, ne, setitem, sub
from pathlib import Path
from typing import Any

from studio import __version__
from studio.atomic import write_text_atomically
from studio.cachedir import cache_dir
from studio.recipe import MAX_PROMPT_CHARS, MAX_SEED, Recipe, RecipeError
from studio.store.entries import _ENTRY_DEFAULTS as _DEFAULTS
from studio.store.entries import STATUSES, VARYING, Entry, State, Values
from studio.store.records import check_sheet_tag, check_sweep_tag

FORMAT = 3
MIN_ENTRIES = 2000  # below this, reading the file is quick enough
_LONG = 1000  # below this, a column is as quick to read in the short forms (see the docstring)
_FIELDS = tuple(f.name for f in fields(Entry) if f.name != "recipe")
_NONE = type(None)
_TYPES: dict[str, frozenset[type]] = {name: frozenset(types) for name, types in {
    "id": (int,), "time": (str,), "status": (str,), "model_hash": (str,), "images": (list,),
    "duration": (float, int, _NONE), "device": (str,), "reason": (str,), "favourite": (bool,),
    "rating": (int,), "note": (str,), "deleted": (bool,), "finished": (str,), "owner": (str,),
    "sweep": (dict, _NONE), "template": (str,), "sheet": (dict, _NONE),
    # what each entry adds: its recipe shape, the fields it varies in, its line
    "shape": (int,), "prompt": (str,), "negative_prompt": (str,), "seed": (int,), "line": (int,),
}.items()}
_COLUMNS = (*_FIELDS, "shape", *VARYING, "line")
assert set(_TYPES) == set(_COLUMNS), "an Entry field without a snapshot type"
_RECIPE_NAMES = tuple(f.name for f in fields(Recipe))
_KEEP = tuple(i for i, name in enumerate(_RECIPE_NAMES) if name not in VARYING)


class _Odd(Exception):
    """Something in the snapshot is not as `save` writes it: read the file instead."""


def snapshot_path(file: Path) -> Path:
    key = hashlib.sha256(str(Path(file).resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache_dir() / "sessions" / f"{key}.json"


def _crc(fd: int, length: int) -> int:
    crc, done = 0, 0
    while done < length:
        block = os.pread(fd, min(1 << 22, length - done), done)
        if not block:
            break
        crc, done = zlib.crc32(block, crc), done + len(block)
    return crc


# --- writing --------------------------------------------------------------------


def _encode(values: list[Any]) -> Any:
    """A column as `save` writes it (see the module docstring)."""
    kinds = set(map(type, values))
    first = values[0]
    plain = len(kinds) == 1 and not kinds & {list, tuple, dict}  # (so `==` tells them apart, but for 0.0 and -0.0)
    if plain and values.count(first) == len(values) and (type(first) is not float or len(set(map(repr, values))) == 1):
        return {"all": first}
    if plain and len(values) >= _LONG and float not in kinds:
        runs = _runs(values) if kinds == {int} else None
        if runs is not None:
            return {"runs": runs}
        repeats = _repeats(values)
        if repeats is not None:
            return {"each": repeats[0], "times": repeats[1]}
    if kinds == {str}:
        at: dict[str, int] = {}
        index = [at.setdefault(v, len(at)) for v in values]
        if len(at) * 2 <= len(values) and _picking_pays(values, list(at)):
            return {"pick": list(at), "at": _encode(index)}
    return values


def _picking_pays(values: list[str], distinct: list[str]) -> bool:
    """Whether `values` read quicker as picks from `distinct` than spelled out. A value costs about as
    much to read as 50 of its characters, an index twice that; a short column is picked all the same."""
    if len(values) < _LONG:
        return True
    return sum(map(len, distinct)) + 50 * len(distinct) + 100 * len(values) < sum(map(len, values)) + 50 * len(values)


def _repeats(values: list[Any]) -> tuple[list[Any], list[int]] | None:
    """`values` as each value and how many times it comes in turn; None when that is not a quarter
    as long (a run costs about as much to read as four values spelled out)."""
    starts = [0, *compress(range(1, len(values)), map(ne, islice(values, 1, None), values))]
    if len(starts) * 4 > len(values):
        return None
    return list(map(values.__getitem__, starts)), list(map(sub, [*starts[1:], len(values)], starts))


def _runs(values: list[int]) -> list[int] | None:
    """`values` as [first, step, count, ...], stretches that each go up by one step; None when that is
    not an eighth as long (each number in it costs about as much to read as a value spelled out)."""
    most = len(values) // 24
    steps = list(map(sub, islice(values, 1, None), values))
    changes = [0, *compress(range(1, len(steps)), map(ne, islice(steps, 1, None), steps)), len(steps)]
    if len(changes) > 2 * most + 2:  # (a stretch takes in at most two stretches of one step)
        return None
    runs: list[int] = []
    start = 0  # the first value not yet in a stretch
    for begin, end in zip(changes, islice(changes, 1, None)):  # steps[begin:end] are one step
        if end > start:  # (else its one step is the one between two stretches)
            runs += (values[start], steps[start], end - start + 1)
            start = end + 1
    if start < len(values):
        runs += (values[start], 0, 1)  # the last value, on its own
    return runs if len(runs) <= 3 * most else None


def _encode_images(images: list[tuple[str, ...]]) -> Any:
    names = list(chain.from_iterable(images))
    if len(images) < _LONG or not set(map(type, names)) <= {str}:
        return _encode(images)
    return {"names": names, "counts": _encode(list(map(len, images)))}


def save(file: Path, fd: int, states: dict[int, State], offset: int, lines: int) -> None:
    """Write the snapshot of `states`, the fold of `file`'s first `offset` bytes (the caller holds its lock)."""
    shapes: dict[tuple, int] = {}
    recipes: list[dict[str, Any]] = []
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    own = [columns[name].append for name in _FIELDS]
    shape_of, prompts, negatives, seeds, where = (
        columns[name].append for name in ("shape", "prompt", "negative_prompt", "seed", "line"))
    by_template: dict[int, tuple[dict[str, Any], int]] = {}  # id of a shared template -> (it, its shape)
    for _, state in sorted(states.items()):
        kept = state.kept
        if kept is not None:  # not built yet: its template says its shape
            template, prompt, negative, seed = kept
            found = by_template.get(id(template))
            index = found[1] if found is not None else None
        else:
            recipe = state.recipe
            assert recipe is not None
            template, prompt, negative, seed = recipe.__dict__, recipe.prompt, recipe.negative_prompt, recipe.seed
            index = None
        if index is None:
            values = list(template.values())
            shape = tuple(values[i] for i in _KEEP)
            index = shapes.get(shape)
            if index is None:
                index = shapes[shape] = len(recipes)
                made = object.__new__(Recipe)
                object.__setattr__(made, "__dict__", dict(template))
                recipes.append(made.to_dict())
            if kept is not None:
                by_template[id(template)] = (template, index)
        for add, name in zip(own, _FIELDS):
            add(state.values[name])
        shape_of(index)
        prompts(prompt)
        negatives(negative)
        seeds(seed)
        where(state.line)
    stat = os.fstat(fd)
    document = {
        "format": FORMAT, "studio_version": __version__, "file": str(Path(file).resolve()),
        "offset": offset, "lines": lines, "crc": _crc(fd, offset),
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino,
        "count": len(states), "recipes": recipes,
        "columns": {
            name: (_encode_images if name == "images" else _encode)(column) for name, column in columns.items()
        },
    }
    path = snapshot_path(file)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")))


# --- reading --------------------------------------------------------------------


def load(file: Path, fd: int) -> tuple[dict[int, State], int, int] | None:
    """(states, offset, lines) from the snapshot of `file` when it still describes the file; else None."""
    try:
        text = snapshot_path(file).read_bytes()
        document = json.loads(text)
    except (OSError, ValueError, RecursionError):
        return None
    del text
    try:
        return _check(document, file, fd)
    except (_Odd, KeyError, TypeError, ValueError, IndexError, RecipeError, AssertionError):
        return None  # anything odd: the file is read instead


def _check(document: Any, file: Path, fd: int) -> tuple[dict[int, State], int, int] | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    if document.get("studio_version") != __version__ or document.get("file") != str(Path(file).resolve()):
        return None  # another studio may validate recipes otherwise
    offset, lines, count = document["offset"], document["lines"], document["count"]
    if type(offset) is not int or type(lines) is not int or type(count) is not int or min(offset, lines, count) < 0:
        return None
    if count > offset // 16:
        return None  # each entry has a queued record, far longer than 16 bytes: columns that long are not made
    stat = os.fstat(fd)
    same = (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (document["size"], document["mtime_ns"], document["inode"])
    if stat.st_size < offset or (not same and _crc(fd, offset) != document["crc"]):
        return None
    encoded = document["columns"]
    if not count or type(encoded) is not dict or set(encoded) != set(_COLUMNS) or type(document["recipes"]) is not list:
        return None
    templates = []
    for data in document["recipes"]:
        templates.append(Recipe.from_dict({**data, "prompt": "", "negative_prompt": "", "seed": 0}).__dict__)
    columns = {
        name: (_images if name == "images" else _column)(encoded[name], _TYPES[name], count) for name in _COLUMNS
    }
    ids = columns["id"]
    if len(ids) != count or ids[0] < 1 or not _ascending(encoded["id"], ids):
        return None  # each id once, in order
    if not _values_ok(columns, len(templates)):
        return None
    repeats = {name: encoded[name] for name in _FIELDS if type(encoded[name]) is dict and "times" in encoded[name]}
    del document, encoded
    return _states(columns, repeats, templates, count), offset, lines


# A column as read: a list of `count` values, one per entry, or of the one value every entry has.


def _column(encoded: Any, types: frozenset[type], count: int, pick: bool = True) -> list[Any]:
    """One column, each value checked by type (`pick`: it may be picked from distinct values)."""
    if type(encoded) is list:
        if len(encoded) != count or not set(map(type, encoded)) <= types:
            raise _Odd(encoded)
        return encoded
    keys = encoded.keys() if type(encoded) is dict else None
    if keys == {"all"}:
        value = encoded["all"]
        if type(value) not in types or type(value) in (list, dict):
            raise _Odd(value)
        return [value]
    if keys == {"runs"} and int in types:
        return _from_runs(encoded["runs"], count)
    if keys == {"each", "times"}:
        return _repeated(encoded["each"], encoded["times"], types, count)
    if keys == {"pick", "at"} and pick:
        return _picked(encoded["pick"], encoded["at"], types, count)
    raise _Odd(encoded)


def _ints(encoded: Any, count: int) -> list[int]:
    """A column of indexes or counts: whole numbers, spelled out, all one, as runs or repeated."""
    return _column(encoded, frozenset({int}), count, pick=False)


def _scalars(values: Any, types: frozenset[type]) -> list[Any]:
    """`values`, a non-empty list of values of `types` other than lists and dicts (never shared)."""
    if type(values) is not list or not values or not set(map(type, values)) <= types - {list, dict}:
        raise _Odd(values)
    return values


def _repeated(each: Any, times: Any, types: frozenset[type], count: int) -> list[Any]:
    """A column from each value and how many times it comes in turn."""
    each, times = _scalars(each, types), _scalars(times, frozenset({int}))
    if len(each) != len(times) or min(times) < 1 or sum(times) != count:
        raise _Odd(times)  # (checked before anything is made: a file cannot ask for a billion values)
    return list(chain.from_iterable(map(repeat, each, times)))


def _picked(pick: Any, at: Any, types: frozenset[type], count: int) -> list[Any]:
    """A column from its distinct values and the index of each entry's."""
    distinct, index = _scalars(pick, types), _ints(at, count)
    if min(index) < 0:
        raise _Odd(index)
    return list(map(distinct.__getitem__, index))  # an index past the end: IndexError


def _from_runs(runs: Any, count: int) -> list[int]:
    """A column of whole numbers from its runs: [first, step, count, ...]."""
    if len(_scalars(runs, frozenset({int}))) % 3:
        raise _Odd(runs)
    lengths = runs[2::3]
    if min(lengths) < 1 or sum(lengths) != count:
        raise _Odd(runs)  # (checked before anything is made)
    return list(chain.from_iterable(map(_run, runs[0::3], runs[1::3], lengths)))


def _run(first: int, step: int, length: int) -> Iterable[int]:
    return range(first, first + step * length, step) if step else repeat(first, length)


def _images(encoded: Any, types: frozenset[type], count: int) -> list[tuple[str, ...]]:
    """The images column, as each entry's tuple of names."""
    if type(encoded) is not dict or encoded.keys() != {"names", "counts"}:
        images = _column(encoded, types, count)
        if not set(map(type, chain.from_iterable(images))) <= {str}:
            raise _Odd(images)
        return list(map(tuple, images))
    names, counts = encoded["names"], _ints(encoded["counts"], count)
    if type(names) is not list or not set(map(type, names)) <= {str} or min(counts) < 0:
        raise _Odd(names)
    if len(counts) == 1:  # every entry has as many
        many = counts[0]
        if many * count != len(names):
            raise _Odd(counts)
        if many < 2:
            return list(zip(names)) if many else [()]
        return list(zip(*(names[i::many] for i in range(many))))
    ends = list(accumulate(counts))
    if ends[-1] != len(names):
        raise _Odd(counts)
    return list(map(tuple, map(names.__getitem__, map(slice, chain((0,), ends), ends))))


def _ascending(encoded: Any, ids: list[int]) -> bool:
    """Whether each id is greater than the one before: on the runs, where the ids were read from runs."""
    if type(encoded) is not dict or encoded.keys() != {"runs"}:
        return all(map(lt, ids, islice(ids, 1, None)))
    runs = encoded["runs"]  # (as `_column` checked them)
    stretches = list(zip(runs[0::3], runs[1::3], runs[2::3]))
    lasts = [first + step * (length - 1) for first, step, length in stretches]
    return all(step > 0 or length == 1 for _, step, length in stretches) and all(map(lt, lasts, runs[3::3]))


def _values_ok(columns: dict[str, list[Any]], shapes: int) -> bool:
    """The range checks `Recipe` and the record checks make, a column at a time."""
    def values(name: str) -> list[Any]:
        return columns[name]

    if not set(values("status")) <= set(STATUSES) or not 0 <= min(values("rating")) <= max(values("rating")) <= 5:
        return False
    durations = [d for d in values("duration") if d is not None]
    if durations and min(durations) < 0:
        return False
    for name, check in (("sweep", check_sweep_tag), ("sheet", check_sheet_tag)):
        if any(check(tag) for tag in values(name) if tag is not None):
            return False
    if not 0 <= min(values("shape")) <= max(values("shape")) < shapes:
        return False
    if not 0 <= min(values("seed")) <= max(values("seed")) <= MAX_SEED - 1024:
        return False
    return all(max(map(len, values(name))) <= MAX_PROMPT_CHARS for name in ("prompt", "negative_prompt"))


# --- the entries ----------------------------------------------------------------


def _states(
    columns: dict[str, list[Any]], repeats: dict[str, Any], templates: list[dict[str, Any]], count: int
) -> dict[int, State]:
    """Each entry's State from the checked columns; its Recipe is made when first asked for."""
    values = _own_values(columns, repeats, count)
    shape = columns["shape"]
    recipes = repeat(templates[shape[0]]) if len(shape) == 1 else map(templates.__getitem__, shape)
    kept = zip(recipes, *(_each(columns[name]) for name in VARYING))
    new_state = State.__new__
    states: dict[int, State] = {}
    for entry_id, own, recipe, line in zip(columns["id"], values, kept, _each(columns["line"])):
        state = new_state(State)  # (a statement a slot: quicker than one tuple assignment)
        state.line = line
        state.recipe_data = None
        state.pending = None
        state._recipe = None
        state.values = own
        state.entry = None
        state.epoch = 0
        state.kept = recipe
        states[entry_id] = state
    return states


def _own_values(columns: dict[str, list[Any]], repeats: dict[str, Any], count: int) -> list[Values]:
    """Each entry's `Values`: its fields other than Entry's default (the rest read as it). Each is a copy
    of one dict that holds what most entries have, set where they differ: a pass over every entry for a
    column spelled out, a pass over each later run for a column of `repeats` ({"each": ..., "times": ...})."""
    shared: dict[str, Any] = {}  # (with every field a pass sets in every entry, so that no copy grows)
    everywhere: list[tuple[str, list[Any]]] = []
    runs: list[tuple[str, int, int, Any]] = []  # (field, first entry, entries, value)
    for name in _FIELDS:
        column = columns[name]
        if name in repeats:
            each, times = repeats[name]["each"], repeats[name]["times"]
            if not _default(name, each[0]):
                shared[name] = each[0]
            starts = list(accumulate(times, initial=0))
            runs += zip(repeat(name), starts[1:], times[1:], each[1:])  # (the first run has the shared value)
        elif len(column) > 1:
            shared[name] = column[0]
            everywhere.append((name, column))
        elif not _default(name, column[0]):
            shared[name] = column[0]
    values = list(map(Values, repeat(shared, count)))
    for name, column in everywhere:
        deque(map(setitem, values, repeat(name), column), maxlen=0)  # values[i][name] = column[i]
    for name, start, length, value in runs:
        deque(map(setitem, values[start : start + length], repeat(name), repeat(value)), maxlen=0)
    return values


def _default(name: str, value: Any) -> bool:
    """Whether `value` is Entry's default for `name`."""
    default = _DEFAULTS.get(name, _Odd)
    return type(value) is type(default) and value == default


def _each(column: list[Any]) -> Iterable[Any]:
    """Entry by entry (the one value again and again, where every entry has it)."""
    return repeat(column[0]) if len(column) == 1 else column

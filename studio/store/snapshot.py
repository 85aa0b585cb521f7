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
a whole column at once, never a dict per entry read field by field. A column
is `{"all": value}` when every entry has the one value, `{"pick": [distinct
values], "at": [index per entry]}` when few values repeat (prompts, times:
equal values are then one object in memory too), else the array itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import fields
from itertools import chain, repeat
from pathlib import Path
from typing import Any

from studio import __version__
from studio.atomic import write_text_atomically
from studio.cachedir import cache_dir
from studio.recipe import MAX_PROMPT_CHARS, MAX_SEED, Recipe, RecipeError
from studio.store.entries import _ENTRY_DEFAULTS as _DEFAULTS
from studio.store.entries import STATUSES, VARYING, Entry, State, Values
from studio.store.records import check_sheet_tag, check_sweep_tag

FORMAT = 2
MIN_ENTRIES = 2000  # below this, reading the file is quick enough
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


def _encode(values: list[Any]) -> Any:
    first = values[0]
    if all(type(v) is type(first) and v == first for v in values) and not isinstance(first, (list, dict)):
        return {"all": first}
    if isinstance(first, str) and all(type(v) is str for v in values):
        at: dict[str, int] = {}
        index = [at.setdefault(v, len(at)) for v in values]
        if len(at) * 2 <= len(values):
            return {"pick": list(at), "at": index}
    return values


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
        "columns": {name: _encode(column) for name, column in columns.items()},
    }
    path = snapshot_path(file)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")))


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


def _column(document: dict[str, Any], name: str, count: int) -> Any:
    """One column as a list of `count` values, each checked by type."""
    encoded = document["columns"][name]
    types = _TYPES[name]
    if type(encoded) is dict:
        if set(encoded) == {"all"}:
            value = encoded["all"]
            if type(value) not in types or type(value) in (list, dict):
                raise _Odd(name)
            return [value] * count
        pick, at = encoded["pick"], encoded["at"]
        if type(pick) is not list or type(at) is not list or len(encoded) != 2 or not pick:
            raise _Odd(name)
        kinds = set(map(type, pick))
        if not kinds <= types - {list, dict} or set(map(type, at)) != {int} or min(at) < 0:
            raise _Odd(name)
        values = list(map(pick.__getitem__, at))  # an index past the end: IndexError
    else:
        values = encoded
        if type(values) is not list or not set(map(type, values)) <= types:
            raise _Odd(name)
    if len(values) != count:
        raise _Odd(name)
    return values


def _check(document: Any, file: Path, fd: int) -> tuple[dict[int, State], int, int] | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    if document.get("studio_version") != __version__ or document.get("file") != str(Path(file).resolve()):
        return None  # another studio may validate recipes otherwise
    offset, lines, count = document["offset"], document["lines"], document["count"]
    if type(offset) is not int or type(lines) is not int or type(count) is not int or min(offset, lines, count) < 0:
        return None
    stat = os.fstat(fd)
    same = (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (document["size"], document["mtime_ns"], document["inode"])
    if stat.st_size < offset or (not same and _crc(fd, offset) != document["crc"]):
        return None
    if not count or set(document["columns"]) != set(_COLUMNS) or type(document["recipes"]) is not list:
        return None
    templates = []
    for data in document["recipes"]:
        templates.append(Recipe.from_dict({**data, "prompt": "", "negative_prompt": "", "seed": 0}).__dict__)
    columns = {name: _column(document, name, count) for name in _COLUMNS}
    defaults = {  # the columns that hold Entry's default for every entry
        name for name, encoded in document["columns"].items()
        if name in _DEFAULTS and type(encoded) is dict and "all" in encoded
        and type(encoded["all"]) is type(_DEFAULTS[name]) and encoded["all"] == _DEFAULTS[name]
    }
    del document
    ids = columns["id"]
    if type(ids) is not list or ids != sorted(set(ids)) or ids[0] < 1:
        return None  # each id once, in order
    if not _values_ok(columns, len(templates)):
        return None
    columns["images"] = map(tuple, columns["images"])
    # Only the fields an entry has other than Entry's default are its own (`Values`).
    own = [name for name in _FIELDS if name not in defaults]
    rows = zip(*(columns[name] for name in own))
    new_state = State.__new__
    states: dict[int, State] = {}
    for entry_id, values, shape, prompt, negative, seed, line in zip(
        ids, map(Values, map(zip, repeat(own), rows)), *(columns[name] for name in _COLUMNS[len(_FIELDS):])
    ):
        state = new_state(State)
        state.line, state.recipe_data, state.pending, state._recipe = line, None, None, None
        state.values, state.entry, state.epoch = values, None, 0
        state.kept = (templates[shape], prompt, negative, seed)  # its Recipe is made when first asked for
        states[entry_id] = state
    return states, offset, lines


def _values_ok(columns: dict[str, Any], shapes: int) -> bool:
    """The range checks `Recipe` and the record checks make, a column at a time."""
    def values(name: str) -> list[Any]:
        return columns[name]

    if not set(values("status")) <= set(STATUSES) or not 0 <= min(values("rating")) <= max(values("rating")) <= 5:
        return False
    if not set(map(type, chain.from_iterable(values("images")))) <= {str}:
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

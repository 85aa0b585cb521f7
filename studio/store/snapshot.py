"""A derived copy of a big session's fold, so that reopening it need not parse every record again.

Never the source of truth: a JSON file in the user cache folder, one per session
file, holding every entry as of a byte offset of that file and a CRC-32 of every
byte before it. It is used only while the file still begins with exactly those
bytes; the file is append-only, so what follows is read as any catch-up is. A
hand edit, a replaced file, another studio version, or a damaged, foreign or odd
snapshot, and the file is read as ever. It is checked as the file is: each
recipe shape through `Recipe.from_dict`, each entry's own fields by type. It can
be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any

from studio import __version__
from studio.atomic import write_text_atomically
from studio.recipe import Recipe, RecipeError
from studio.store.entries import STATUSES, VARYING, Entry, State, _varying_ok
from studio.store.records import check_sheet_tag, check_sweep_tag

FORMAT = 1
MIN_ENTRIES = 2000  # below this, reading the file is quick enough
_FIELDS = tuple(f.name for f in fields(Entry) if f.name != "recipe")
_NONE = type(None)
_TYPES: dict[str, tuple[type, ...]] = {
    "id": (int,), "time": (str,), "status": (str,), "model_hash": (str,), "images": (list,),
    "duration": (float, int, _NONE), "device": (str,), "reason": (str,), "favourite": (bool,),
    "rating": (int,), "note": (str,), "deleted": (bool,), "finished": (str,), "owner": (str,),
    "sweep": (dict, _NONE), "template": (str,), "sheet": (dict, _NONE),
}
assert set(_TYPES) == set(_FIELDS), "an Entry field without a snapshot type"
_RECIPE_NAMES = tuple(f.name for f in fields(Recipe))
_KEEP = tuple(i for i, name in enumerate(_RECIPE_NAMES) if name not in VARYING)


def snapshot_path(file: Path) -> Path:
    from studio.models.hashing import cache_dir

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


def save(file: Path, fd: int, states: dict[int, State], offset: int, lines: int) -> None:
    """Write the snapshot of `states`, the fold of `file`'s first `offset` bytes (the caller holds its lock)."""
    shapes: dict[tuple, int] = {}
    recipes: list[dict[str, Any]] = []
    rows = []
    for entry_id, state in sorted(states.items()):
        recipe = state.recipe
        assert recipe is not None
        values = list(recipe.__dict__.values())
        shape = tuple(values[i] for i in _KEEP)
        index = shapes.get(shape)
        if index is None:
            index = shapes[shape] = len(recipes)
            recipes.append(recipe.to_dict())
        row = [state.values[name] for name in _FIELDS]
        rows.append([*row, index, recipe.prompt, recipe.negative_prompt, recipe.seed, state.line])
    stat = os.fstat(fd)
    document = {
        "format": FORMAT, "studio_version": __version__, "file": str(Path(file).resolve()),
        "offset": offset, "lines": lines, "crc": _crc(fd, offset),
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino,
        "recipes": recipes, "entries": rows,
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
    except (KeyError, TypeError, ValueError, IndexError, RecipeError, AssertionError):
        return None  # anything odd: the file is read instead


def _check(document: Any, file: Path, fd: int) -> tuple[dict[int, State], int, int] | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    if document.get("studio_version") != __version__ or document.get("file") != str(Path(file).resolve()):
        return None  # another studio may validate recipes otherwise
    offset, lines = document["offset"], document["lines"]
    if type(offset) is not int or type(lines) is not int or offset < 0 or lines < 0:
        return None
    stat = os.fstat(fd)
    same = (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (document["size"], document["mtime_ns"], document["inode"])
    if stat.st_size < offset or (not same and _crc(fd, offset) != document["crc"]):
        return None
    templates = []
    for data in document["recipes"]:
        templates.append(Recipe.from_dict({**data, "prompt": "", "negative_prompt": "", "seed": 0}))
    states: dict[int, State] = {}
    width = len(_FIELDS)
    good: set[tuple[type, ...]] = set()  # the rows' type signatures already checked field by field
    new_state, new_recipe, count = State.__new__, object.__new__, len(templates)
    for row in document["entries"]:
        signature = tuple(map(type, row))
        if signature not in good:
            if len(row) != width + 5 or type(row[width]) is not int or type(row[width + 4]) is not int:
                return None
            if any(t not in _TYPES[name] for name, t in zip(_FIELDS, signature)):
                return None
            good.add(signature)
        values = dict(zip(_FIELDS, row))
        index, prompt, negative, seed, line = row[width:]
        entry_id = values["id"]
        if entry_id < 1 or entry_id in states or values["status"] not in STATUSES or not 0 <= values["rating"] <= 5:
            return None
        images = values["images"]
        if images:
            if not all(type(name) is str for name in images):
                return None
            values["images"] = tuple(images)
        else:
            values["images"] = ()
        if values["sweep"] is not None and check_sweep_tag(values["sweep"]):
            return None
        if values["sheet"] is not None and check_sheet_tag(values["sheet"]):
            return None
        if not 0 <= index < count or not _varying_ok(prompt, negative, seed):
            return None
        recipe = new_recipe(Recipe)
        recipe.__dict__.update(templates[index].__dict__, prompt=prompt, negative_prompt=negative, seed=seed)
        state = new_state(State)
        state.line, state.recipe_data, state.recipe, state.values, state.entry = line, None, recipe, values, None
        states[entry_id] = state
    return states, offset, lines

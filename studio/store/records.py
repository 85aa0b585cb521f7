"""What each kind of session record may hold (schema 1), checked as it is read.

`queued` creates an entry with its full recipe; `started`, `done`, `failed`,
`cancelled`, `mark`, `deleted` and `restored` add to it. How records fold into
entries is `studio.store.session`; how they are framed on disk is
`studio.store.journal`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

KINDS = frozenset(
    {"queued", "started", "done", "failed", "cancelled", "mark", "deleted", "restored"}
)

FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "queued": {"recipe": (dict,), "owner": (str,), "sweep": (dict,), "template": (str,), "sheet": (dict,)},
    "started": {"owner": (str,)},
    "done": {
        "recipe": (dict,),
        "images": (list,),
        "duration": (int, float),
        "device": (str,),
        "model_hash": (str,),
    },
    "failed": {"reason": (str,)},
    "cancelled": {"reason": (str,)},
    "mark": {"favourite": (bool,), "rating": (int,), "note": (str,)},
    "deleted": {},
    "restored": {},
}


def check_event(ev: Any) -> str:
    """'' when `ev` is a well-formed event, else what is wrong with it."""
    if not isinstance(ev, dict):
        return "record is not a table"
    kind = ev.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:  # a list or table is unhashable
        return f"field 'kind' must be one of {', '.join(sorted(KINDS))} (got {kind!r})"
    entry_id = ev.get("id")
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id < 1:
        return f"field 'id' must be a whole number ≥ 1 (got {entry_id!r})"
    when = ev.get("time")
    if isinstance(when, datetime):
        ev["time"] = when.isoformat()
    elif not isinstance(when, str):
        return "field 'time' must be a date-time string"
    allowed = FIELDS[kind]
    for key, value in ev.items():
        if key in ("id", "kind", "time"):
            continue
        types = allowed.get(key)
        if types is None:
            return f"unknown field {key!r} in a {kind!r} record"
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            return f"field {key!r} has the wrong type ({value!r})"
    if kind == "queued" and "recipe" not in ev:
        return "a 'queued' record needs a [event.recipe] table"
    if kind == "queued" and "sweep" in ev:
        return check_sweep_tag(ev["sweep"])
    if kind == "queued" and "sheet" in ev:
        return check_sheet_tag(ev["sheet"])
    if kind == "mark" and "rating" in ev and not 0 <= ev["rating"] <= 5:
        return f"field 'rating' must be 0–5 (got {ev['rating']})"
    if kind == "done":
        if not all(isinstance(name, str) for name in ev.get("images", ())):
            return "field 'images' must be a list of file names"
        if ev.get("duration", 0) < 0:
            return "field 'duration' must not be negative"
    return ""


# A sweep's tag on a `queued` record: optional, so a session without sweeps reads as before.
# A cell: id, at = [x, y, z] indices, shape = [nx, ny, nz], axes = 3 axis titles,
# labels = its 3 value labels. A grid: id, shape, axes, cells = entry ids (0: no cell).
_SWEEP_TAG = {"id": str, "at": list, "shape": list, "axes": list, "labels": list, "cells": list}


def check_sweep_tag(tag: dict[str, Any]) -> str:
    """'' when `tag` is a well-formed sweep cell or grid tag, else what is wrong with it."""
    for key, value in tag.items():
        if key not in _SWEEP_TAG:
            return f"unknown field {key!r} in a sweep tag"
        if not isinstance(value, _SWEEP_TAG[key]):
            return f"sweep field {key!r} has the wrong type ({value!r})"
    if not tag.get("id") or "shape" not in tag or "axes" not in tag:
        return "a sweep tag needs an id, a shape and axes"
    whole = [key for key in ("at", "shape", "cells") if key in tag]
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for key in whole for n in tag[key]):
        return "sweep fields 'at', 'shape' and 'cells' hold whole numbers ≥ 0"
    if len(tag["shape"]) != 3 or min(tag["shape"]) < 1 or len(tag["axes"]) != 3:
        return "a sweep tag's shape and axes have three items (x, y, z)"
    if ("at" in tag) == ("cells" in tag):
        return "a sweep tag is a cell ('at') or a grid ('cells'), not both"
    if "at" in tag:
        if len(tag["at"]) != 3 or any(i >= n for i, n in zip(tag["at"], tag["shape"])):
            return f"sweep cell at {tag['at']} lies outside shape {tag['shape']}"
        if len(tag.get("labels", ())) != 3:
            return "a sweep cell's labels have three items (x, y, z)"
    if not all(isinstance(text, str) for key in ("axes", "labels") for text in tag.get(key, ())):
        return "sweep fields 'axes' and 'labels' hold text"
    return ""


# A contact sheet's tag on a `queued` record (studio.review.sheet): the query it shows
# and the entries on it, each "SESSION:ID", in the sheet's order.
def check_sheet_tag(tag: dict[str, Any]) -> str:
    """'' when `tag` is a well-formed contact sheet tag, else what is wrong with it."""
    unknown = sorted(set(tag) - {"query", "entries"})
    if unknown:
        return f"unknown field {unknown[0]!r} in a contact sheet tag"
    if not isinstance(tag.get("query"), str):
        return "a contact sheet tag needs its query, as text"
    entries = tag.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(key, str) and key.rpartition(":")[2].isdigit() and key.rpartition(":")[0] for key in entries
    ):
        return "a contact sheet tag's entries are a list of SESSION:ID"
    return ""


# The records studio writes most, in the shapes it writes them: checked here without the
# general walk (each says True only where `check_event` says ""; anything else goes to it).
_STARTED = frozenset({"id", "kind", "time", "owner"})
_QUEUED = frozenset({"id", "kind", "time", "recipe", "owner", "template"})
_DONE = frozenset({"id", "kind", "time", "recipe", "images", "duration", "device", "model_hash"})


def _plain_started(ev: dict[str, Any]) -> bool:
    entry_id = ev.get("id")
    return (
        ev.keys() <= _STARTED and type(entry_id) is int and entry_id >= 1 and type(ev.get("time")) is str
        and type(ev.get("owner", "")) is str
    )


def _plain_queued(ev: dict[str, Any]) -> bool:
    entry_id = ev.get("id")
    return (
        ev.keys() <= _QUEUED and type(entry_id) is int and entry_id >= 1 and type(ev.get("time")) is str
        and isinstance(ev.get("recipe"), dict) and type(ev.get("owner", "")) is str
        and type(ev.get("template", "")) is str
    )


def _plain_done(ev: dict[str, Any]) -> bool:
    entry_id = ev.get("id")
    images = ev.get("images", [])
    duration = ev.get("duration", 0)
    return (
        ev.keys() <= _DONE and type(entry_id) is int and entry_id >= 1 and type(ev.get("time")) is str
        and isinstance(ev.get("recipe", {}), dict) and type(images) is list
        and all(type(name) is str for name in images)
        and (type(duration) is float or type(duration) is int) and duration >= 0
        and type(ev.get("device", "")) is str and type(ev.get("model_hash", "")) is str
    )


_PLAIN = {"started": _plain_started, "queued": _plain_queued, "done": _plain_done}


def check_record(ev: Any, label: str, line: int) -> str:
    """The journal's check: '' for a good record, else its problem, placed at `label:line`."""
    kind = ev.get("kind") if type(ev) is dict else None
    if type(kind) is str:
        plain = _PLAIN.get(kind)
        if plain is not None and plain(ev):
            return ""
    problem = check_event(ev)
    if not problem:
        return ""
    entry_id = ev.get("id") if isinstance(ev, dict) else None
    tag = f" (entry {entry_id})" if isinstance(entry_id, int) and not isinstance(entry_id, bool) else ""
    return f"{label}:{line}{tag}: {problem}"

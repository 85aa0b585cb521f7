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
    "queued": {"recipe": (dict,), "owner": (str,)},
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
    if kind not in KINDS:
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
    if kind == "mark" and "rating" in ev and not 0 <= ev["rating"] <= 5:
        return f"field 'rating' must be 0–5 (got {ev['rating']})"
    if kind == "done":
        if not all(isinstance(name, str) for name in ev.get("images", ())):
            return "field 'images' must be a list of file names"
        if ev.get("duration", 0) < 0:
            return "field 'duration' must not be negative"
    return ""


def check_record(ev: Any, label: str, line: int) -> str:
    """The journal's check: '' for a good record, else its problem, placed at `label:line`."""
    problem = check_event(ev)
    if not problem:
        return ""
    entry_id = ev.get("id") if isinstance(ev, dict) else None
    tag = f" (entry {entry_id})" if isinstance(entry_id, int) and not isinstance(entry_id, bool) else ""
    return f"{label}:{line}{tag}: {problem}"

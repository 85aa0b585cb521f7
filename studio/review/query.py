"""The search syntax shared by `studio search`, `studio export` and the TUI gallery.

A query is free words plus `key:value` filters, in any order:

    fox "red fox" lora:inkwash rating:>=4 since:2026-11-01 model:8711c266f2 sort:rating

Free words match the prompt, the negative prompt and the note (each word as a
prefix: `fox` finds "foxes"; a quoted phrase matches as a phrase). Every
filter must hold. The keys:

| key | value | matches |
|---|---|---|
| `model:` | name or hash | model name containing it, or model hash starting with it |
| `lora:` | name | a LoRA whose name contains it (repeat for several: all must be there) |
| `sampler:` | name | that sampler (any case; `_` for a space: `sampler:euler_a`, `sampler:"DPM++ 2M"`) |
| `seed:` | number | that seed |
| `size:` | `WxH` or `N` | that width and height (`N`: N×N) |
| `status:` | queued, running, done, failed, cancelled | that status |
| `rating:` | `N`, `>=N`, `>N`, `<=N`, `<N`, `=N` (0–5) | `N` alone means at least N |
| `fav:` | yes or no | favourites (or not) |
| `session:` | name | sessions whose name starts with it |
| `since:` / `until:` | `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, or `Nd` (N days ago) | queued on or after / on or before (UTC) |
| `sort:` | newest (default), oldest, rating, session | the order of the results |

`key:"two words"` quotes a value; `"a:b"` in quotes is free text. An unknown
key or a bad value is a one-line `QueryError`. Deleted entries never match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

STATUSES = ("queued", "running", "done", "failed", "cancelled")
SORTS = {
    "newest": "e.time DESC, e.session DESC, e.id DESC",
    "oldest": "e.time ASC, e.session ASC, e.id ASC",
    "rating": "e.rating DESC, e.time DESC, e.id DESC",
    "session": "e.session ASC, e.id ASC",
}
KEYS = ("model", "lora", "sampler", "seed", "size", "status", "rating", "fav", "session", "since", "until", "sort")
_ALIASES = {"favourite": "fav", "favorite": "fav", "loras": "lora"}
_TOKEN = re.compile(
    r'(?P<key>[A-Za-z_]+):(?:"(?P<quoted>[^"]*)"?|(?P<value>\S*))'
    r'|"(?P<phrase>[^"]*)"?'
    r"|(?P<word>\S+)"
)
_RATING = re.compile(r"(>=|<=|>|<|=)?([0-9]+)\Z")
_SIZE = re.compile(r"([0-9]{1,5})(?:[x×]([0-9]{1,5}))?\Z", re.IGNORECASE)
_DAYS = re.compile(r"([0-9]{1,5})d\Z")


class QueryError(ValueError):
    """A query that cannot be read; the message is one line."""


@dataclass(frozen=True)
class Query:
    """A parsed query: free text for FTS5 plus SQL conditions on the `entries` table (`e`)."""

    text: str  # as typed
    words: tuple[str, ...] = ()  # free words and phrases
    conditions: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()
    sort: str = "newest"

    def match(self) -> str:
        """The FTS5 MATCH expression for the free words ('' when there are none)."""
        parts = []
        for word in self.words:
            quoted = '"' + word.replace('"', '""') + '"'
            parts.append(quoted if " " in word else quoted + "*")
        return " AND ".join(parts)

    def where(self) -> tuple[str, list[Any]]:
        """The WHERE clause (without the keyword) and its parameters."""
        conditions = ["e.deleted = 0", *self.conditions]
        params = list(self.params)
        if self.words:
            conditions.append("e.rowid IN (SELECT rowid FROM entries_text WHERE entries_text MATCH ?)")
            params.append(self.match())
        return " AND ".join(conditions), params

    def order(self) -> str:
        return SORTS[self.sort]


@dataclass
class _Builder:
    words: list[str] = field(default_factory=list)
    conditions: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    loras: list[str] = field(default_factory=list)
    sort: str = "newest"


def parse_query(text: str, now: datetime | None = None) -> Query:
    """Read `text` in the syntax above; raises QueryError naming what is wrong."""
    build = _Builder()
    for match in _TOKEN.finditer(text):
        if match.group("key") is not None:
            key = match.group("key").lower()
            value = match.group("quoted") if match.group("quoted") is not None else match.group("value")
            _filter(build, _ALIASES.get(key, key), value.strip(), now)
        else:
            word = (match.group("phrase") if match.group("phrase") is not None else match.group("word")).strip()
            if re.search(r"\w", word):  # words of punctuation alone match nothing in FTS5
                build.words.append(" ".join(word.split()))
    conditions = [c for c, _ in build.conditions.values()]
    params = [p for _, ps in build.conditions.values() for p in ps]
    for name in build.loras:
        conditions.append("e.loras LIKE ? ESCAPE '\\'")
        params.append(f"%{_like(name.lower())}%")
    return Query(text, tuple(build.words), tuple(conditions), tuple(params), build.sort)


def _filter(build: _Builder, key: str, value: str, now: datetime | None) -> None:
    if key not in KEYS:
        raise QueryError(f"unknown search key {key + ':'!r}; the keys are {', '.join(k + ':' for k in KEYS)}")
    if not value:
        raise QueryError(f"{key}: needs a value (for example {key}:{_EXAMPLES[key]})")
    set_ = build.conditions.__setitem__  # a later filter of the same key replaces an earlier one
    if key == "model":
        set_(key, ("(e.model LIKE ? ESCAPE '\\' OR e.model_hash LIKE ? ESCAPE '\\')",
                   [f"%{_like(value)}%", f"{_like(value.lower())}%"]))
    elif key == "lora":
        build.loras.append(value)
    elif key == "sampler":
        set_(key, ("replace(lower(e.sampler), ' ', '_') = ?", [re.sub(r"[\s-]+", "_", value.lower())]))
    elif key == "seed":
        if not re.fullmatch(r"[0-9]{1,20}", value):
            raise QueryError(f"seed: must be a whole number (got {value!r})")
        set_(key, ("e.seed = ?", [int(value)]))
    elif key == "size":
        size = _SIZE.match(value)
        if not size:
            raise QueryError(f"size: must be WIDTHxHEIGHT or one number (got {value!r})")
        width = int(size.group(1))
        set_(key, ("e.width = ? AND e.height = ?", [width, int(size.group(2) or width)]))
    elif key == "status":
        if value.lower() not in STATUSES:
            raise QueryError(f"status: must be one of {', '.join(STATUSES)} (got {value!r})")
        set_(key, ("e.status = ?", [value.lower()]))
    elif key == "rating":
        rating = _RATING.match(value)
        if not rating or int(rating.group(2)) > 5:
            raise QueryError(f"rating: must be 0–5, optionally after >=, >, <=, < or = (got {value!r})")
        set_(key, (f"e.rating {rating.group(1) or '>='} ?", [int(rating.group(2))]))
    elif key == "fav":
        flag = {"yes": 1, "y": 1, "true": 1, "1": 1, "no": 0, "n": 0, "false": 0, "0": 0}.get(value.lower())
        if flag is None:
            raise QueryError(f"fav: must be yes or no (got {value!r})")
        set_(key, ("e.favourite = ?", [flag]))
    elif key == "session":
        set_(key, ("e.session LIKE ? ESCAPE '\\'", [f"{_like(value)}%"]))
    elif key in ("since", "until"):
        set_(key, (f"e.time {'>=' if key == 'since' else '<'} ?", [_when(key, value, now)]))
    else:  # sort
        if value.lower() not in SORTS:
            raise QueryError(f"sort: must be one of {', '.join(SORTS)} (got {value!r})")
        build.sort = value.lower()


_EXAMPLES = {
    "model": "8711c266f2", "lora": "inkwash", "sampler": "euler_a", "seed": "42", "size": "512x768",
    "status": "done", "rating": ">=4", "fav": "yes", "session": "2026-11", "since": "2026-11-01",
    "until": "2026-11-30", "sort": "rating",
}


def _when(key: str, value: str, now: datetime | None) -> str:
    """The ISO UTC bound for since:/until: (until a day means up to the end of it)."""
    now = now or datetime.now(timezone.utc)
    days = _DAYS.match(value)
    if days:
        moment = now - timedelta(days=int(days.group(1)))
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{key}: must be a date like 2026-11-01, a time like 2026-11-01T18:30, "
                         f"or Nd for N days ago (got {value!r})") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    date_only = len(value) == 10
    if key == "until":
        moment += timedelta(days=1) if date_only else timedelta(minutes=1) if len(value) <= 16 else timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Sessions: one folder per session, one append-only TOML file, images beside it.

`session.toml` is a header (`schema = 1`, ...) followed by `[[event]]` records.
Each record changes one entry (its `id`): `queued` creates it with the full
recipe; `started`, `done`, `failed`, `cancelled`, `mark`, `deleted`, `restored`
add to it, and a later value wins. Nothing is ever rewritten, so marks and
undo are appends too, and the file reads as a history.

Every record is written with one `os.write` under an exclusive `flock` on the
file, then fsynced, and ends with a `# end <id>` line. A record without that
line at the end of the file was torn by a crash: the loader reports it and
reads everything before it; the next writer copies it into
`session.toml.torn-<time>` and cuts it off before appending, so the file is
whole TOML again and no byte is lost. Before appending, a writer reads what
other processes appended since it last looked, so ids never collide.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from studio import __version__
from studio.atomic import write_text_atomically
from studio.recipe import Recipe, RecipeError
from studio.store.tomlio import dump_table, fast_parse, fast_parse_records

try:
    import fcntl
except ImportError:  # Windows: fall back to a lock file beside the session
    fcntl = None  # type: ignore[assignment]

SCHEMA = 1
FILE_NAME = "session.toml"
STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINAL = frozenset({"done", "failed", "cancelled"})
KINDS = frozenset(
    {"queued", "started", "done", "failed", "cancelled", "mark", "deleted", "restored"}
)
_SEP = b"\n[[event]]\n"
_END_LINE = re.compile(rb"^# end (?:\d+|header)[ \t\r]*$", re.MULTILINE)
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,99}\Z")
_OWNER = f"{socket.gethostname()}:{os.getpid()}"

_HEADER = """\
# studio session: plain TOML, append-only. Each [[event]] adds to or changes the
# entry with its id (later values win); "# end" lines close each record.
schema = {schema}
created = "{created}"
studio_version = "{version}"
# end header
"""


class SessionError(Exception):
    """A session that cannot be read or written; the message is one line."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    """One generation as it stands now: every event for its id folded together."""

    id: int
    time: str  # when it was queued (ISO-8601 UTC)
    status: str  # queued, running, done, failed, cancelled
    recipe: Recipe  # as queued, updated with what finishing reported (device, dtype)
    model_hash: str = ""
    images: tuple[str, ...] = ()
    duration: float | None = None
    device: str = ""
    reason: str = ""
    favourite: bool = False
    rating: int = 0
    note: str = ""
    deleted: bool = False
    finished: str = ""  # when it reached its final status
    owner: str = ""  # host:pid of the process that queued it

    @property
    def stem(self) -> str:
        """The file-name stem for this entry's images (`0007` -> 0007.png, 0007-1.png)."""
        return f"{self.id:04d}"

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class SessionSummary:
    name: str
    path: Path
    entries: int
    first: str  # ISO time of the first entry, "" when empty
    last: str
    warning: str = ""


# Entry's own defaults, so the fold below starts every entry from the one field list.
_ENTRY_DEFAULTS = {f.name: f.default for f in fields(Entry) if f.default is not MISSING}


class _State:
    """The mutable fold of one entry; `Entry` is its frozen snapshot.

    `values` holds Entry's fields by name (all but the parsed recipe), so adding
    a field to Entry needs no second list here.
    """

    __slots__ = ("line", "recipe_data", "recipe", "values")

    def __init__(self, entry_id: int, time: str, line: int, recipe_data: dict[str, Any], owner: str) -> None:
        self.line = line  # where it was queued, for error messages
        self.recipe_data = recipe_data
        self.recipe: Recipe | None = None
        self.values: dict[str, Any] = {
            **_ENTRY_DEFAULTS, "id": entry_id, "time": time, "status": "queued", "owner": owner
        }

    def snapshot(self) -> Entry:
        assert self.recipe is not None
        model_hash = self.values["model_hash"] or self.recipe.model_hash
        return Entry(recipe=self.recipe, **{**self.values, "model_hash": model_hash})


# --- reading ---------------------------------------------------------------

_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
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


def _check_event(ev: Any) -> str:
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
    allowed = _FIELDS[kind]
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


def _parse_record(text: str) -> dict[str, Any]:
    """One record's text (what follows its `[[event]]` line) -> its event dict."""
    ev = fast_parse(text, "event")
    if ev is not None:
        return ev
    data = tomllib.loads("[[event]]\n" + text)
    events = data.get("event")
    if set(data) != {"event"} or not isinstance(events, list) or len(events) != 1:
        raise ValueError("a record must hold exactly one [[event]] table")
    return events[0]


@dataclass
class _Scan:
    """What reading a stretch of the file found."""

    header: dict[str, Any] | None = None
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (line, event)
    problems: list[str] = field(default_factory=list)
    consumed: int = 0  # absolute offset up to which the bytes were read as whole records
    lines: int = 0  # newlines in the consumed bytes
    torn: tuple[int, int] | None = None  # (offset, line) where a torn last record starts


def _scan(data: bytes, base: int, base_line: int, label: str, with_header: bool) -> _Scan:
    """Split `data` (file bytes from offset `base`) into records and parse them.

    `base_line` is the line number of data's first line. With `with_header`, the
    first piece is the session header; otherwise it must be blank (we start
    right after a record we have already read).
    """
    scan = _Scan()
    records: list[tuple[int, bytes]] = []  # (line of `[[event]]`, the bytes after it)
    pieces = data.split(_SEP)
    last = len(pieces) - 1
    start = 0  # offset of the current piece within data
    header_line = base_line  # for records: the line of their `[[event]]`
    for index, piece in enumerate(pieces):
        first_line = header_line if index == 0 else header_line + 1
        next_header = first_line + piece.count(b"\n") + 1
        if index == last:
            cut = _complete_length(piece, index == 0, with_header)
            if cut < len(piece):
                torn_at = start + cut if cut >= 0 else start - len(_SEP) + 1
                torn_line = first_line + piece[: max(cut, 0)].count(b"\n") if cut >= 0 else header_line
                scan.torn = (base + torn_at, torn_line)
                piece = piece[: max(cut, 0)]
                if cut < 0 or (index == 0 and not with_header):
                    break
        if index == 0:
            _read_piece(piece, index, header_line, first_line, label, with_header, scan)
        else:
            records.append((header_line, piece))
        start += len(piece) + len(_SEP)
        header_line = next_header
    _read_records(records, label, scan)
    end = scan.torn[0] - base if scan.torn else len(data)
    scan.consumed = base + end
    scan.lines = data.count(b"\n", 0, end)
    return scan


def _complete_length(piece: bytes, is_first: bool, with_header: bool) -> int:
    """How much of the file's last piece is whole; -1 when none of the record is.

    A torn write leaves a prefix of "\\n[[event]]\\n...# end N\\n" after the last
    closing line; the bytes after that line, unless blank, are the torn part.
    """
    closes = [m.end() + 1 for m in _END_LINE.finditer(piece) if piece[m.end() : m.end() + 1] == b"\n"]
    if closes:
        close = closes[-1]
        return len(piece) if not piece[close:].strip() else close
    if is_first:
        if with_header:
            return len(piece)  # a header without "# end header": a hand edit; read it
        return len(piece) if not piece.strip() else 0
    return -1


def _read_records(records: list[tuple[int, bytes]], label: str, scan: _Scan) -> None:
    """Parse every record in one go when they are as the writer wrote them, else one by one."""
    if len(records) > 1:
        try:
            events = fast_parse_records(_SEP.join(piece for _, piece in records).decode("utf-8"))
        except (UnicodeDecodeError, RecursionError):
            events = None
        if events is not None and len(events) == len(records):
            for (line, _), ev in zip(records, events):
                _accept_event(ev, line, label, scan)
            return
    for line, piece in records:
        _read_piece(piece, 1, line, line + 1, label, False, scan)


def _accept_event(ev: Any, line: int, label: str, scan: _Scan) -> None:
    problem = _check_event(ev)
    if problem:
        where = ev.get("id") if isinstance(ev, dict) else None
        tag = f" (entry {where})" if isinstance(where, int) and not isinstance(where, bool) else ""
        scan.problems.append(f"{label}:{line}{tag}: {problem}")
    else:
        scan.events.append((line, ev))


def _read_piece(
    piece: bytes, index: int, header_line: int, first_line: int, label: str,
    with_header: bool, scan: _Scan,
) -> None:
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = first_line + piece[: exc.start].count(b"\n")
        scan.problems.append(f"{label}:{bad_line}: not valid UTF-8 text")
        return
    if index == 0:
        _read_header(text, with_header, label, first_line, scan)
        return
    try:
        ev = _parse_record(text)
    except RecursionError:
        scan.problems.append(f"{label}:{header_line}: values nested too deeply")
        return
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        scan.problems.append(_toml_problem(label, header_line, exc))
        return
    _accept_event(ev, header_line, label, scan)


def _read_header(text: str, with_header: bool, label: str, line: int, scan: _Scan) -> None:
    if not with_header:
        if text.strip():
            scan.problems.append(f"{label}:{line}: unexpected text between records")
        return
    try:
        header = tomllib.loads(text)
    except RecursionError:
        scan.problems.append(f"{label}:{line}: values nested too deeply")
        return
    except tomllib.TOMLDecodeError as exc:
        scan.problems.append(_toml_problem(label, line, exc))
        return
    schema = header.get("schema")
    if isinstance(schema, bool) or not isinstance(schema, int):
        scan.problems.append(f"{label}: field 'schema' is missing from the header")
    elif schema > SCHEMA:
        scan.problems.append(
            f"{label}: schema {schema} was written by a newer studio (this one reads {SCHEMA})"
        )
    scan.header = header


def _toml_problem(label: str, first_line: int, exc: Exception) -> str:
    message = str(exc)
    match = _TOML_POS.search(message)
    if match:
        line = first_line + int(match.group(1)) - 1
        message = _TOML_POS.sub("", message).strip()
        return f"{label}:{line}: {message} (column {match.group(2)})"
    return f"{label}:{first_line}: {message}"


# --- the session ------------------------------------------------------------


class Session:
    """One session folder. Thread-safe; safe against other processes on the same file."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.file = self.path / FILE_NAME
        self.name = self.path.name
        self.read_only = read_only
        self.warnings: list[str] = []
        self._mutex = threading.RLock()
        self._states: dict[int, _State] = {}
        self._offset = 0
        self._lines = 0
        self._torn: tuple[int, int] | None = None
        self.reload()

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, read_only={self.read_only})"

    # reading

    def reload(self) -> None:
        """Read the whole file again. Raises SessionError unless it reads cleanly
        (a torn last record is only a warning); read-only sessions read what they can."""
        with self._mutex:
            try:
                with open(self.file, "rb") as handle:
                    with _locked(handle.fileno(), self.file, shared=True):
                        self._load(handle.fileno())
            except FileNotFoundError:
                raise SessionError(f"{self.file}: no such session file") from None
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot read ({exc.strerror})") from None

    def _load(self, fd: int) -> None:
        """Read the whole file from `fd`; the caller holds the lock."""
        size = os.fstat(fd).st_size
        data = _pread(fd, size, 0) if size else b""
        self._states, self.warnings, self._lines = {}, [], 0
        scan = _scan(data, 0, 1, str(self.file), with_header=True)
        if scan.header is None and not scan.problems:
            scan.problems.append(f"{self.file}: no session header")
        self._apply(scan)

    def _apply(self, scan: _Scan) -> None:
        problems = list(scan.problems)
        touched: set[int] = set()
        for line, ev in scan.events:
            problem = self._fold(ev, line)
            if problem:
                problems.append(f"{self.file}:{line} (entry {ev['id']}): {problem}")
            else:
                touched.add(ev["id"])
        for entry_id in touched:
            state = self._states[entry_id]
            try:
                state.recipe = Recipe.from_dict(state.recipe_data)
            except (RecipeError, TypeError) as exc:
                problems.append(f"{self.file}:{state.line} (entry {entry_id}): recipe: {exc}")
                del self._states[entry_id]
        if problems and not self.read_only:
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise SessionError(first + more)
        self.warnings += problems
        self._offset, self._lines = scan.consumed, self._lines + scan.lines
        self._torn = scan.torn
        if scan.torn:
            self.warnings.append(
                f"{self.file}:{scan.torn[1]}: the last record is incomplete (a write was cut "
                f"short) and is left out; every earlier record is intact, and the next write "
                f"moves it to {FILE_NAME}.torn-<time>"
            )

    def _fold(self, ev: dict[str, Any], line: int) -> str:
        kind, entry_id = ev["kind"], ev["id"]
        state = self._states.get(entry_id)
        if kind == "queued":
            if state is not None:
                return f"id {entry_id} is queued twice"
            self._states[entry_id] = _State(
                entry_id, ev["time"], line, dict(ev["recipe"]), ev.get("owner", "")
            )
            return ""
        if state is None:
            return f"a {kind!r} record for an entry that was never queued"
        values = state.values
        if kind == "started":
            if values["status"] not in FINAL:
                values["status"] = "running"
            if "owner" in ev:
                values["owner"] = ev["owner"]
        elif kind in FINAL:
            values.update(status=kind, finished=ev["time"], reason=ev.get("reason", ""))
            if kind == "done":
                state.recipe_data.update(ev.get("recipe", {}))
                values.update(
                    images=tuple(ev.get("images", ())),
                    duration=ev.get("duration"),
                    device=ev.get("device", ""),
                    model_hash=ev.get("model_hash", values["model_hash"]),
                )
        elif kind == "mark":
            values.update({key: ev[key] for key in _FIELDS["mark"] if key in ev})
        else:
            values["deleted"] = kind == "deleted"
        return ""

    def entries(self, include_deleted: bool = False) -> list[Entry]:
        """Every entry as it stands now, oldest first."""
        with self._mutex:
            return [
                s.snapshot()
                for _, s in sorted(self._states.items())
                if include_deleted or not s.values["deleted"]
            ]

    def __len__(self) -> int:
        return sum(1 for s in self._states.values() if not s.values["deleted"])

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def get(self, entry_id: int | str) -> Entry:
        with self._mutex:
            try:
                return self._states[int(entry_id)].snapshot()
            except (KeyError, ValueError):
                raise SessionError(f"session {self.name} has no entry {entry_id}") from None

    def unfinished(self) -> list[Entry]:
        """Queued or running entries left behind by a process that is gone (for resume)."""
        with self._mutex:
            return [
                s.snapshot()
                for _, s in sorted(self._states.items())
                if s.values["status"] not in FINAL and not s.values["deleted"]
                and not _owner_alive(s.values["owner"])
            ]

    def image_path(self, name: str) -> Path:
        return self.path / name

    def refresh(self) -> None:
        """Pick up records other processes appended since we last read (cheap)."""
        with self._mutex:
            try:
                with open(self.file, "rb") as handle:
                    with _locked(handle.fileno(), self.file, shared=True):
                        self._catch_up(handle.fileno())
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot read ({exc.strerror})") from None

    def _catch_up(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == self._offset:
            return
        if size < self._offset:
            self._load(fd)  # the file was replaced or cut; start over
            return
        data = _pread(fd, size - self._offset, self._offset)
        scan = _scan(data, self._offset, self._lines + 1, str(self.file), with_header=False)
        if scan.problems:  # perhaps rewritten by hand in an editor: read it all again
            self._load(fd)
            return
        warnings = self.warnings
        self.warnings = []
        self._apply(scan)
        self.warnings = warnings + [w for w in self.warnings if w not in warnings]

    # writing

    def queue(self, recipe: Recipe) -> Entry:
        """Record a job before it runs, so a crash leaves it to resume."""
        with self._mutex:
            return self._append("queued", None, recipe=recipe.to_dict(), owner=_OWNER)

    def start(self, entry_id: int) -> None:
        self._append("started", entry_id, owner=_OWNER)

    def finish(self, entry_id: int, recipe: Recipe, images: list[str], duration: float) -> None:
        """Record a finished job; `recipe` is what was actually used (device, dtype...)."""
        with self._mutex:
            queued = self._state(entry_id).recipe_data
            used = recipe.to_dict()
            changed = {k: v for k, v in used.items() if queued.get(k) != v}
            # The engine reports the model's display name; keep what was queued (a name
            # or path that resolves here), and its hash says which weights were used.
            changed.pop("model", None)
            fields: dict[str, Any] = {
                "images": [str(name) for name in images],
                "duration": round(float(duration), 3),
                "device": recipe.device,
                "model_hash": recipe.model_hash,
            }
            if changed:
                fields["recipe"] = changed
            self._append("done", entry_id, **fields)

    def fail(self, entry_id: int, reason: str) -> None:
        self._append("failed", entry_id, reason=str(reason))

    def cancel(self, entry_id: int, reason: str = "") -> None:
        self._append("cancelled", entry_id, reason=str(reason))

    def mark(
        self,
        entry_id: int,
        favourite: bool | None = None,
        rating: int | None = None,
        note: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {}
        if favourite is not None:
            fields["favourite"] = bool(favourite)
        if rating is not None:
            if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
                raise SessionError(f"rating must be a whole number 0–5 (got {rating!r})")
            fields["rating"] = rating
        if note is not None:
            fields["note"] = str(note)
        if fields:
            self._append("mark", entry_id, **fields)

    def delete(self, entry_id: int) -> None:
        """Hide an entry (its images stay on disk); `restore` undoes it."""
        self._append("deleted", entry_id)

    def restore(self, entry_id: int) -> None:
        self._append("restored", entry_id)

    def _state(self, entry_id: int) -> _State:
        try:
            return self._states[int(entry_id)]
        except (KeyError, ValueError):
            raise SessionError(f"session {self.name} has no entry {entry_id}") from None

    def _append(self, kind: str, entry_id: int | None, **fields: Any) -> Entry:
        if self.read_only:
            raise SessionError(f"session {self.name} is open read-only")
        with self._mutex:
            try:
                fd = os.open(self.file, os.O_RDWR | os.O_APPEND)
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot write ({exc.strerror})") from None
            try:
                with _locked(fd, self.file, shared=False):
                    self._catch_up(fd)
                    if self._torn is not None:
                        self._set_aside_torn(fd)
                    if entry_id is None:
                        entry_id = max(self._states, default=0) + 1
                    else:
                        self._state(entry_id)
                    ev = {"id": entry_id, "kind": kind, "time": now_iso(), **fields}
                    record = record_bytes(ev)
                    written = os.write(fd, record)
                    if written != len(record):
                        raise OSError(28, "short write (disk full?)")
                    os.fsync(fd)
                    problem = _check_event(ev) or self._fold(ev, self._lines + 2)
                    if problem:  # cannot happen for what we write; fail loudly if it does
                        raise SessionError(f"{self.file}: wrote a bad record: {problem}")
                    state = self._states[entry_id]
                    state.recipe = Recipe.from_dict(state.recipe_data)
                    self._offset += len(record)
                    self._lines += record.count(b"\n")
                    return state.snapshot()
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot write ({exc.strerror or exc})") from None
            finally:
                os.close(fd)

    def _set_aside_torn(self, fd: int) -> None:
        """Copy the torn tail into its own file, then cut it off the session file."""
        assert self._torn is not None
        start, line = self._torn
        size = os.fstat(fd).st_size
        tail = _pread(fd, size - start, start)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.file.with_name(f"{FILE_NAME}.torn-{stamp}")
        with open(aside, "xb") as handle:
            handle.write(tail)
            handle.flush()
            os.fsync(handle.fileno())
        os.ftruncate(fd, start)
        os.fsync(fd)
        self._torn = None
        self.warnings.append(
            f"{self.file}:{line}: the torn last record was moved to {aside.name}"
        )


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows has no pread
    return os.read(fd, size)


def record_bytes(ev: dict[str, Any]) -> bytes:
    """The bytes of one record as appended: a blank line, the event, its end line."""
    lines = dump_table("event", ev, array=True)
    return ("\n" + "\n".join(lines) + f"\n# end {ev['id']}\n").encode("utf-8")


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if owner == _OWNER:
        return True  # our own jobs are still in our engine
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class _locked:
    """An flock on an open file; a lock file beside it where flock is missing."""

    def __init__(self, fd: int, path: Path, shared: bool) -> None:
        self.fd, self.path, self.shared = fd, path, shared
        self._fallback: Any = None

    def __enter__(self) -> None:
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        else:
            from filelock import FileLock

            self._fallback = FileLock(str(self.path) + ".lock")
            self._fallback.acquire()

    def __exit__(self, *exc: object) -> None:
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        elif self._fallback is not None:
            self._fallback.release()


# --- the store --------------------------------------------------------------


class SessionStore:
    """The sessions folder: one sub-folder per session."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create(self, name: str | None = None) -> Session:
        if name is None:
            stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
            name = f"{stamp}-{secrets.token_hex(2)}"
        if not _NAME.match(name):
            raise SessionError(
                f"bad session name {name!r}: use letters, digits, spaces, '.', '_', '+' or '-'"
            )
        folder = self.root / name
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
        except FileExistsError:
            raise SessionError(f"session {name!r} already exists in {self.root}") from None
        except OSError as exc:
            raise SessionError(f"cannot create session in {self.root}: {exc.strerror}") from None
        header = _HEADER.format(schema=SCHEMA, created=now_iso(), version=__version__)
        write_text_atomically(folder / FILE_NAME, header)
        return Session(folder)

    def find(self, name: str) -> Path:
        """The folder for `name`: a session name, a unique prefix of one, or a path."""
        direct = Path(name).expanduser()
        if (direct / FILE_NAME).is_file() and (os.sep in name or name.startswith(".")):
            return direct
        if (self.root / name / FILE_NAME).is_file():
            return self.root / name
        matches = [p for p in self._folders() if p.name.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches[:5])
            raise SessionError(f"{name!r} matches several sessions: {names}")
        if (direct / FILE_NAME).is_file():
            return direct
        raise SessionError(f"no session {name!r} in {self.root}")

    def open(self, name: str, read_only: bool = False) -> Session:
        return Session(self.find(name), read_only=read_only)

    def latest(self) -> Session | None:
        folders = self._folders()
        return Session(folders[-1]) if folders else None

    def _folders(self) -> list[Path]:
        try:
            children = sorted(self.root.iterdir(), key=lambda p: p.name)
        except OSError:
            return []
        return [p for p in children if (p / FILE_NAME).is_file()]

    def list(self) -> list[SessionSummary]:
        """Every session, oldest name first; unreadable ones carry a warning."""
        summaries = []
        for folder in self._folders():
            try:
                session = Session(folder, read_only=True)
            except SessionError as exc:
                summaries.append(SessionSummary(folder.name, folder, 0, "", "", str(exc)))
                continue
            entries = session.entries()
            summaries.append(
                SessionSummary(
                    folder.name,
                    folder,
                    len(entries),
                    entries[0].time if entries else "",
                    entries[-1].time if entries else "",
                    session.warnings[0] if session.warnings else "",
                )
            )
        return summaries


__all__ = ["Entry", "Session", "SessionError", "SessionStore", "SessionSummary"]

"""The append-only record file under a session: framing, locking, torn tails.

The file is a TOML header followed by records, each `\\n[[event]]\\n...` and
closed by a `# end <id>` line. Every record is appended with one `os.write`
under an exclusive `flock`, then fsynced. A last record without its end line
was torn by a crash: reading reports where it starts and reads everything
before it; the next writer copies it into `<file>.torn-<time>` and cuts it off
before appending, so the file is whole TOML again and no byte is lost.

This module knows records only as tables with an integer `id`; what they
mean is the caller's business (its `check` says whether one is well formed).
"""

from __future__ import annotations

import os
import re
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Iterator, Protocol

from studio.store.folders import SCHEMA
from studio.store.recipe_text import RecipeTexts
from studio.store.tomlio import dump_table, fast_parse, fast_parse_records

try:
    import fcntl
except ImportError:  # Windows: fall back to a lock file beside the journal
    fcntl = None  # type: ignore[assignment]

SEP = b"\n[[event]]\n"
_END_LINE = re.compile(rb"^# end (?:\d+|header)[ \t\r]*$", re.MULTILINE)
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
# Records parsed at a time when reading a whole file: few enough that the parsed
# tables of a big session never all exist at once, and that the one `json.loads`
# a stretch takes never holds the interpreter long (a face's event loop shares it).
CHUNK = 500
BLOCK = 1 << 23  # bytes read at a time when reading a whole file

# check(record, file, line) -> "" for a good record, else its one-line problem.
Check = Callable[[Any, str, int], str]


class Bulk(Protocol):
    """What reads some records itself, where the caller knows their shape (studio.store.bulk)."""

    def take(self, text: str, pos: int, line: int) -> int:
        """Read the records from `text[pos]` (just after a separator; the first's `[[event]]` on
        `line`): where the last of them ends (at a separator or the end of `text`), else -1."""
        ...

    def commit(self) -> tuple[int, int, int]:
        """Fold what `take` read last once all before it is, perhaps only its first records: (how
        many it folded, where the last ends, the line of the next's `[[event]]`), or (0, -1, -1)."""
        ...


def record_bytes(ev: dict[str, Any]) -> bytes:
    """The bytes of one record as appended: a blank line, the event, its end line."""
    lines = dump_table("event", ev, array=True)
    return ("\n" + "\n".join(lines) + f"\n# end {ev['id']}\n").encode("utf-8")


@dataclass
class Scan:
    """What reading a stretch of the file found."""

    first_line: int  # the line number of the stretch's first line
    whole: bool  # read from the start of the file (the caller starts its fold over)
    header: dict[str, Any] | None = None
    # (line, record), in file order; reading a whole file reads and parses them as they
    # are iterated (once), and `problems`, `consumed`, `lines` and `torn` are complete
    # only after that.
    events: Iterable[tuple[int, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    consumed: int = 0  # absolute offset up to which the bytes were read as whole records
    lines: int = 0  # newlines in the consumed bytes
    torn: tuple[int, int] | None = None  # (offset, line) where a torn last record starts
    # set before `events` is iterated: records it takes are not among them (whole files only)
    bulk: Bulk | None = None


class Journal:
    """One record file and how far it has been read. Not thread-safe: the caller serialises."""

    def __init__(self, path: Path, check: Check) -> None:
        self.path = Path(path)
        self.check = check
        self.offset = 0  # bytes read so far as whole records
        self.lines = 0  # newlines in them
        self.torn: tuple[int, int] | None = None  # (offset, line) of a torn tail after them

    @contextmanager
    def locked(self, write: bool = False) -> Iterator[int]:
        """An fd on the file under a shared lock, or an exclusive one (appending) with `write`."""
        if write:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        else:
            fd = os.open(self.path, os.O_RDONLY)
        try:
            with _locked(fd, self.path, shared=not write):
                yield fd
        finally:
            os.close(fd)

    def read_all(self, fd: int) -> Scan:
        """Every record in the file; the caller holds the lock and `commit`s what it accepts."""
        size = os.fstat(fd).st_size
        scan = _scan_stream(_split_file(fd, size), str(self.path), self.check)
        if scan.header is None and not scan.problems:
            scan.problems.append(f"{self.path}: no session header")
        return scan

    def read_new(self, fd: int) -> Scan | None:
        """What was appended since the last `commit`; None when nothing was.

        When the file shrank (replaced or cut) or the new bytes do not read
        cleanly (perhaps rewritten by hand in an editor), the whole file again:
        `scan.whole` is then True.
        """
        size = os.fstat(fd).st_size
        if size == self.offset:
            return None
        if size < self.offset:
            return self.read_all(fd)
        data = _pread(fd, size - self.offset, self.offset)
        scan = _scan(data, self.offset, self.lines + 1, str(self.path), False, self.check)
        return self.read_all(fd) if scan.problems else scan

    def read_tail(self, fd: int, size: int) -> Scan:
        """The whole records among the file's last `size` bytes (from the first record
        that starts in them); parsed at once, never committed: a preview, not the fold."""
        end = os.fstat(fd).st_size
        start = max(0, end - size)
        data = _pread(fd, end - start, start)
        if start:
            cut = data.find(SEP)
            data = data[cut:] if cut >= 0 else b""
        scan = _scan(data, end - len(data), 1, str(self.path), not start, self.check)
        scan.events = list(scan.events)
        return scan

    def commit(self, scan: Scan) -> None:
        """Count `scan`'s records as read."""
        self.offset = scan.consumed
        self.lines = scan.first_line - 1 + scan.lines
        self.torn = scan.torn

    def set_aside_torn(self, fd: int) -> str:
        """Copy a torn tail into its own file, then cut it off; a note saying so, or "".

        The caller holds the exclusive lock (`locked(write=True)`).
        """
        if self.torn is None:
            return ""
        start, line = self.torn
        size = os.fstat(fd).st_size
        tail = _pread(fd, size - start, start)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
        with open(aside, "xb") as handle:
            handle.write(tail)
            handle.flush()
            os.fsync(handle.fileno())
        os.ftruncate(fd, start)
        os.fsync(fd)
        self.torn = None
        return f"{self.path}:{line}: the torn last record was moved to {aside.name}"

    def append(self, fd: int, ev: dict[str, Any]) -> int:
        """Write one record and fsync it; the line of its `[[event]]`.

        The caller holds the exclusive lock, has read what is new and has set
        aside any torn tail, so the record lands right after what it has read.
        """
        record = record_bytes(ev)
        written = os.write(fd, record)
        if written != len(record):
            raise OSError(28, "short write (disk full?)")
        os.fsync(fd)
        line = self.lines + 2
        self.offset += len(record)
        self.lines += record.count(b"\n")
        return line


# --- reading records out of bytes ----------------------------------------------


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


def _scan(data: bytes, base: int, base_line: int, label: str, with_header: bool, check: Check) -> Scan:
    """Split `data` (file bytes from offset `base`) into records and parse them: see `_scan_pieces`."""
    return _scan_pieces(data.split(SEP), base, base_line, label, with_header, check)


def _split_file(fd: int, size: int) -> Iterator[tuple[bytes, bool]]:
    """The file's first `size` bytes, `BLOCK` at a time, cut at separators: (whole records joined by
    SEP and followed by one, the first with the header, False), then (the file's last piece, True)."""
    carry, offset = b"", 0
    while offset < size:
        block = _pread(fd, min(BLOCK, size - offset), offset)
        if not block:
            break
        offset += len(block)
        data, block = carry + block, b""
        cut = data.rfind(SEP)
        if cut >= 0:
            yield data[:cut], False
        carry = data[cut + len(SEP) :] if cut >= 0 else data
    yield carry, True


def _scan_stream(batches: Iterator[tuple[bytes, bool]], label: str, check: Check) -> Scan:
    """A whole file read as `_scan_pieces` reads it, but each block's records are parsed (and let
    go) before the next block is read, so the file's bytes never all exist at once. The header is
    read now; `consumed`, `lines` and `torn` are set once `events` has been iterated."""
    first, final = next(batches)
    if final:  # a header and nothing after it (or a file without a record separator)
        return _scan_pieces([first], 0, 1, label, True, check)
    cut = first.find(SEP)
    header, rest = (first, None) if cut < 0 else (first[:cut], first[cut + len(SEP) :])
    scan = Scan(first_line=1, whole=True)
    _read_piece(header, 0, 1, 1, label, True, check, scan)
    scan.events = _stream_events(header, rest, batches, label, check, scan)
    return scan


def _stream_events(
    header: bytes, rest: bytes | None, batches: Iterator[tuple[bytes, bool]], label: str, check: Check, scan: Scan
) -> Iterator[tuple[int, dict[str, Any]]]:
    texts = RecipeTexts()
    bulk = scan.bulk
    offset, lines = len(header) + len(SEP), header.count(b"\n") + 2  # bytes and newlines read as whole records
    head = lines  # the line of the next record's `[[event]]`
    for data, final in chain([] if rest is None else [(rest, False)], batches):
        if final:
            cut = _complete_length(data, False, True)
            records = [(head, data)]
            if cut < len(data):
                torn_at = offset + cut if cut >= 0 else offset - len(SEP) + 1
                torn_line = head + 1 + data[:cut].count(b"\n") if cut >= 0 else head
                scan.torn = (torn_at, torn_line)
                records = [(head, data[:cut])] if cut >= 0 else []
                offset, lines = torn_at, lines + (data[:cut].count(b"\n") if cut >= 0 else -1)
            else:
                offset, lines = offset + len(data), lines + data.count(b"\n")
            del data
            yield from _parse_lazily(records, label, check, scan, texts)
            continue
        if bulk is not None:
            count = yield from _read_in_bulk(data, head, bulk, label, check, scan, texts)
        else:
            count = data.count(b"\n")
            yield from _parse_lazily(_records_of(data, head), label, check, scan, texts)
        offset, lines, head = offset + len(data) + len(SEP), lines + count + 2, head + count + 2
        del data
    scan.consumed, scan.lines = offset, lines


def _records_of(data: bytes, head: int) -> list[tuple[int, bytes]]:
    """Whole records joined by SEP, the first's `[[event]]` on line `head`: (line of `[[event]]`, bytes after it)."""
    pieces = data.split(SEP)
    return list(zip(accumulate(map((2).__add__, map(bytes.count, pieces, repeat(b"\n"))), initial=head), pieces))


def _read_in_bulk(
    data: bytes, head: int, bulk: Bulk, label: str, check: Check, scan: Scan, texts: RecipeTexts
) -> Generator[tuple[int, dict[str, Any]], None, int]:
    """`_parse_lazily` of `_records_of(data, head)`, but what `bulk` takes it takes, in its place in the
    file (each run of the others read, and folded by the caller, before `bulk` folds what follows)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield from _parse_lazily(_records_of(data, head), label, check, scan, texts)
        return data.count(b"\n")
    rest: list[tuple[int, bytes]] = []  # records for the general path, not yet read
    pos, line, size = 0, head, len(text)
    take, commit, find, count, sep = bulk.take, bulk.commit, text.find, text.count, SEP.decode()
    while pos <= size:
        end = take(text, pos, line) if pos < size else -1
        if end >= 0:
            if rest:  # read (and folded by the caller) before what `bulk` read is folded
                yield from _parse_lazily(rest, label, check, scan, texts)
                rest = []
            taken, end, after = commit()
            if taken:
                line, pos = after, end + len(sep)
                continue
        end = find(sep, pos)
        end = size if end < 0 else end
        rest.append((line, text[pos:end].encode("utf-8")))
        line += count("\n", pos, end) + 2
        pos = end + len(sep)
    yield from _parse_lazily(rest, label, check, scan, texts)
    return line - head - 2  # the newlines in `data`


def _scan_pieces(pieces: list[bytes], base: int, base_line: int, label: str, with_header: bool, check: Check) -> Scan:
    """Read `pieces` (file bytes from offset `base`, split at every SEP) as records; takes `pieces`.

    `base_line` is the line number of the first piece's first line. With
    `with_header`, the first piece is the session header; otherwise it must be
    blank (we start right after a record we have already read).
    """
    scan = Scan(first_line=base_line, whole=with_header)
    counts = list(map(bytes.count, pieces, repeat(b"\n")))
    last = len(pieces) - 1
    # the line of each record's `[[event]]`: a record's next is its newlines and SEP's two on
    heads = list(accumulate(map((2).__add__, counts[1:-1]), initial=base_line + counts[0] + 1)) if last else []
    size = sum(map(len, pieces)) + len(SEP) * last
    lines = sum(counts) + 2 * last
    piece = pieces[last]
    header_line = heads[-1] if last else base_line
    first_line = header_line + 1 if last else base_line
    cut = _complete_length(piece, last == 0, with_header)
    if cut < len(piece):
        start = size - len(piece)
        torn_at = start + cut if cut >= 0 else start - len(SEP) + 1
        torn_line = first_line + piece[: max(cut, 0)].count(b"\n") if cut >= 0 else header_line
        scan.torn = (base + torn_at, torn_line)
        size = torn_at
        lines += (piece[:cut].count(b"\n") if cut >= 0 else -1) - counts[last]
        pieces[last] = piece[: max(cut, 0)]
        if cut < 0 or (last == 0 and not with_header):
            pieces.pop()
    del piece
    if pieces:
        _read_piece(pieces[0], 0, base_line, base_line, label, with_header, check, scan)
    records = list(zip(heads, pieces[1:]))  # (line of `[[event]]`, the bytes after it)
    pieces.clear()
    if with_header:
        scan.events = _parse_lazily(records, label, check, scan)
    else:
        scan.events = list(_parse_lazily(records, label, check, scan))  # read_new wants its problems now
    scan.consumed = base + size
    scan.lines = lines
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


def _parse_lazily(
    records: list[tuple[int, bytes]], label: str, check: Check, scan: Scan, texts: RecipeTexts | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The good records, `CHUNK` at a time; each stretch's bytes are let go once parsed."""
    texts = texts or RecipeTexts()  # recipe tables' shared text, parsed once for the whole read
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        records[start : start + CHUNK] = [(0, b"")] * len(chunk)
        yield from _read_records(chunk, label, check, scan, texts)


def _read_records(
    records: list[tuple[int, bytes]], label: str, check: Check, scan: Scan, texts: RecipeTexts | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Parse a stretch of records in one go when they are as the writer wrote them, else one by one."""
    if len(records) > 1:
        try:
            events = fast_parse_records(SEP.join(piece for _, piece in records).decode("utf-8"), texts)
        except (UnicodeDecodeError, RecursionError):
            events = None
        if events is not None and len(events) == len(records):
            problems = scan.problems
            for (line, _), ev in zip(records, events):
                problem = check(ev, label, line)
                if not problem:
                    yield line, ev
                else:
                    problems.append(problem)
            return
    for line, piece in records:
        ev = _read_piece(piece, 1, line, line + 1, label, False, check, scan)
        if ev is not None:
            yield line, ev


def _accept(ev: Any, line: int, label: str, check: Check, scan: Scan) -> bool:
    problem = check(ev, label, line)
    if problem:
        scan.problems.append(problem)
    return not problem


def _read_piece(
    piece: bytes, index: int, header_line: int, first_line: int, label: str,
    with_header: bool, check: Check, scan: Scan,
) -> dict[str, Any] | None:
    """The header (into `scan`) or one record: the record when it is good, else None."""
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = first_line + piece[: exc.start].count(b"\n")
        scan.problems.append(f"{label}:{bad_line}: not valid UTF-8 text")
        return None
    if index == 0:
        _read_header(text, with_header, label, first_line, scan)
        return None
    try:
        ev = _parse_record(text)
    except RecursionError:
        scan.problems.append(f"{label}:{header_line}: values nested too deeply")
        return None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        scan.problems.append(_toml_problem(label, header_line, exc))
        return None
    return ev if _accept(ev, header_line, label, check, scan) else None


def _read_header(text: str, with_header: bool, label: str, line: int, scan: Scan) -> None:
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


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows has no pread
    return os.read(fd, size)


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

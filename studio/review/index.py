"""The review index: every entry of every session in one SQLite file, for search.

The session files stay the record; this is derived from them and can be
deleted at any time. It lives in the user cache folder (`STUDIO_CACHE_DIR`
overrides it), one file per sessions folder. `update()` looks at each
session file's size and modification time and reads only the sessions that
changed (a session this index object read before is caught up through the
store's own reader, new bytes only); `update_session` does one session, and
the service calls it after every record it appends. An index that cannot be
read (corrupt, from another version) is deleted and rebuilt, with a one-line
notice. WAL mode and one short transaction per session let two studio
processes update it at once: neither corrupts it, neither waits long.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.review.query import Query, parse_query
from studio.store.session import FILE_NAME, Entry, Session, SessionError

log = logging.getLogger("studio.review")
VERSION = 1
_CACHED_SESSIONS = 4  # sessions kept open to catch up on new bytes only
_BATCH = 50  # sessions per transaction in a full build: short, but not one commit each

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sessions(
    name TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, entries INTEGER, first TEXT, last TEXT);
CREATE TABLE IF NOT EXISTS entries(
    rowid INTEGER PRIMARY KEY, session TEXT NOT NULL, id INTEGER NOT NULL, time TEXT, status TEXT,
    model TEXT, model_hash TEXT, loras TEXT, sampler TEXT, seed INTEGER, width INTEGER, height INTEGER,
    rating INTEGER, favourite INTEGER, deleted INTEGER, prompt TEXT, negative TEXT, note TEXT,
    images TEXT, UNIQUE(session, id));
CREATE INDEX IF NOT EXISTS entries_time ON entries(time);
CREATE INDEX IF NOT EXISTS entries_rating ON entries(rating, time);
CREATE INDEX IF NOT EXISTS entries_seed ON entries(seed);
CREATE VIRTUAL TABLE IF NOT EXISTS entries_text USING fts5(
    prompt, negative, note, content='entries', content_rowid='rowid');
CREATE TRIGGER IF NOT EXISTS entries_ai AFTER INSERT ON entries BEGIN
    INSERT INTO entries_text(rowid, prompt, negative, note) VALUES (new.rowid, new.prompt, new.negative, new.note);
END;
CREATE TRIGGER IF NOT EXISTS entries_ad AFTER DELETE ON entries BEGIN
    INSERT INTO entries_text(entries_text, rowid, prompt, negative, note)
    VALUES ('delete', old.rowid, old.prompt, old.negative, old.note);
END;
CREATE TRIGGER IF NOT EXISTS entries_au AFTER UPDATE ON entries BEGIN
    INSERT INTO entries_text(entries_text, rowid, prompt, negative, note)
    VALUES ('delete', old.rowid, old.prompt, old.negative, old.note);
    INSERT INTO entries_text(rowid, prompt, negative, note) VALUES (new.rowid, new.prompt, new.negative, new.note);
END;
"""
_COLUMNS = ("session", "id", "time", "status", "model", "model_hash", "loras", "sampler", "seed",
            "width", "height", "rating", "favourite", "deleted", "prompt", "negative", "note", "images")
_UPSERT = (
    f"INSERT INTO entries({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT(session, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
)


def default_index_path(root: Path) -> Path:
    """Where the index for sessions folder `root` lives: the cache folder, one file per folder."""
    from studio.cachedir import cache_dir

    key = hashlib.sha256(str(Path(root).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return cache_dir() / "review" / f"index-{key}.sqlite"


@dataclass(frozen=True)
class Hit:
    """One matching entry, as the index has it (the session file has the full recipe)."""

    session: str
    id: int
    time: str
    status: str
    model: str
    model_hash: str
    sampler: str
    seed: int
    width: int
    height: int
    rating: int
    favourite: bool
    prompt: str
    negative: str
    note: str
    images: tuple[Path, ...]  # absolute paths

    @property
    def key(self) -> str:
        return f"{self.session}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["images"] = [str(p) for p in self.images]
        return data


@dataclass(frozen=True)
class SessionRow:
    name: str
    entries: int
    first: str
    last: str


class IndexBusy(Exception):
    """Another process held the index for longer than we wait; the update is skipped."""


class ReviewIndex:
    """The index of the sessions under `root`. Thread-safe (one lock around one connection)."""

    def __init__(self, root: Path, path: Path | None = None, notice: Callable[[str], None] | None = None,
                 timeout: float = 5.0) -> None:
        self.root = Path(root)
        self.path = Path(path) if path is not None else default_index_path(self.root)
        self.notice = notice or (lambda text: log.warning("%s", text))
        self.timeout = timeout
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        # name -> (session, its entries as last written here, the file state they reflect)
        self._open_sessions: OrderedDict[str, tuple[Session, dict[int, Entry], tuple[int, int]]] = OrderedDict()

    # -- the file ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            existed = self.path.exists()
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                self._rebuild_file(f"the review index {self.path} was unreadable ({exc}); rebuilding it")
                self._update_all(self._db)  # type: ignore[arg-type]
            else:
                if not existed:
                    self.notice(f"building the review index of {self.root} in {self.path}")
        assert self._db is not None
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # the index can be rebuilt: no fsync per commit
            version = _meta(db, "version")
            if version is None:
                db.executescript(_SCHEMA)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(VERSION),))
            elif version != str(VERSION):
                raise sqlite3.DatabaseError(f"version {version}, this studio writes {VERSION}")
            db.execute("SELECT count(*) FROM sessions").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild_file(self, why: str) -> None:
        """Delete the index file and start a fresh one; `why` is the one-line notice."""
        self.notice(why)
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(str(self.path) + suffix)
            except FileNotFoundError:
                pass
        self._open_sessions.clear()
        self._db = self._open()

    def _guarded(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work` on the connection; a corrupt file is rebuilt (with a notice) and `work` run again."""
        with self._lock:
            try:
                return work(self._connect())
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise IndexBusy(f"the review index is busy ({exc})") from None
                raise
            except sqlite3.DatabaseError as exc:
                self._rebuild_file(f"the review index {self.path} was unreadable ({exc}); rebuilding it")
                self._update_all(self._db)  # type: ignore[arg-type]
                return work(self._db)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._open_sessions.clear()

    # -- updating ------------------------------------------------------------------

    def update(self) -> int:
        """Bring the index up to date with every session file; the number of sessions read."""
        return self._guarded(self._update_all)

    def update_session(self, folder: Path, live: Session | None = None) -> None:
        """Bring one session up to date: cheap when this index read it before, or when
        `live` is the session object this process writes it through."""
        self._guarded(lambda db: self._update_one(db, Path(folder), live))

    def _update_all(self, db: sqlite3.Connection) -> int:
        known = {name: (size, mtime) for name, size, mtime in db.execute("SELECT name, size, mtime_ns FROM sessions")}
        present: dict[str, os.stat_result] = {}
        try:
            children = list(os.scandir(self.root))
        except OSError:
            children = []
        for child in children:
            try:
                present[child.name] = os.stat(os.path.join(child.path, FILE_NAME))
            except OSError:
                continue
        changed = [name for name, st in sorted(present.items()) if known.get(name) != (st.st_size, st.st_mtime_ns)]
        gone = [name for name in known if name not in present]
        if gone:
            with _transaction(db):
                for name in gone:
                    db.execute("DELETE FROM entries WHERE session = ?", (name,))
                    db.execute("DELETE FROM sessions WHERE name = ?", (name,))
                    self._open_sessions.pop(name, None)
        for start in range(0, len(changed), _BATCH):
            batch = []
            for name in changed[start : start + _BATCH]:
                read = self._read(self.root / name, present[name], keep=len(changed) <= _CACHED_SESSIONS)
                if read is not None:
                    batch.append(read)
            with _transaction(db):
                for read in batch:
                    _write_session(db, *read)
        return len(changed)

    def _update_one(self, db: sqlite3.Connection, folder: Path, live: Session | None) -> None:
        try:
            stat = os.stat(folder / FILE_NAME)
        except OSError:
            return
        read = self._read(folder, stat, keep=True, live=live)
        if read is not None:
            with _transaction(db):
                _write_session(db, *read)

    def _read(self, folder: Path, stat: os.stat_result, keep: bool, live: Session | None = None) -> tuple | None:
        """(name, stat, entries now, entries before or None, the file state `before` reflects).

        `stat` is taken before reading, so the size recorded never runs ahead of what
        was read. `live` is a session this process writes to (already in memory).
        """
        name = folder.name
        cached = self._open_sessions.pop(name, None)
        before, base = (cached[1], cached[2]) if cached is not None else (None, None)
        try:
            if live is not None:
                session = live
                session.refresh()  # what other processes appended, if anything
            elif cached is not None:
                session = cached[0]
                session.refresh()  # the store's reader: only the bytes appended since
            else:
                session = Session(folder, read_only=True)
        except SessionError as exc:
            log.warning("review index: %s", exc)
            return None
        now = {e.id: e for e in session.entries(include_deleted=True)}
        if keep:
            self._open_sessions[name] = (session, now, (stat.st_size, stat.st_mtime_ns))
            while len(self._open_sessions) > _CACHED_SESSIONS:
                self._open_sessions.popitem(last=False)
        return name, stat, now, before, base

    # -- reading -------------------------------------------------------------------

    def search(self, query: Query | str, limit: int | None = None, offset: int = 0) -> list[Hit]:
        query = parse_query(query) if isinstance(query, str) else query
        where, params = query.where()
        sql = (f"SELECT {', '.join('e.' + c for c in _HIT_COLUMNS)} FROM entries e WHERE {where} "
               f"ORDER BY {query.order()} LIMIT ? OFFSET ?")
        params += [-1 if limit is None else limit, offset]
        rows = self._guarded(lambda db: db.execute(sql, params).fetchall())
        return [self._hit(row) for row in rows]

    def count(self, query: Query | str) -> int:
        query = parse_query(query) if isinstance(query, str) else query
        where, params = query.where()
        return self._guarded(lambda db: db.execute(f"SELECT count(*) FROM entries e WHERE {where}", params).fetchone()[0])

    def sessions(self) -> list[SessionRow]:
        """Every indexed session, by name, with its entry count and first and last times."""
        rows = self._guarded(lambda db: db.execute("SELECT name, entries, first, last FROM sessions ORDER BY name").fetchall())
        return [SessionRow(*row) for row in rows]

    def _hit(self, row: tuple) -> Hit:
        values = dict(zip(_HIT_COLUMNS, row))
        folder = self.root / values["session"]
        values["images"] = tuple(folder / name for name in json.loads(values["images"] or "[]"))
        values["favourite"] = bool(values["favourite"])
        return Hit(**values)


_HIT_COLUMNS = ("session", "id", "time", "status", "model", "model_hash", "sampler", "seed", "width",
                "height", "rating", "favourite", "prompt", "negative", "note", "images")


def _row(session: str, entry: Entry) -> tuple:
    recipe = entry.recipe
    return (
        session, entry.id, entry.time, entry.status, recipe.model, entry.model_hash.lower(),
        "\n".join(lora.name.lower() for lora in recipe.loras), recipe.sampler, recipe.seed,
        recipe.width, recipe.height, entry.rating, int(entry.favourite), int(entry.deleted),
        recipe.prompt, recipe.negative_prompt, entry.note, json.dumps(list(entry.images)),
    )


def _write_session(db: sqlite3.Connection, name: str, stat: os.stat_result, now: dict[int, Entry],
                   before: dict[int, Entry] | None, base: tuple[int, int] | None) -> None:
    """Inside a transaction: store one session's entries and the file state they reflect.

    Only what changed since `before` when the index still holds `before` (its
    file state is `base`); everything again when another process wrote since.
    """
    held = db.execute("SELECT size, mtime_ns FROM sessions WHERE name = ?", (name,)).fetchone()
    if before is None or held is None or tuple(held) != base:
        db.execute("DELETE FROM entries WHERE session = ?", (name,))
        changed = list(now.values())
    else:
        gone = [(name, i) for i in before if i not in now]
        db.executemany("DELETE FROM entries WHERE session = ? AND id = ?", gone)
        changed = [e for i, e in now.items() if before.get(i) != e]
    db.executemany(_UPSERT, [_row(name, e) for e in changed])
    count, first, last = db.execute(
        "SELECT count(*), min(time), max(time) FROM entries WHERE session = ? AND deleted = 0", (name,)
    ).fetchone()
    db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
               (name, stat.st_size, stat.st_mtime_ns, count, first or "", last or ""))


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front, so two writers queue rather than deadlock."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            self.db.execute("ROLLBACK")


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return row[0] if row else None

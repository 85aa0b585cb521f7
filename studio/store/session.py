"""Sessions: one folder per session, one append-only TOML file, images beside it.

`session.toml` is a header (`schema = 1`, ...) followed by `[[event]]` records.
Each record changes one entry (its `id`): `queued` creates it with the full
recipe; `started`, `done`, `failed`, `cancelled`, `mark`, `deleted`, `restored`
add to it, and a later value wins. Nothing is ever rewritten, so marks and
undo are appends too, and the file reads as a history.

How records are framed, locked, appended and read back, torn tails included,
is `studio.store.journal`; this module is what they mean. Before appending, a
writer reads what other processes appended since it last looked, so ids never
collide. `Session.recover` tidies what a killed writer left in the folder.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from studio.recipe import Recipe, RecipeError
from studio.store.bulk import BulkFold
from studio.store.collector import held_off, keep
from studio.store.entries import FINAL, OWNER as _OWNER, Entry, EntryList, RecipeMemo, State, fold, left_behind, newest_of, own, settled
from studio.store.entries import owner_alive as _owner_alive  # noqa: F401  (studio.review.sessions)
from studio.store.folders import FILE_NAME, SessionError, SessionFolders, SessionSummary, now_iso  # noqa: F401  (re-exported)
from studio.store.folders import _NAME  # noqa: F401  (studio.review.sessions)
from studio.store.journal import SCHEMA, Journal, Scan, record_bytes  # noqa: F401  (tests: sessions from raw records)
from studio.store.records import check_event, check_record

# --- the session ------------------------------------------------------------


class Session:
    """One session folder. Thread-safe; safe against other processes on the same file."""

    def __init__(self, path: Path, read_only: bool = False, load: bool = True) -> None:
        """Opens and reads `path`; with `load=False` nothing is read until `load()`
        (or the first write, which reads first), so a face can paint before a long read."""
        self.path = Path(path)
        self.file = self.path / FILE_NAME
        self.name = self.path.name
        self.read_only = read_only
        self.warnings: list[str] = []
        self.loaded = False
        self._mutex = threading.RLock()
        self._states: dict[int, State] = {}
        self._ordered: list[State] | None = []  # the states by id; None when one was added
        self._epoch = 0  # lists of states handed out (entries(), snapshots): see `_own`
        self._kept = -1  # the offset of the snapshot this fold was read from or last kept as
        self._memo = RecipeMemo()
        self._journal = Journal(self.file, check_record)
        if load:
            self._first_read()

    @classmethod
    def created(cls, folder: Path, header: str) -> Session:
        """The session `SessionStore.create_folder` just made, whose file holds only `header`:
        read as written, with nothing to fold and no snapshot to look for."""
        session = cls(folder, load=False)
        session._journal.offset, session._journal.lines, session.loaded = len(header.encode()), header.count("\n"), True
        return session

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, read_only={self.read_only})"

    # reading

    def load(self) -> None:
        """Read the file unless it has been read (`loaded`); see `reload`."""
        with self._mutex:
            if not self.loaded:
                self._first_read()

    def _first_read(self) -> None:
        """`reload`, from the snapshot of a big session's fold (studio.store.snapshot) when it still holds."""
        from studio.store import snapshot

        with self._mutex:
            try:
                with self._journal.locked() as fd:
                    with held_off():
                        found = snapshot.load(self.file, fd)
                        if found is None:
                            self._load(self._journal.read_all(fd))
                        else:
                            keep(len(found[0]))
                    if found is None:
                        return
                    self._states, self._ordered, self._memo, self.warnings = found[0], None, RecipeMemo(), []
                    self._journal.offset, self._journal.lines, self._journal.torn = found[1], found[2], None
                    self._kept = found[1]
                    self.loaded = True
                    try:
                        self._catch_up(fd)  # what was appended since
                    except SessionError:
                        self.loaded = False
                        raise
            except FileNotFoundError:
                raise SessionError(f"{self.file}: no such session file") from None
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot read ({exc.strerror})") from None

    def save_snapshot(self) -> bool:
        """Keep a snapshot of this fold for the next open, when the session is big and reads
        cleanly (studio.store.snapshot); whether one was written. Any thread."""
        from studio.store import snapshot

        with self._mutex:
            if not self.loaded or self.warnings or len(self._states) < snapshot.MIN_ENTRIES:
                return False
            if self._kept == self._journal.offset:
                return True  # read from the one kept, and nothing appended since
            states = dict(self._states)  # held, so copied before they change (`_own`)
            self._epoch += 1
            offset, lines = self._journal.offset, self._journal.lines
        try:
            fd = os.open(self.file, os.O_RDONLY)  # the bytes before `offset` never change
            try:
                snapshot.save(self.file, fd, states, offset, lines)
            finally:
                os.close(fd)
        except (OSError, ValueError, TypeError):
            return False  # a full or read-only cache (or a value JSON cannot hold): the next open reads the file
        with self._mutex:
            if self._journal.offset == offset:
                self._kept = offset  # kept: the next call writes again only once something is appended
        return True

    def reload(self) -> None:
        """Read the whole file again. Raises SessionError unless it reads cleanly
        (a torn last record is only a warning); read-only sessions read what they can."""
        with self._mutex:
            try:
                with self._journal.locked() as fd:
                    with held_off():
                        self._load(self._journal.read_all(fd))
            except FileNotFoundError:
                raise SessionError(f"{self.file}: no such session file") from None
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot read ({exc.strerror})") from None

    def relocate(self, move: Callable[[Path], Path]) -> Path:
        """Move this session's folder with `move(folder) -> new folder` (studio.review.sessions),
        writes held meanwhile, then keep reading and writing it there; the new folder."""
        with self._mutex:
            folder = Path(move(self.path))
            self.path, self.file, self.name = folder, folder / FILE_NAME, folder.name
            self._journal.path = self.file
            return folder

    def newest(self, size: int = 256 * 1024) -> tuple[list[Entry], int]:
        """The newest entries, from the file's last `size` bytes, and about how many the
        file holds: what a face shows while `load` reads the rest. Takes no lock of this
        object's, keeps nothing, and leaves out what it cannot read (`load` reports it)."""
        try:
            with self._journal.locked() as fd:
                total = os.fstat(fd).st_size
                scan = Journal(self.file, check_record).read_tail(fd, size)
        except OSError:
            return [], 0
        return newest_of(scan.events, total, size)

    def _load(self, scan: Scan) -> None:
        """Fold the whole file over again (its records are parsed as they are folded)."""
        self._states, self._ordered, self._memo, self.warnings, self._kept = {}, None, RecipeMemo(), [], -1
        with held_off():  # (nested in the one around reading the file, where there is one)
            self._apply(scan)
            keep(len(self._states))
        self.loaded = True

    def _apply(self, scan: Scan) -> None:
        states, memo = self._states, self._memo
        folded: list[str] = []
        touched: set[int] = set()
        own, epoch, count = self._own, self._epoch, len(states)
        if scan.whole:  # (into a fold just begun) studio's own records fold straight into it, settled
            scan.bulk = BulkFold(states, memo)
        for line, ev in scan.events:  # parsed a stretch at a time, as they are folded
            if epoch:
                own(ev["id"])
            problem = fold(states, ev, line)
            if problem:
                folded.append(f"{self.file}:{line} (entry {ev['id']}): {problem}")
            else:
                touched.add(ev["id"])
        problems = scan.problems + folded
        if len(states) != count:
            self._ordered = None  # a new entry (changed ones were put in its place by `_own`)
        for entry_id in touched:
            state = states[entry_id]
            if state.recipe_data is None and state.pending is None:
                continue  # only marked: its recipe stands
            try:
                memo.settle(state)
            except (RecipeError, TypeError) as exc:
                problems.append(f"{self.file}:{state.line} (entry {entry_id}): recipe: {exc}")
                del states[entry_id]
                self._ordered = None
        if problems and not self.read_only:
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise SessionError(first + more)
        self.warnings += problems
        self._journal.commit(scan)
        if scan.torn:
            self.warnings.append(
                f"{self.file}:{scan.torn[1]}: the last record is incomplete (a write was cut "
                f"short) and is left out; every earlier record is intact, and the next write "
                f"moves it to {FILE_NAME}.torn-<time>"
            )

    def _own(self, entry_id: int) -> None:
        """Before a record changes this entry: copy its state if a list handed out holds it."""
        if not own(self._states, self._ordered, self._epoch, entry_id):
            self._ordered = None

    def _by_id(self) -> list[State]:
        if self._ordered is None:
            ids = list(self._states)  # folded in id order, as a file most often is: not sorted again
            self._ordered = list(self._states.values()) if ids == sorted(ids) else [s for _, s in sorted(self._states.items())]
        return self._ordered

    def entries(self, include_deleted: bool = False) -> EntryList:
        """Every entry as it stands now, oldest first: a sequence whose entries are made as they
        are looked at (each snapshot once per change), so 100,000 cost nothing until shown."""
        with self._mutex:
            states = self._by_id()
            self._epoch += 1  # what the list holds is copied before it changes
            return EntryList(list(states) if include_deleted else [s for s in states if not s.values.get("deleted")])

    def __len__(self) -> int:
        with self._mutex:
            return sum(1 for s in self._states.values() if not s.values["deleted"])

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def get(self, entry_id: int | str) -> Entry:
        with self._mutex:
            return self._state(entry_id).snapshot()

    def unfinished(self) -> list[Entry]:
        """Queued or running entries left behind by a process that is gone (for resume)."""
        with self._mutex:
            return [s.snapshot() for s in self._by_id() if s.values["status"] not in FINAL and left_behind(s)]

    def recover(self) -> list[str]:
        """Tidy what a killed writer left in the folder; a one-line note of each thing done.

        Call it on opening a session for writing, before resume. Removes studio's temp
        files that no live process can be writing, and records as done each entry in
        `unfinished()` whose images all landed with the recipe it asked for (reading
        only those images), so resume does not make them again. Read-only: [].
        """
        if self.read_only:
            return []
        from studio.store import recover

        temps = recover.stray_temps(self.path, FILE_NAME)  # listed first: their writers' records are in
        with self._mutex:
            self.refresh()  # the session file's own temps (entry None) are from its creation
            notes = recover.remove([p for p, i in temps if i is None or settled(self._states.get(i))])
            for entry in self.unfinished():
                found = recover.finished_images(entry, self.path)
                if found and self._append("done", entry.id, self._done(entry.id, *found, None), left_behind):
                    notes.append(f"entry {entry.id}: recorded {', '.join(found[1])}, made before a crash")
        return notes

    def image_path(self, name: str) -> Path:
        return self.path / name

    def refresh(self) -> None:
        """Pick up records other processes appended since we last read (cheap)."""
        with self._mutex:
            try:
                with self._journal.locked() as fd:
                    self._catch_up(fd)
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot read ({exc.strerror})") from None

    def _catch_up(self, fd: int) -> None:
        scan = self._journal.read_all(fd) if not self.loaded else self._journal.read_new(fd)
        if scan is None:
            return
        if scan.whole:  # the file was replaced, cut or edited by hand: start over
            self._load(scan)
            return
        warnings = self.warnings
        self.warnings = []
        self._apply(scan)
        self.warnings = warnings + [w for w in self.warnings if w not in warnings]

    # writing

    def queue(self, recipe: Recipe, sweep: dict | None = None, template: str = "", sheet: dict | None = None) -> Entry:
        """Record a job before it runs, so a crash leaves it to resume; `sweep`, `sheet`: see Entry."""
        tags = {key: value for key, value in (("sweep", sweep), ("template", template), ("sheet", sheet)) if value}
        entry = self._append("queued", None, {"recipe": recipe.to_dict(), "owner": _OWNER, **tags})
        assert entry is not None
        return entry

    def start(self, entry_id: int) -> None:
        self._append("started", entry_id, {"owner": _OWNER})

    def finish(self, entry_id: int, recipe: Recipe, images: list[str], duration: float) -> None:
        """Record a finished job; `recipe` is what was actually used (device, dtype...)."""
        with self._mutex:
            self._append("done", entry_id, self._done(entry_id, recipe, images, duration))

    def _done(self, entry_id: int, recipe: Recipe, images: list[str], duration: float | None) -> dict:
        """A `done` record's fields; without a duration when it is not known."""
        queued = self._state(entry_id).data()
        changed = {k: v for k, v in recipe.to_dict().items() if queued.get(k) != v}
        # The engine reports the model's display name; keep what was queued (a name
        # or path that resolves here), and its hash says which weights were used.
        changed.pop("model", None)
        done: dict[str, Any] = {"images": [str(name) for name in images]}
        if duration is not None:
            done["duration"] = round(float(duration), 3)
        done.update(device=recipe.device, model_hash=recipe.model_hash)
        if changed:
            done["recipe"] = changed
        return done

    def fail(self, entry_id: int, reason: str) -> None:
        self._append("failed", entry_id, {"reason": str(reason)})

    def cancel(self, entry_id: int, reason: str = "") -> None:
        self._append("cancelled", entry_id, {"reason": str(reason)})

    def mark(
        self, entry_id: int, favourite: bool | None = None, rating: int | None = None, note: str | None = None
    ) -> None:
        changes: dict[str, Any] = {}
        if favourite is not None:
            changes["favourite"] = bool(favourite)
        if rating is not None:
            if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
                raise SessionError(f"rating must be a whole number 0–5 (got {rating!r})")
            changes["rating"] = rating
        if note is not None:
            changes["note"] = str(note)
        if changes:
            self._append("mark", entry_id, changes)

    def delete(self, entry_id: int) -> None:
        """Hide an entry (its images stay on disk); `restore` undoes it."""
        self._append("deleted", entry_id)

    def restore(self, entry_id: int) -> None:
        self._append("restored", entry_id)

    def _state(self, entry_id: int) -> State:
        try:
            return self._states[int(entry_id)]
        except (KeyError, ValueError):
            raise SessionError(f"session {self.name} has no entry {entry_id}") from None

    def _append(
        self, kind: str, entry_id: int | None, values: dict[str, Any] | None = None,
        only_if: Callable[[State], bool] | None = None,
    ) -> Entry | None:
        """Append one record, having read what others appended; None (nothing written)
        when `only_if` says no to the entry as it stands then."""
        if self.read_only:
            raise SessionError(f"session {self.name} is open read-only")
        with self._mutex:
            try:
                with self._journal.locked(write=True) as fd:
                    self._catch_up(fd)
                    if moved := self._journal.set_aside_torn(fd):
                        self.warnings.append(moved)
                    if entry_id is None:
                        entry_id = max(self._states, default=0) + 1
                    elif only_if is not None and not only_if(self._state(entry_id)):
                        return None
                    else:
                        self._state(entry_id)
                    ev = {"id": entry_id, "kind": kind, "time": now_iso(), **(values or {})}
                    self._own(entry_id)
                    line = self._journal.append(fd, ev)
                    problem = check_event(ev) or fold(self._states, ev, line)
                    if problem:  # cannot happen for what we write; fail loudly if it does
                        raise SessionError(f"{self.file}: wrote a bad record: {problem}")
                    state = self._states[entry_id]
                    self._memo.settle(state)
                    if kind == "queued":
                        self._ordered = None
                    return state.snapshot()
            except OSError as exc:
                raise SessionError(f"{self.file}: cannot write ({exc.strerror or exc})") from None


# --- the store --------------------------------------------------------------


class SessionStore(SessionFolders):
    """The sessions folder: one sub-folder per session (naming, finding, creating: folders.py)."""

    def create(self, name: str | None = None) -> Session:
        return Session.created(*self.create_folder(name))

    def open(self, name: str, read_only: bool = False, load: bool = True) -> Session:
        return Session(self.find(name), read_only=read_only, load=load)

    def latest(self) -> Session | None:
        folders = self._folders()
        return Session(folders[-1]) if folders else None

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
            first, last = (entries[0].time, entries[-1].time) if entries else ("", "")
            warning = session.warnings[0] if session.warnings else ""
            summaries.append(SessionSummary(folder.name, folder, len(entries), first, last, warning))
        return summaries


__all__ = ["Entry", "Session", "SessionError", "SessionStore", "SessionSummary"]

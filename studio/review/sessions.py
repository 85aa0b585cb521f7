"""The session browser's writes: rename a session or archive it, keeping folder, record and index in step.

A session's name is its folder's name (the record inside names no folder),
so renaming is one `rename` of the folder; the index sees the old name gone
and the new one appear on its next update. Archiving moves the folder into
`<sessions>/archive/`, which the store does not list (it holds no session
file itself) and which any file manager can move back. Both refuse a session
with a job still running in a live process, whose next record would fail.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.store.session import FILE_NAME, SessionError, SessionStore

ARCHIVE = "archive"


def rename_session(root: Path, name: str, new_name: str) -> Path:
    """Rename session `name` (a name or unique prefix) to `new_name`; its new folder."""
    store = SessionStore(root)
    folder = store.find(name)
    _check_new_name(new_name)
    target = folder.parent / new_name
    _refuse_if_running(folder)
    if target.exists():
        raise SessionError(f"session {new_name!r} already exists in {folder.parent}")
    return _move(folder, target)


def archive_session(root: Path, name: str) -> Path:
    """Move session `name` into `<root>/archive/`; its new folder."""
    folder = SessionStore(root).find(name)
    _refuse_if_running(folder)
    target = Path(root) / ARCHIVE / folder.name
    if target.exists():
        raise SessionError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    return _move(folder, target)


def _check_new_name(name: str) -> None:
    """The store's own rule for names (its `_NAME`), not a second copy of it."""
    from studio.store import session as store_session

    if not store_session._NAME.match(name) or name == ARCHIVE:
        raise SessionError(f"bad session name {name!r}: use letters, digits, spaces, '.', '_', '+' or '-'")


def _refuse_if_running(folder: Path) -> None:
    from studio.store.session import Session, _owner_alive

    session = Session(folder, read_only=True)
    busy = [e for e in session.entries() if not e.final and e.owner and _owner_alive(e.owner)]
    if busy:
        raise SessionError(f"session {folder.name!r} has a job running in {busy[0].owner}; try when it ends")


def _move(folder: Path, target: Path) -> Path:
    try:
        os.rename(folder, target)
    except OSError as exc:
        raise SessionError(f"cannot move {folder} to {target}: {exc.strerror}") from None
    assert (target / FILE_NAME).is_file()
    return target

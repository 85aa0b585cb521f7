"""The sessions folder: naming, finding and creating sessions, without reading one.

Kept apart from `studio.store.session` so that a face can name, find or create
the session it opens before it imports what reads one (the recipe, the
journal, the bulk reader): the TUI does this before its first frame and opens
the `Session` itself just after it. `SessionStore` (session.py) adds what
returns a `Session`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from studio import __version__
from studio.atomic import write_text_atomically

FILE_NAME = "session.toml"
SCHEMA = 1  # of session.toml: a newer one is refused (journal.py), an older one read
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,99}\Z")

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
class SessionSummary:
    name: str
    path: Path
    entries: int
    first: str  # ISO time of the first entry, "" when empty
    last: str
    warning: str = ""


class SessionFolders:
    """The sessions folder: one sub-folder per session. `SessionStore` opens them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create_folder(self, name: str | None = None) -> tuple[Path, str]:
        """Make a new session's folder and file; its path and the header written (see `Session.created`)."""
        if name is None:
            stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
            name = f"{stamp}-{os.urandom(2).hex()}"
        if not _NAME.match(name):
            raise SessionError(f"bad session name {name!r}: use letters, digits, spaces, '.', '_', '+' or '-'")
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
        return folder, header

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

    def _folders(self) -> list[Path]:
        try:
            children = sorted(self.root.iterdir(), key=lambda p: p.name)
        except OSError:
            return []
        return [p for p in children if (p / FILE_NAME).is_file()]

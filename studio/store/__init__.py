"""The session store (append-only TOML); PNG metadata is in studio.formats.png.

Plain Python: importing it pulls in neither torch nor Textual. Its names are
imported on first use, so `studio.store.folders` (name, find, create a
session) can be imported without what reads one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Entry", "Session", "SessionError", "SessionStore", "SessionSummary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from studio.store import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The session store (append-only TOML); PNG metadata is in studio.formats.png.

Plain Python: importing it pulls in neither torch nor Textual.
"""

from studio.store.session import Entry, Session, SessionError, SessionStore, SessionSummary

__all__ = ["Entry", "Session", "SessionError", "SessionStore", "SessionSummary"]

"""The session store (append-only TOML) and PNG metadata in and out.

Plain Python: importing it pulls in neither torch nor Textual (PIL loads only
when an image is written or read).
"""

from studio.formats.png import save_png
from studio.store.session import Entry, Session, SessionError, SessionStore, SessionSummary

__all__ = ["Entry", "Session", "SessionError", "SessionStore", "SessionSummary", "save_png"]

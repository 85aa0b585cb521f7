"""Messages that cross from the engine's worker thread into the app.

The engine calls its listener on the worker thread; the listener wraps each
event in an `EngineEvent` and posts it, which is thread-safe. Progress and
preview events arrive many times a second, so consecutive ones for the same job
merge in the message queue (`can_replace`) and the screen only paints the newest.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

_MERGEABLE = ("Progress", "Preview")


class EngineEvent(Message):
    """One engine event (studio.engine.events), delivered on the app's thread."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event

    @property
    def kind(self) -> str:
        return type(self.event).__name__

    def can_replace(self, message: Message) -> bool:
        # Called on the older message with the newer one pending behind it.
        return (
            isinstance(message, EngineEvent)
            and self.kind in _MERGEABLE
            and message.kind == self.kind
            and message.event.job_id == self.event.job_id
        )


class ThumbnailsReady(Message):
    """Thumbnails for history entries, loaded off the event loop: image name -> thumbnail (None if unreadable)."""

    def __init__(self, thumbs: dict[str, Any], session: Any = None) -> None:
        super().__init__()
        self.thumbs = thumbs
        self.session = session  # whose images they are


class SessionWritten(Message):
    """A session write (mark, delete, restore) ran off the event loop; `error` is empty on success."""

    def __init__(self, entry_id: int, kind: str, error: str = "") -> None:
        super().__init__()
        self.entry_id = entry_id
        self.kind = kind
        self.error = error


class GraphicsReady(Message):
    """The image renderer (textual-image) is imported and ready to use."""


class SessionPreview(Message):
    """The newest entries, read from the end of the session file while the rest loads."""

    def __init__(self, entries: list[Any], estimate: int) -> None:
        super().__init__()
        self.entries = entries
        self.estimate = estimate  # about how many entries the file holds


class SessionLoaded(Message):
    """The whole session is read (and recovered); `error` is its one line when it could not be."""

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error

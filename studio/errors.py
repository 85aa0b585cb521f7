"""One line for the user out of any exception."""

from __future__ import annotations

_PLAIN = (LookupError, OSError, RuntimeError, ValueError)


def first_line(exc: BaseException) -> str:
    """The message's first non-empty line; kinds users know (missing, I/O, bad value) without their type name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else ""
    if isinstance(exc, _PLAIN) and message:
        return message.strip("'\"")
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

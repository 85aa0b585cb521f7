"""Exceptions told in one line, for status bars, notes and CLI errors."""

from __future__ import annotations

# Their message is the reason itself, so the type adds nothing; KeyError's comes quoted.
_PLAIN = (LookupError, OSError, RuntimeError, ValueError)
_QUOTES = ("'", '"')


class RecipeError(ValueError):
    """A recipe value that cannot be made; the message is one line for the user (studio.recipe)."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of `exc`'s message; `Type: message` for other types; else the type name."""
    message = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if isinstance(exc, _PLAIN):
        if len(message) >= 2 and message[0] == message[-1] and message[0] in _QUOTES:
            message = message[1:-1]  # KeyError('image') reads 'image'
        if message:
            return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

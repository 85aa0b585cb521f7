"""Bounded reading of untrusted files: JSON and TOML whose depth, size and numbers are checked first.

Every JSON or TOML document read from a file someone else wrote (image metadata,
safetensors headers, a downloaded model's configs) goes through here. The checks
run before the stdlib parser does: `json` and `tomllib` recurse once per level
of nesting, so a document nested ten thousand deep would otherwise end in a
RecursionError; and Python's int() is quadratic in the digits it reads. Each
check is a few C-speed passes over the text.

Errors are `Unbounded` (a ValueError), one line, so every caller that already
handles a malformed document handles these too. Files are read only when they
are regular files (`open_regular`): a FIFO, a device or a folder is refused by
`stat` before anything opens it, since opening a FIFO blocks until a writer comes.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import IO, Any

MAX_DEPTH = 64  # real documents nest under 10; the stdlib recurses past ~1,000
MAX_NUMBER_CHARS = 100  # a float's repr is under 25; int() of 5,000 digits is slow and refused
MAX_DOCUMENT_CHARS = 16 << 20  # no config or metadata text comes near this


class Unbounded(ValueError):
    """A document over one of the caps (depth, size, a number's length); the message is one line."""


# JSON strings (with their escapes) are skipped whole, so brackets inside them do not count.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_STRING_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# TOML strings (four kinds) and comments.
_TOML_SKIP = re.compile(
    r'"""[\s\S]*?"""(?!")|\'\'\'[\s\S]*?\'\'\'(?!\')|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\'|#[^\n]*'
)
_BRACKETS = b"[]{}"
_NUMBER_CHARS = b"0123456789.eE+-_"
_KEEP_BRACKETS = (bytes.maketrans(b"[{]}", b"(())"), bytes(b for b in range(256) if b not in _BRACKETS))
_MARK_NUMBERS = bytes.maketrans(bytes(range(256)), bytes(100 if b in _NUMBER_CHARS else 32 for b in range(256)))


def too_deep(structure: bytes, max_depth: int) -> bool:
    """Whether the string-free `structure` nests brackets over `max_depth` deep.

    Each round deletes every innermost bracket pair; after `max_depth` rounds an
    adjacent pair is left only when something nests deeper. All C-speed byte operations.
    """
    brackets = structure.translate(*_KEEP_BRACKETS)
    for _ in range(max_depth):
        if b"()" not in brackets:
            break
        brackets = brackets.replace(b"()", b"")
    # Left: unmatched brackets, or pairs nested deeper. The parser descends into every
    # unmatched opener before it fails, so too many of those are too deep as well.
    return b"()" in brackets or brackets.count(b"(") > max_depth


def check_structure(structure: str | bytes, what: str, max_depth: int, max_number: int) -> None:
    """Raise Unbounded when the string-free `structure` nests over `max_depth` or holds a long number."""
    if isinstance(structure, str):
        structure = structure.encode("utf-8", "surrogatepass")
    if too_deep(structure, max_depth):
        raise Unbounded(f"{what} is nested over {max_depth} levels deep")
    if b"d" * (max_number + 1) in structure.translate(_MARK_NUMBERS):
        raise Unbounded(f"{what} holds a number over {max_number} characters long")


def loads_json(
    text: str | bytes,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_chars: int = MAX_DOCUMENT_CHARS,
    max_number: int = MAX_NUMBER_CHARS,
) -> Any:
    """`json.loads(text)` once its size, depth and numbers are within the caps.

    Raises Unbounded over a cap and ValueError (JSONDecodeError) when it is not JSON.
    """
    if len(text) > max_chars:
        raise Unbounded(f"{what} is {len(text):,} characters, over the {max_chars:,}-character cap")
    pattern = _JSON_STRING_BYTES if isinstance(text, bytes) else _JSON_STRING
    check_structure(pattern.sub(" " if isinstance(text, str) else b" ", text), what, max_depth, max_number)
    import json  # here, not at the top: the TUI's first frame reads no JSON

    try:
        return json.loads(text)
    except RecursionError:  # only if the scan above were fooled; never a traceback
        raise Unbounded(f"{what} is nested too deep") from None


def loads_toml(
    text: str,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_chars: int = MAX_DOCUMENT_CHARS,
    max_number: int = MAX_NUMBER_CHARS,
) -> dict[str, Any]:
    """`tomllib.loads(text)` once its size, depth and numbers are within the caps.

    Raises Unbounded over a cap and tomllib.TOMLDecodeError (a ValueError) when it is not TOML.
    """
    if len(text) > max_chars:
        raise Unbounded(f"{what} is {len(text):,} characters, over the {max_chars:,}-character cap")
    check_structure(_TOML_SKIP.sub(" ", text), what, max_depth, max_number)
    import tomllib  # only once there is a text to parse: a missing config imports none

    try:
        return tomllib.loads(text)
    except RecursionError:
        raise Unbounded(f"{what} is nested too deep") from None


# --- files -------------------------------------------------------------------------


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket, a folder); one line."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """The stat of `path`; NotRegular unless it is a regular file (following links). Opens nothing."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular(f"{Path(path).name}: {_kind(info.st_mode)}, not a regular file")
    return info


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """`path` opened for reading in binary, only if it is a regular file.

    Checked by stat before opening and again on the open descriptor, which is
    opened non-blocking, so a file swapped for a FIFO in between cannot block.
    """
    check_regular(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(f"{Path(path).name}: changed to {_kind(os.fstat(fd).st_mode)} while opened")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_text(path: str | os.PathLike[str], max_bytes: int = MAX_DOCUMENT_CHARS) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; OSError, Unbounded or UnicodeDecodeError."""
    with open_regular(path) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Unbounded(f"{Path(path).name} is over the {max_bytes:,}-byte cap")
    return data.decode("utf-8")


def read_json_file(path: str | os.PathLike[str], **caps: Any) -> Any:
    """A JSON file someone else wrote, bounded: `loads_json` on `read_regular_text`."""
    return loads_json(read_regular_text(path), Path(path).name, **caps)


def read_json_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A small JSON object such as a model's config (at most 1 MiB); {} when missing, unreadable or not an object."""
    try:
        data = read_json_file(path, max_chars=1 << 20)  # a config is a few KB
    except (OSError, ValueError):  # missing, not a regular file, not JSON, past the caps
        return {}
    return data if isinstance(data, dict) else {}


def read_toml_file(path: str | os.PathLike[str], **caps: Any) -> dict[str, Any]:
    """A TOML file someone else wrote, bounded: `loads_toml` on `read_regular_text`."""
    return loads_toml(read_regular_text(path), Path(path).name, **caps)

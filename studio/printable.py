"""The one place where untrusted text becomes safe to show in a terminal.

Prompts, model names, tags, metadata keys and values and file names come from
files anyone can write. Written raw, an escape sequence in them retitles the
window, clears the screen or (OSC 52) writes to the user's clipboard, over SSH
too. `printable` shows every such character visibly escaped instead (`\\x1b`,
`\\u202e`), so the text reads the same and nothing reaches the terminal as a
command. Every face (CLI lines, TUI labels) passes file text through it.
"""

from __future__ import annotations

import functools
import re

# C0 controls and DEL, C1 controls, and the bidirectional overrides and isolates
# that reorder what the eye sees (Trojan Source), plus the line and paragraph
# separators some terminals treat as newlines, and lone surrogates (bytes that
# were not UTF-8), which cannot be written to a terminal at all.
_UNSAFE_CHARS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff"


@functools.cache
def _unsafe(one_line: bool) -> re.Pattern[str]:
    """Compiled on first use: the two classes cost some 10 M instructions, which the TUI's
    first frame (which imports this module, but shows no file text) need not pay."""
    return re.compile(f"[{_UNSAFE_CHARS}\t\n]" if one_line else f"[{_UNSAFE_CHARS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, one_line: bool = True) -> str:
    """`text` with every control, C1 and bidi character shown as an escape; newlines and
    tabs too when `one_line` (the default), else kept."""
    return _unsafe(one_line).sub(_escape, str(text))



def _toml_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\\ufffd" if 0xD800 <= code <= 0xDFFF else f"\\u{code:04x}"  # TOML has no escape for a lone surrogate


def printable_toml(text: str) -> str:
    """TOML from `tomli_w.dumps` made printable and still valid TOML.

    tomli_w escapes C0 controls in strings but writes C1 controls and bidi
    overrides as they are; those can only sit inside its quoted strings, where
    a `\\uXXXX` escape means the same character, so the TOML reads back the same.
    """
    return _unsafe(False).sub(_toml_escape, text)

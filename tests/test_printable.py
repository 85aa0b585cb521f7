"""Untrusted text never reaches the terminal as a command."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from studio.printable import printable

HOSTILE = [
    ("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),  # OSC 52: write the clipboard
    ("\x1b]0;owned\x1b\\", "\\x1b]0;owned\\x1b\\"),  # retitle the window
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("\x90q\x9c", "\\x90q\\x9c"),  # C1 DCS ... ST
    ("abc\u202efdp.exe", "abc\\u202efdp.exe"),  # right-to-left override
    ("\u2066x\u2069", "\\u2066x\\u2069"),  # bidi isolates
    ("a\rb", "a\\x0db"),  # carriage return overwrites the line
    ("\x7f\x00\x08", "\\x7f\\x00\\x08"),
    ("line\u2028sep", "line\\u2028sep"),
    ("\udcff", "\\udcff"),  # a byte that was not UTF-8, kept by surrogateescape
]


@pytest.mark.parametrize("raw, shown", HOSTILE)
def test_hostile_characters_are_shown_escaped(raw, shown):
    assert printable(raw) == shown


def test_ordinary_text_is_unchanged():
    for text in ("(masterpiece:1.2), a fox", "naïve café — 日本語 🦊", "<lora:ink:0.7> BREAK"):
        assert printable(text) == text


def test_newlines_and_tabs_are_escaped_on_one_line_and_kept_in_blocks():
    assert printable("a\nb\tc") == "a\\x0ab\\x09c"
    assert printable("a\nb\tc\x1b", one_line=False) == "a\nb\tc\\x1b"


@given(st.text())
def test_nothing_below_space_or_in_c1_survives(text):
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in shown)
    shown.encode("utf-8")  # always writable

"""Asking a real terminal what it shows, before the window opens, without textual-image's renderers.

Each case runs `studio.tui.graphics` in a child process on a pseudo-terminal; this
process plays the terminal: it answers the child's questions (or not) and keeps
every byte the child writes, so a question asked after the probe is seen.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

_CHILD = r"""
import sys
from studio.tui import graphics

mode = graphics.probe(sys.argv[1])
heavy = sorted(m for m in ("numpy", "PIL", "textual_image.renderable", "textual_image.widget") if m in sys.modules)
sys.stdout.write(f"PROBED {mode} {','.join(heavy) or '-'}\n")
sys.stdout.flush()
mode = graphics.load(mode)
widget = graphics.image_widget_class(mode)
sys.stdout.write(f"LOADED {mode} {graphics.describe(mode)} {widget.__module__}.{widget.__name__}\n")
sys.stdout.flush()
"""

DA1_SIXEL = b"\x1b[?62;4;22c"  # a VT340-like terminal: Sixel (4) among its attributes
DA1_PLAIN = b"\x1b[?62;22c"
KITTY_OK = b"\x1b_Gi=31;OK\x1b\\"


def _run(mode: str, answers: dict[bytes, bytes], pixels: bool = True) -> tuple[str, str]:
    """The child's output before its probe ended and after; `answers`: question -> reply."""
    parent, child = pty.openpty()
    rows, cols = 24, 80
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 10 if pixels else 0,
                                                       rows * 20 if pixels else 0))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, mode], stdin=child, stdout=child, stderr=subprocess.PIPE,
                            close_fds=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    os.close(child)
    seen = b""
    answered: set[bytes] = set()
    deadline = time.monotonic() + 60
    try:
        while b"LOADED" not in seen or not seen.rstrip(b"\r").endswith(b"\n"):
            if time.monotonic() > deadline:
                pytest.fail(f"the child did not finish: {seen!r}")
            ready, _, _ = select.select([parent], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                seen += os.read(parent, 4096)
            except OSError:
                break
            for question, reply in answers.items():
                if question in seen and question not in answered:  # each asked once
                    answered.add(question)
                    os.write(parent, reply)
    finally:
        proc.wait(timeout=30)
        os.close(parent)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    text = seen.decode(errors="replace")
    before, _, after = text.partition("PROBED")
    return before, "PROBED" + after


def test_a_sixel_terminal_is_asked_before_and_never_after():
    before, after = _run("auto", {b"\x1b[c": DA1_SIXEL})
    assert "\x1b[c" in before  # the probe asked the device attributes
    assert "PROBED auto -" in after  # ... without numpy, PIL or the renderers
    assert "\x1b" not in after  # load() let none of textual-image's own questions through
    assert "LOADED auto sixel textual_image.widget.sixel.Image" in after


def test_a_kitty_terminal_is_found_after_sixel_is_not():
    before, after = _run("auto", {b"\x1b[c": DA1_PLAIN, b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\": KITTY_OK})
    assert "\x1b_G" in before
    assert "\x1b" not in after
    assert "LOADED auto kitty" in after


def test_a_terminal_that_does_not_answer_gets_half_cells():
    before, after = _run("auto", {})  # no answer in time: 0.1 s per question
    assert "\x1b[c" in before and "\x1b" not in after
    assert "LOADED auto halfcell" in after


def test_a_named_mode_asks_only_the_cell_size():
    before, after = _run("sixel", {b"\x1b[16t": b"\x1b[6;20;10t"}, pixels=False)
    assert "\x1b[16t" in before and "\x1b[c" not in before  # no pixel size from the kernel: asked, once
    assert "\x1b" not in after
    assert "LOADED sixel sixel textual_image.widget.sixel.Image" in after

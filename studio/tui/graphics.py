"""Which image renderer the TUI uses: Kitty graphics, Sixel, half-cells, Unicode or none.

A terminal can only be asked what it shows (its cell size in pixels, Sixel,
Kitty graphics) before Textual takes over stdin. textual-image asks when it is
first imported, and that import brings numpy and PIL with it: on a real
terminal it had cost some 0.1-0.3 s before the first frame. So `probe()`, run
before the app starts, asks the terminal itself (textual-image's light
`_terminal` module only), and `load()`, on a thread after the first frame,
imports the renderers with those answers and lets none of textual-image's own
questions reach the terminal Textual now owns. Without a terminal (tests,
benches, pipes) nothing is asked and `load()` imports as it is.
A terminal that does not answer in time (tmux without passthrough, a slow SSH
link) gets half-cells: worse pictures, never escape-code garbage.
"""

from __future__ import annotations

import sys
from typing import Any

MODES = ("auto", "kitty", "sixel", "halfcell", "unicode", "none")
_ALIASES = {"halfblock": "halfcell", "tgp": "kitty", "off": "none"}
_TIMEOUT = 0.1  # seconds a terminal has to answer each question, as textual-image allows
_probed: str | None = None  # what `probe` found the terminal shows best, for "auto"
_asked = False  # whether `probe` asked a terminal (then `load` must not let textual-image ask)


def normalise(mode: str | None) -> str:
    """A mode name from the command line or config ('halfblock' is the config's spelling)."""
    mode = (mode or "auto").strip().lower()
    mode = _ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"unknown graphics mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def needs_probe(mode: str) -> bool:
    """True when the terminal must be asked (`probe`) before the app owns it."""
    stdout = sys.__stdout__
    return mode != "none" and bool(stdout and stdout.isatty())


def probe(mode: str) -> str:
    """Ask the terminal its cell size and, for "auto", whether it shows Sixel, else Kitty
    graphics (in textual-image's order); returns the mode to use. Call before the app runs.

    A terminal that reports no size (a bare pty) makes textual-image divide by
    zero while measuring cells; studio then assumes VT340-sized cells, as
    textual-image itself does when a terminal will not say, and draws
    half-cells rather than failing to start.
    """
    global _asked, _probed
    if mode == "none":
        return mode
    try:
        from textual_image import _terminal
    except Exception:
        return "none"
    _asked = True
    try:
        _terminal.get_cell_size()  # asks once and keeps the answer, for every later image
    except Exception:
        return _assume_vt340_cells(_terminal, mode)
    if mode == "auto":
        _probed = "sixel" if _shows_sixel(_terminal) else "kitty" if _shows_kitty(_terminal) else "halfcell"
    return mode


def _answer(terminal: Any, question: str, start: str, end: str) -> str | None:
    """The terminal's answer to `question` between `start` and `end`, or None (no answer in time)."""
    try:
        with terminal.capture_terminal_response(start_marker=start, end_marker=end, timeout=_TIMEOUT) as response:
            sys.__stdout__.write(question)  # type: ignore[union-attr]
            sys.__stdout__.flush()  # type: ignore[union-attr]
    except Exception:  # TerminalError, TimeoutError, a closed stdin: the terminal did not say
        return None
    return response.sequence[len(start) : -len(end)]


def _shows_sixel(terminal: Any) -> bool:
    """Primary device attributes (DA1): a terminal with Sixel lists 4 among them."""
    answer = _answer(terminal, "\x1b[c", "\x1b[?", "c")
    return answer is not None and "4" in answer.split(";")


def _shows_kitty(terminal: Any) -> bool:
    """A Kitty graphics query of one pixel, which a terminal with the protocol answers OK."""
    answer = _answer(terminal, "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\", "\x1b_G", "\x1b\\")
    return answer is not None and answer.rsplit(";", 1)[-1] == "OK"


def load(mode: str) -> str:
    """Import textual-image's renderers (after the first frame, on a thread); returns the mode to use.

    After `probe`, its answers are used and textual-image's own questions are
    refused: asked now, their answers would go to Textual's input reader.
    """
    if mode == "none":
        return mode
    if _asked:
        return _load_answered(mode)
    try:
        import textual_image.widget  # noqa: F401  (no terminal: it asks nothing)

        return mode
    except Exception:
        pass
    try:
        from textual_image import _terminal

        mode = _assume_vt340_cells(_terminal, mode)
        import textual_image.widget  # noqa: F401,F811
    except Exception:
        return "none"
    return mode


def _assume_vt340_cells(terminal: Any, mode: str) -> str:
    """The terminal gave no cell size: assume VT340's (as textual-image does when a terminal will
    not say) and draw half-cells, or Unicode when asked; the mode to use."""
    terminal.get_cell_size._result = terminal.CellSize(10, 20)
    return mode if mode in ("halfcell", "unicode") else "halfcell"


def _load_answered(mode: str) -> str:
    try:
        from textual_image import _terminal

        asking = _terminal.capture_terminal_response

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise _terminal.TerminalError("the terminal was asked before the window opened")

        _terminal.capture_terminal_response = refuse  # what the renderers bind as they are imported
        try:
            import textual_image.renderable as renderable

            if _probed is not None:  # "auto": what the renderers would have chosen, asked in time
                renderable.Image = {  # type: ignore[misc]
                    "sixel": renderable.SixelImage,
                    "kitty": renderable.TGPImage,
                    "halfcell": renderable.HalfcellImage,
                }[_probed]
            import textual_image.widget  # noqa: F401  (reads renderable.Image for its own "auto")
        finally:
            _terminal.capture_terminal_response = asking
    except Exception:
        return "none"
    return mode


def image_widget_class(mode: str) -> Any:
    """The textual-image widget class for `mode`, or None for 'none'."""
    if mode == "none":
        return None
    from textual_image import widget

    return {
        "auto": widget.Image,
        "kitty": widget.TGPImage,
        "sixel": widget.SixelImage,
        "halfcell": widget.HalfcellImage,
        "unicode": widget.UnicodeImage,
    }[mode]


def describe(mode: str) -> str:
    """The renderer actually in use, for the status bar ('auto' resolved)."""
    if mode != "auto":
        return mode
    chosen = getattr(sys.modules.get("textual_image.renderable"), "Image", None)
    if chosen is None:
        return "auto"
    name = chosen.__module__.rsplit(".", 1)[-1]
    return {"tgp": "kitty"}.get(name, name)

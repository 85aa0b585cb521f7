"""Which image renderer the TUI uses: Kitty graphics, Sixel, half-cells, Unicode or none.

textual-image asks the terminal what it supports when it is first imported, and
that only works before Textual takes over stdin. So on a real terminal
`prepare()` must run before the app starts; without a terminal (tests, benches,
pipes) the import asks nothing and may wait until after the first paint.
A terminal that does not answer in time (tmux without passthrough, a slow SSH
link) gets half-cells: worse pictures, never escape-code garbage.
"""

from __future__ import annotations

import sys
from typing import Any

MODES = ("auto", "kitty", "sixel", "halfcell", "unicode", "none")
_ALIASES = {"halfblock": "halfcell", "tgp": "kitty", "off": "none"}


def normalise(mode: str | None) -> str:
    """A mode name from the command line or config ('halfblock' is the config's spelling)."""
    mode = (mode or "auto").strip().lower()
    mode = _ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"unknown graphics mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def needs_early_import(mode: str) -> bool:
    """True when textual-image must be imported before the app owns the terminal."""
    stdout = sys.__stdout__
    return mode != "none" and bool(stdout and stdout.isatty())


def prepare(mode: str) -> str:
    """Import textual-image now (it queries the terminal once, at import); returns the mode to use.

    A terminal that reports no size (a bare pty) makes textual-image divide by
    zero while measuring cells; studio then assumes VT340-sized cells, as
    textual-image itself does when a terminal will not say, and draws
    half-cells rather than failing to start.
    """
    if mode == "none":
        return mode
    try:
        import textual_image.widget

        return mode
    except Exception:
        pass
    try:
        from textual_image import _terminal

        _terminal.get_cell_size._result = _terminal.CellSize(10, 20)  # type: ignore[attr-defined]
        import textual_image.widget  # noqa: F401
    except Exception:
        return "none"
    return mode if mode in ("halfcell", "unicode") else "halfcell"


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

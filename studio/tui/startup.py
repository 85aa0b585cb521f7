"""The cyclic garbage collector, paused from the app's import to its first frame.

Start-up allocates some 60,000 objects (modules, classes, CSS rules, widgets)
and frees almost none of them, so the collector's passes before the first
frame (120 young ones, 11 middle and one full, against a bare Textual app's
81 and 7) find nothing to free; with the collector off from interpreter start
a launch took some 60-90 ms less CPU (a bare app about 30 less), on a loaded
machine. Paused, though, everything allocated meanwhile is still in the
youngest generation, and the first collections after the pause would scan it
all (a launch spent some 20-40 ms there, on imports that live as long as the
process), so `resume` freezes it first (`gc.freeze`: moved to the permanent
generation, which no collection scans). Reference counting frees everything
else as usual; a reference cycle made while paused and dropped later waits for
`thaw` (the window closing) to be collected, which for modules, classes, CSS
rules and the window's widgets is what would have happened anyway.

`pause` and `resume` pair up: `studio.tui.app` pauses at the top of its
imports and resumes at their end (importing the app in a test process must
not leave the collector off), and the app pauses again when it loads and
resumes after its first frame, or when it unmounts without one (`thaw`, which
also unfreezes). The collector stays off if it was off before the first pause.
"""

from __future__ import annotations

import gc

_paused = False  # True while this module holds the collector off


def pause() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    global _paused
    if _paused:
        _paused = False
        gc.freeze()  # what was made while paused lives on: no collection need ever scan it
        gc.enable()


def thaw() -> None:
    """The window is closing: what was frozen may be collected again (a test process runs many apps)."""
    resume()
    gc.unfreeze()

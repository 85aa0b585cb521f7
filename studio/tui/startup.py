"""The cyclic garbage collector, paused from the app's import to its first frame.

Start-up allocates some 60,000 objects (modules, classes, CSS rules, widgets)
and frees almost none of them, so the collector's passes before the first
frame (120 young ones, 11 middle and one full, against a bare Textual app's
81 and 7) find nothing to free; with the collector off from interpreter start
a launch took some 60-90 ms less CPU (a bare app about 30 less), on a loaded
machine. Paused, the first collections after the frame scan the survivors once. Reference counting frees everything else as usual.

`pause` and `resume` pair up: `studio.tui.app` pauses at the top of its
imports and resumes at their end (importing the app in a test process must
not leave the collector off), and the app pauses again when it loads and
resumes after its first frame, or when it unmounts without one. The collector
stays off if it was off before the first pause.
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
        gc.enable()

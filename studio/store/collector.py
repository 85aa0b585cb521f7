"""The cyclic garbage collector held off while a whole session file is read.

Reading 100,000 entries makes some million objects that all live on (the fold)
or die by reference counting (each record's parsed dict); none is in a cycle.
The collector's passes meanwhile scan the growing fold again and again for
nothing: a third of a first read's CPU (100,000 entries: 8.0 s, 4.9 s with it
held off, on a loaded machine). So it is held off while reading, and put back
as it was; reads in several threads at once nest (the last one out puts it back).

A big fold (`keep`) is frozen as the collector comes back: moved to its
permanent generation, so that no later pass walks it again (the first three
passes after reading 100,000 entries took 0.2 s). What is frozen is only what
exists then, and reference counting still frees it; only a cycle among those
objects that becomes garbage later waits for the process to end.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_holders = 0
_we_disabled = False
_keep = False
BIG = 10_000  # entries from which a fold is kept (frozen) after reading


@contextmanager
def held_off() -> Iterator[None]:
    global _holders, _we_disabled, _keep
    with _lock:
        if _holders == 0 and gc.isenabled():
            gc.disable()
            _we_disabled = True
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                if _keep:
                    _keep = False
                    gc.freeze()
                if _we_disabled:
                    _we_disabled = False
                    gc.enable()


def keep(entries: int) -> None:
    """Within `held_off`: a fold of `entries` was made, frozen as the collector comes back if it is big."""
    global _keep
    if entries >= BIG:
        with _lock:
            _keep = _keep or _holders > 0

"""What was read out of a file, kept while the file is unchanged.

One `studio generate` asks about the same checkpoint many times before and
during its load: its defaults, its sampler check and its companions (text
encoders, VAE) before the job is queued, then the worker's architecture
check, its license and its load. Each used to read and check the
safetensors header again (~30 ms for an SD1.5 file, 12 times). A result is kept
under the file's identity (resolved path, size, modification time, inode), the
same triple the hash cache trusts, so a changed file is read again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class FileMemo:
    """At most `size` results, the least recently used dropped first; safe across threads."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._kept: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # how many results were not found kept (for tests)

    def get(self, path: str | os.PathLike[str], compute: Callable[[], T], *more: Hashable) -> T:
        """`compute()` for `path`, or what it gave for the file as it is now. Failures are not kept."""
        info = os.stat(path)
        key = (os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, *more)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self.computed += 1
            self._kept[key] = value
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

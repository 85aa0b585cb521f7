"""A new model's hash computed beside its load, not before it.

A model's hash (AutoV2 for a file, a hash of every file for a folder) is
recorded with each image, but the load does not need it: the pipeline cache
keys on the files' identity (`hashing.identity`: path, size, modification
time). So the engine starts hashing a model when a job naming it is queued, on
a thread of its own that reads the file while the worker imports torch, loads
and samples; the worker asks for the hash only when it saves the image (its
metadata records it), from the shared HashCache, which hands it the digest
under way rather than reading the file twice. Text encoder files (a T5 is
~10 GB) are hashed the same way once the job has paired them.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

from studio.models.library import ModelLibrary
from studio.models.inspect import CHECKPOINT
from studio.recipe import Recipe

log = logging.getLogger(__name__)


class HashBeside:
    """Hash the models queued jobs name, each on a daemon thread, at most one thread per name."""

    def __init__(self, library: ModelLibrary) -> None:
        self._library = library
        self._running: dict[tuple[str, str], threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, recipe: Recipe) -> None:
        """Begin hashing the recipe's model unless that is under way; returns at once."""
        if recipe.model and not recipe.upscaler:  # an upscale job loads no checkpoint
            self.start_files([recipe.model], CHECKPOINT)

    def start_files(self, names: Iterable[str], kind: str) -> None:
        """Begin hashing each named file of `kind` (text encoders: a T5 is ~10 GB) unless under way."""
        for name in names:
            with self._lock:
                running = self._running.get((kind, name))
                if running is not None and running.is_alive():
                    continue
                thread = threading.Thread(target=self._hash, args=(name, kind), name="studio-hash", daemon=True)
                self._running[(kind, name)] = thread
            thread.start()

    def _hash(self, name: str, kind: str) -> None:
        try:
            self._library.resolve(name, kind=kind)  # the digest lands in the library's HashCache
        except Exception:  # a missing or unreadable model: the worker resolves again and reports it
            log.debug("hashing %s beside the load failed", name, exc_info=True)
        finally:
            with self._lock:
                if self._running.get((kind, name)) is threading.current_thread():
                    del self._running[(kind, name)]

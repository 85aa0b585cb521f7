"""A new model's hash computed beside its load, not before it.

A model's hash (AutoV2 for a file, a hash of every file for a folder) is
recorded with each image, but the load does not need it: the pipeline cache
keys on the files' identity (`hashing.identity`: path, size, modification
time). So the engine starts hashing a model when a job naming it is queued, on
a thread of its own that reads the file while the worker imports torch and
loads; the worker asks for the hash only after the load, from the shared
HashCache, which hands it the digest under way rather than reading the file twice.
"""

from __future__ import annotations

import logging
import threading

from studio.models.library import ModelLibrary
from studio.recipe import Recipe

log = logging.getLogger(__name__)


class HashBeside:
    """Hash the models queued jobs name, each on a daemon thread, at most one thread per name."""

    def __init__(self, library: ModelLibrary) -> None:
        self._library = library
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, recipe: Recipe) -> None:
        """Begin hashing the recipe's model unless that is under way; returns at once."""
        name = recipe.model
        if not name or recipe.upscaler:  # an upscale job loads no checkpoint
            return
        with self._lock:
            running = self._running.get(name)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(target=self._hash, args=(name,), name="studio-hash", daemon=True)
            self._running[name] = thread
        thread.start()

    def _hash(self, name: str) -> None:
        try:
            self._library.resolve(name)  # the digest lands in the library's HashCache
        except Exception:  # a missing or unreadable model: the worker resolves again and reports it
            log.debug("hashing %s beside the load failed", name, exc_info=True)
        finally:
            with self._lock:
                if self._running.get(name) is threading.current_thread():
                    del self._running[name]

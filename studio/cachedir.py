"""The user's cache folder for studio (hashes, session snapshots, the review index, thumbnails).

A module of its own, light to import: the session store reads a snapshot from
here before the TUI's first frame, which must not pull in the model library.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    override = os.environ.get("STUDIO_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("studio"))

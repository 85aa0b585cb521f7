"""The user's upscaler files, as the model library finds them (kind "upscaler")."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from studio.models.inspect import UPSCALER
from studio.upscale.upscalers import BUILTIN_UPSCALER_PATH, UpscalerRef

if TYPE_CHECKING:
    from studio.models.library import ModelLibrary


def find_upscalers(library: ModelLibrary) -> list[UpscalerRef]:
    """Every upscaler file in the library's folders, with its architecture, scale and hash."""
    refs = []
    for entry in library.scan(hf_cache=False):
        if entry.kind != UPSCALER or entry.path == BUILTIN_UPSCALER_PATH:
            continue  # the built-in one is listed by `builtin_upscalers`
        match = re.search(r"(\d+)x$", entry.architecture)
        scale = int(match[1]) if match else 0
        architecture = entry.architecture.rsplit(" ", 1)[0] if match else entry.architecture
        digest = library.hashes.sha256(entry.path)[:10]
        refs.append(UpscalerRef(entry.name, "network", scale, architecture, entry.path, digest))
    return refs

"""The thumbnail cache beside the review index: small PNGs made once per image version.

A gallery of 100,000 entries cannot open 100,000 full-size PNGs to scroll;
`thumbnail` makes a small copy the first time an image is shown and keeps it
under the cache folder, keyed by the image's path, size and modification time
(an image that changes gets a new one). Plain Python and Pillow: the TUI calls
it from a thread worker, never on the event loop.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BOX = (128, 128)


def thumbs_dir() -> Path:
    from studio.cachedir import cache_dir

    return cache_dir() / "review" / "thumbs"


def thumbnail(image: Path, box: tuple[int, int] = BOX, folder: Path | None = None) -> Path | None:
    """The cached thumbnail of `image` fitting `box`, made now if needed; None when it cannot be read."""
    from PIL import Image

    try:
        stat = os.stat(image)
    except OSError:
        return None
    key = f"{Path(image).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{box[0]}x{box[1]}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    target = (folder or thumbs_dir()) / digest[:2] / f"{digest}.png"
    if target.is_file():
        return target
    try:
        with Image.open(image) as source:
            source.thumbnail(box)
            small = source.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    small.save(temp, format="PNG")
    os.replace(temp, target)  # whole or absent: two galleries may make the same one at once
    return target

"""What a killed writer can leave in a session folder, found on disk.

Two windows: killed while `atomic_writer` writes an image, a temp file such as
`.0003.png-ab12cd34.tmp` stays beside it for ever; killed after the image
landed but before its `done` record, the image sits there unrecorded and
resume would make it again. `Session.recover` decides, from the records, what
to do about each; this module only looks at files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from studio.atomic import temp_names

if TYPE_CHECKING:
    from studio.recipe import Recipe
    from studio.store.session import Entry

# An entry's images: 0003.png, 0003-1.png (batches), 0003_2.png (when the name was taken).
_IMAGE_TEMP = temp_names(r"(?P<id>\d{4,})(?:-\d+)?(?:_\d+)?\.png")
# What the user asked for; the engine fills in the hashes, the device and the dtype.
_ASKED = ("prompt", "negative_prompt", "model", "sampler", "steps", "cfg_scale", "width", "height")


def stray_temps(folder: Path, file_name: str) -> list[tuple[Path, int | None]]:
    """atomic_writer's temp files in `folder`: (path, entry id) for entry images,
    (path, None) for the session file's own; one listing of the folder."""
    own = temp_names(re.escape(file_name))
    found: list[tuple[Path, int | None]] = []
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return []
    for name in names:
        image = _IMAGE_TEMP.match(name)
        if image:
            found.append((folder / name, int(image.group("id"))))
        elif own.match(name):
            found.append((folder / name, None))
    return found


def remove(paths: list[Path]) -> list[str]:
    """Delete `paths`; a note of what went, or [] when nothing did."""
    gone = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # removed by someone else meanwhile
        gone.append(path.name)
    if not gone:
        return []
    shown = ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
    return [f"removed {len(gone)} temp file{'s' * (len(gone) > 1)} a crash left: {shown}"]


def image_names(entry: Entry) -> list[str]:
    """The names the engine saves an entry's images under, in the order it saves them."""
    if entry.recipe.batch_size == 1:
        return [f"{entry.stem}.png"]
    return [f"{entry.stem}-{i}.png" for i in range(entry.recipe.batch_size)]


def made_as_asked(made: Recipe, asked: Recipe, index: int) -> bool:
    """Whether `made` (image `index`'s recipe) is what `asked` (the queued recipe) asked for."""
    return made.seed == asked.seed + index and all(
        getattr(made, name) == getattr(asked, name) for name in _ASKED
    )


def finished_images(entry: Entry, folder: Path) -> tuple[Recipe, list[str]] | None:
    """(the recipe used, the image names) when every image of `entry` is in `folder`,
    whole, carrying the recipe it asked for; else None."""
    from studio.formats.png import ends_whole, read_recipe

    names = image_names(entry)
    if not all(ends_whole(folder / name) for name in names):
        return None  # cheap: no image is decoded unless all are there, each to its end
    first = None
    for index, name in enumerate(names):
        made = read_recipe(folder / name)  # None for a truncated or foreign PNG
        if made is None or not made_as_asked(made, entry.recipe, index):
            return None
        first = first or made
    assert first is not None
    return first.replace(seed=entry.recipe.seed, batch_size=entry.recipe.batch_size), names

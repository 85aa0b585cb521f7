"""Running a sweep through the service, and putting its grids together from the session.

`submit_sweep` records and queues every cell as an ordinary job. `finish_sweeps`
looks at the session only: for each sweep whose cells have all ended (at least
one with an image) and that has no finished grid entry yet, it draws the grids
and records them as one entry of their own, tagged with the ids of its cells.
So a sweep a crash cut short is finished by resuming its cells (`studio rerun
SESSION --resume`) and calling `finish_sweeps` again; nothing else is needed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from studio.sweeps.sweep import Sweep, grid_tag

if TYPE_CHECKING:
    from studio.service import Studio
    from studio.store.session import Entry, Session


def submit_sweep(studio: Studio, sweep: Sweep) -> list[str]:
    """Record and queue every cell, z then y then x; the job ids."""
    return [studio.submit(cell.recipe, sweep=sweep.cell_tag(cell), template=cell.template) for cell in sweep.cells()]


def is_grid(entry: Entry) -> bool:
    """A sweep's grid entry: made from its cells, never by the engine."""
    return bool(entry.sweep) and "cells" in entry.sweep  # type: ignore[operator]


def sweeps_in(session: Session) -> dict[str, tuple[list[Entry], list[Entry]]]:
    """Sweep id -> (its cells, its grid entries), in entry order."""
    found: dict[str, tuple[list[Entry], list[Entry]]] = defaultdict(lambda: ([], []))
    for entry in session.entries(include_deleted=True):
        if entry.sweep:
            found[entry.sweep["id"]][1 if is_grid(entry) else 0].append(entry)
    return dict(found)


def finish_sweeps(session: Session, out_dir: Path | None = None, only: set[str] | None = None) -> list[Path]:
    """Draw and record the grids every ended sweep still lacks (those in `only`, if given); their paths."""
    paths: list[Path] = []
    for sweep_id, (cells, grids) in sweeps_in(session).items():
        if only is not None and sweep_id not in only:
            continue
        if any(grid.status == "done" for grid in grids) or not cells:
            continue
        if not all(cell.final for cell in cells) or not any(cell.images for cell in cells):
            continue
        unfinished = [grid for grid in grids if not grid.final]
        paths += record_grids(session, cells, unfinished[0] if unfinished else None, out_dir)
    return paths


def record_grids(session: Session, cells: list[Entry], grid: Entry | None, out_dir: Path | None) -> list[Path]:
    """Record the grid entry (or finish `grid`, one a crash left open), then write and finish it."""
    from studio.formats.a1111 import a1111_parameters
    from studio.service import image_name
    from studio.sweeps.grid import compose, save_grid

    started = time.monotonic()
    tag = cells[0].sweep
    assert tag is not None
    nx, ny, nz = tag["shape"]
    by_at = {tuple(cell.sweep["at"]): cell for cell in cells if cell.sweep}  # type: ignore[index]
    labels = [_labels(cells, axis, n) for axis, n in enumerate((nx, ny, nz))]
    ids = [by_at[(i, j, k)].id if (i, j, k) in by_at else 0 for k in range(nz) for j in range(ny) for i in range(nx)]
    done = [cell for cell in cells if cell.images]
    first = done[0]
    if grid is None:
        grid = session.queue(first.recipe, sweep=grid_tag(tag, ids))
    folder = Path(out_dir) if out_dir is not None else session.path
    size = (first.recipe.width, first.recipe.height)
    paths = []
    for k in range(nz):
        images = {(i, j): _image(session, by_at.get((i, j, k)), size) for j in range(ny) for i in range(nx)}
        picture = compose(images, size, labels[0] if tag["axes"][0] else [], labels[1] if tag["axes"][1] else [],
                          labels[2][k] if tag["axes"][2] else "")
        path = folder / (f"{grid.stem}-grid.png" if nz == 1 else f"{grid.stem}-grid-{k + 1}.png")
        described = {"sweep": tag["id"], "axes": tag["axes"], "labels": labels, "z": k, "cells": ids}
        save_grid(picture, path, a1111_parameters(first.recipe), described)
        paths.append(path)
    session.finish(grid.id, first.recipe, [image_name(p, session.path) for p in paths], time.monotonic() - started)
    return paths


def _labels(cells: list[Entry], axis: int, count: int) -> list[str]:
    """Each value's label along one axis, read from whichever cells lie on it."""
    labels = [""] * count
    for cell in cells:
        at = cell.sweep["at"]  # type: ignore[index]
        labels[at[axis]] = labels[at[axis]] or cell.sweep["labels"][axis]  # type: ignore[index]
    return labels


def _image(session: Session, cell: Entry | None, size: tuple[int, int]):  # type: ignore[no-untyped-def]
    """A cell's first image, or None when it has none (failed, cancelled, or the file is gone)."""
    from PIL import Image, UnidentifiedImageError

    if cell is None or not cell.images:
        return None
    try:
        with Image.open(session.image_path(cell.images[0])) as image:
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None

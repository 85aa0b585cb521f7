"""Curation: copy what a query finds into a folder (contact sheets are studio.review.sheet).

`export` copies each matching entry's images byte for byte (so their PNG
metadata, the recipe inside, stays intact) as `<session>-<file>`, and writes
`manifest.toml`: one `[[image]]` table per file with its session, entry,
rating, note and the full recipe, read from the session file (the record),
not from the index. `contact_sheet` draws the images in a captioned grid and
records the query and the entries it shows in the PNG's own text chunks.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.review.index import Hit
from studio.store.session import Session, SessionError

MANIFEST = "manifest.toml"
SHEET = "contact-sheet.png"  # the sheet's copy in an export folder


class ExportError(Exception):
    """An export that cannot be made; the message is one line."""


@dataclass
class Exported:
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # images the record names but the disk lacks
    manifest: Path | None = None


def export(hits: list[Hit], dest: Path, root: Path) -> Exported:
    """Copy the images of `hits` into `dest` (new or empty) with a manifest of their recipes."""
    import tomli_w

    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(f"{dest} exists and is not an empty folder")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {dest}: {exc.strerror}") from None
    done = Exported()
    sessions: dict[str, Session] = {}
    records: list[dict[str, Any]] = []
    for hit in hits:
        try:
            session = sessions.get(hit.session) or sessions.setdefault(
                hit.session, Session(root / hit.session, read_only=True))
            entry = session.get(hit.id)
        except SessionError as exc:
            done.missing.append(str(exc))
            continue
        for image in hit.images:
            target = dest / f"{hit.session}-{image.name}"
            try:
                shutil.copy2(image, target)
            except OSError as exc:
                done.missing.append(f"{image}: {exc.strerror}")
                continue
            done.files.append(target)
            records.append({
                "file": target.name, "session": hit.session, "entry": hit.id, "time": entry.time,
                "rating": entry.rating, "favourite": entry.favourite, "note": entry.note,
                "model_hash": entry.model_hash, "recipe": entry.recipe.to_dict(),
            })
    done.manifest = dest / MANIFEST
    text = "# studio export: the recipe of every image in this folder\n" + tomli_w.dumps({"image": records})
    done.manifest.write_text(text, encoding="utf-8")
    return done

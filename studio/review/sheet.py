"""Contact sheets: the first image of each entry a query finds, in a captioned grid, recorded as an entry.

Like a sweep's grid, a sheet is an entry of its own in a session (the one
open, or one the artist names): queued with a `sheet` tag that holds the query
and the entries it shows (`SESSION:ID`, in order), then finished with the PNG
as its image. It is drawn from other entries, never run, so resuming skips it.
The PNG says what it is wherever it goes: an A1111 `parameters` text (a
description line, then `Query:` and `Entries:`; no `Steps:` line, as it has
no settings of its own), a `studio-contact-sheet` chunk (the tag, as JSON) and
XMP marking it a composite of AI-generated images (IPTC `compositeSynthetic`).
A sheet never shows another sheet.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.atomic import atomic_writer

if TYPE_CHECKING:
    from PIL import Image

    from studio.review.index import Hit
    from studio.store.session import Entry, Session

SHEET_KEY = "studio-contact-sheet"
CAPTION = 28  # pixels under each image: two lines of the default font


class SheetError(Exception):
    """A sheet that cannot be made; the message is one line."""


def draw(hits: list[Hit], columns: int = 6, cell: int = 192) -> tuple[Image.Image, list[Hit]]:
    """The grid of each hit's first image, captioned `session:id  seed  *rating` and the prompt;
    with the hits it shows (an entry whose image is itself a contact sheet is left out)."""
    from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

    pictures: list[tuple[Hit, Any]] = []
    for hit in hits:
        if not hit.images:
            continue
        try:
            with Image.open(hit.images[0]) as image:
                if SHEET_KEY in image.info:
                    continue
                image.thumbnail((cell - 8, cell - 8))
                pictures.append((hit, image.convert("RGB")))
        except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
            pictures.append((hit, None))  # named in the record, drawn as missing
    columns = max(1, min(columns, len(pictures) or 1))
    rows = max(1, -(-len(pictures) // columns))
    sheet = Image.new("RGB", (columns * cell, rows * (cell + CAPTION)), "white")
    pen = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for number, (hit, picture) in enumerate(pictures):
        x, y = (number % columns) * cell, (number // columns) * (cell + CAPTION)
        if picture is not None:
            sheet.paste(picture, (x + (cell - picture.width) // 2, y + (cell - picture.height) // 2))
        else:
            pen.rectangle((x + 4, y + 4, x + cell - 4, y + cell - 4), outline="grey")
            pen.text((x + 10, y + cell // 2), "missing", fill="grey", font=font)
        label = f"{hit.key}  seed {hit.seed}  {'*' * hit.rating}"
        pen.text((x + 4, y + cell + 2), _ascii(label)[:32], fill="black", font=font)
        pen.text((x + 4, y + cell + 14), _ascii(" ".join(hit.prompt.split()))[:32], fill="dimgrey", font=font)
    return sheet, [hit for hit, _ in pictures]


def describe(tag: dict[str, Any]) -> str:
    count = len(tag["entries"])
    return f"contact sheet of {count} AI-generated image{'s' * (count != 1)}, composed by studio"


def parameters(tag: dict[str, Any]) -> str:
    """What A1111's PNG Info (and sd-parsers, Civitai) shows for the sheet: what it is, its query, its entries."""
    return "\n".join([describe(tag), f"Query: {tag['query'] or '(every entry)'}", f"Entries: {', '.join(tag['entries'])}"])


def save_sheet(image: Image.Image, path: Path, tag: dict[str, Any]) -> None:
    """Write the sheet atomically with its description, its tag and the composite disclosure."""
    from PIL.PngImagePlugin import PngInfo

    from studio.formats import SOFTWARE
    from studio.formats.a1111 import PARAMETERS_KEY
    from studio.formats.png import XMP_KEY, xmp_packet
    from studio.formats.provenance import COMPOSITE_SYNTHETIC

    info = PngInfo()
    info.add_text(PARAMETERS_KEY, parameters(tag))
    info.add_itxt(SHEET_KEY, json.dumps(tag, ensure_ascii=False))
    info.add_itxt(XMP_KEY, xmp_packet(COMPOSITE_SYNTHETIC))
    info.add_text("Software", SOFTWARE)
    with atomic_writer(Path(path)) as handle:
        image.save(handle, format="PNG", pnginfo=info)


def record_sheet(session: Session, hits: list[Hit], query: str, columns: int = 6, cell: int = 192) -> tuple[Entry, Path]:
    """Draw the sheet of `hits` (found by `query`) and record it in `session` as an entry of its own.

    The entry is queued with its tag first, then finished with the image, as a
    sweep's grid is; its recipe carries only the description as its prompt.
    """
    from studio.recipe import Recipe

    started = time.monotonic()
    picture, shown = draw(hits, columns, cell)
    if not shown:
        raise SheetError("nothing to draw: none of the entries found has an image")
    tag = {"query": query, "entries": [hit.key for hit in shown]}
    entry = session.queue(Recipe(prompt=f"{describe(tag)}; query: {query or '(every entry)'}"), sheet=tag)
    path = session.path / f"{entry.stem}-sheet.png"
    save_sheet(picture, path, tag)
    session.finish(entry.id, entry.recipe, [path.name], time.monotonic() - started)
    return session.get(entry.id), path


def _ascii(text: str) -> str:
    """The default bitmap font draws ASCII only; anything else becomes '?'."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)

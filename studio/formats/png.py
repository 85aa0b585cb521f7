"""PNG metadata in and out: A1111 `parameters`, the studio recipe, an AI disclosure.

Every image studio saves carries three things so it explains itself anywhere:
an AUTOMATIC1111-style `parameters` text (read by A1111, Civitai, sd-parsers),
the exact Recipe as TOML in a `studio-recipe` chunk (what `studio import` and
`studio rerun` trust first), and XMP marking it as made by a trained algorithm
(IPTC DigitalSourceType), as provenance guidance asks.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import TYPE_CHECKING

from studio.atomic import atomic_writer
from studio.formats import SOFTWARE
from studio.formats.a1111 import PARAMETERS_KEY, a1111_parameters
from studio.formats.provenance import TRAINED_ALGORITHMIC_MEDIA, digital_source_type
from studio.formats.studio_recipe import RECIPE_KEY, read_studio_recipe, recipe_toml

if TYPE_CHECKING:
    from PIL import Image

    from studio.recipe import Recipe

XMP_KEY = "XML:com.adobe.xmp"

_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="{software}">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    Iptc4xmpExt:DigitalSourceType="{source}"
    xmp:CreatorTool="{software}"
    tiff:Software="{software}"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


def xmp_packet(source: str = TRAINED_ALGORITHMIC_MEDIA) -> str:
    return _XMP.format(software=SOFTWARE, source=source)


def save_png(image: Image.Image, path: Path, recipe: Recipe) -> None:
    """Save `image` at `path` with its metadata; a crash never leaves half a PNG."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(recipe))
    info.add_itxt(RECIPE_KEY, recipe_toml(recipe))
    info.add_itxt(XMP_KEY, xmp_packet(digital_source_type(recipe)))
    info.add_text("Software", SOFTWARE)
    with atomic_writer(path) as handle:
        image.save(handle, format="PNG", pnginfo=info)


_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # a PNG's last chunk, always these 12 bytes


def ends_whole(path: Path) -> bool:
    """Whether `path` is a file ending in a PNG's IEND chunk (cheap: reads 12 bytes).

    PIL decodes a PNG cut just short of IEND without complaint, so a file a
    crash cut off is told by its end, not by decoding it.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(-len(_IEND), os.SEEK_END)
            return handle.read() == _IEND
    except OSError:  # missing, a folder, or shorter than 12 bytes
        return False


def read_recipe(path: Path) -> Recipe | None:
    """The Recipe in a PNG's `studio-recipe` chunk; None when the file, the chunk or the recipe is not whole."""
    from PIL import Image

    from studio.recipe import Recipe, RecipeError

    if not ends_whole(path):
        return None
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                return None
            image.load()
            text = getattr(image, "text", {}).get(RECIPE_KEY)
        if not isinstance(text, str):
            return None
        return Recipe.from_dict(read_studio_recipe(text))
    except (OSError, ValueError, SyntaxError, EOFError, RecursionError, TypeError, RecipeError):
        return None

"""The IPTC digital source type of an image studio makes.

A picture made from text alone is `trainedAlgorithmicMedia`. One made over an
init image that no generator made (the artist's photo, drawing or sketch: any
image without studio, A1111, ComfyUI or InvokeAI metadata) is
`compositeWithTrainedAlgorithmicMedia`, as IPTC asks for media that mix
captured or drawn content with generated content.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.formats.a1111 import PARAMETERS_KEY, parse_a1111
from studio.formats.importer import ImportFailed, read_metadata
from studio.formats.invokeai import INVOKEAI_KEY, LEGACY_KEY
from studio.formats.studio_recipe import RECIPE_KEY

if TYPE_CHECKING:
    from studio.recipe import Recipe

_CODES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = _CODES + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = _CODES + "compositeWithTrainedAlgorithmicMedia"
COMPOSITE_SYNTHETIC = _CODES + "compositeSynthetic"  # a composite of generated images (a contact sheet)

_GENERATOR_KEYS = (RECIPE_KEY, INVOKEAI_KEY, LEGACY_KEY, "prompt", "workflow")  # studio, InvokeAI, ComfyUI


def digital_source_type(recipe: Recipe) -> str:
    if recipe.init_image and not made_by_a_generator(Path(recipe.init_image)):
        return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    return TRAINED_ALGORITHMIC_MEDIA


def made_by_a_generator(path: Path) -> bool:
    """Whether the image carries a generator's metadata (a bare comment or caption is not enough)."""
    try:
        texts = read_metadata(path)
    except ImportFailed:
        return False
    if any(key in texts for key in _GENERATOR_KEYS):
        return True
    try:
        parse_a1111(texts.get(PARAMETERS_KEY, ""))  # A1111 and Fooocus: a settings line with Steps
    except ValueError:
        return False
    return True

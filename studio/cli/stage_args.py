"""`studio generate`'s two-model flags: Stable Cascade's prior, and the SDXL refiner.

--prior NAME, --prior-steps N, --prior-cfg X (stage C; the decoder takes --steps and --cfg);
--refiner NAME, --refiner-switch X (A1111's "Refiner switch at": the base's share of the steps).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from studio.recipe import Recipe, RecipeError

if TYPE_CHECKING:
    from studio.models.library import ModelLibrary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("two-stage models (Stable Cascade, the SDXL refiner)")
    group.add_argument("--prior", metavar="NAME",
                       help="Stable Cascade's prior (stage C) folder (default: found beside the decoder or in the library)")
    group.add_argument("--prior-steps", type=int, metavar="N", help="steps of the prior (default: 20)")
    group.add_argument("--prior-cfg", dest="prior_cfg_scale", type=float, metavar="X",
                       help="guidance of the prior (default: 4); --steps and --cfg are the decoder's")
    group.add_argument("--refiner", metavar="NAME", help="an SDXL refiner to finish the image with, as A1111's Refiner")
    group.add_argument("--refiner-switch", type=float, metavar="X",
                       help="share of the steps the base runs before the refiner takes over, 0..1 (default: 0.8)")


def apply(args: argparse.Namespace, recipe: Recipe, library: ModelLibrary) -> Recipe:
    """`recipe` with the flags' stages; RecipeError naming the flag, or the model not found."""
    from studio.models.inspect import CHECKPOINT

    changes = {name: getattr(args, name) for name in ("prior", "prior_steps", "prior_cfg_scale", "refiner",
                                                         "refiner_switch") if getattr(args, name, None) is not None}
    if "refiner_switch" in changes and not changes.get("refiner"):
        raise RecipeError("--refiner-switch needs --refiner NAME")
    for name in ("prior", "refiner"):
        if changes.get(name):
            library.resolve(changes[name], kind=CHECKPOINT)  # a misspelt name fails before anything is recorded
    return recipe.replace(**changes) if changes else recipe

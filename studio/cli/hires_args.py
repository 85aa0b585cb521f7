"""`studio generate`'s hires-fix flags: --hires SCALE, --hires-upscaler, --hires-steps, ..."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from studio.recipe import Recipe, RecipeError

if TYPE_CHECKING:
    from studio.models.library import ModelLibrary

_NEEDS_SCALE = ("hires_upscaler", "hires_steps", "hires_denoise", "hires_prompt", "hires_negative_prompt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hires fix (generate small, upscale, refine with img2img)")
    group.add_argument("--hires", dest="hires_scale", type=float, metavar="SCALE",
                       help="final size over the first pass's, 1..4 (e.g. 2: 512x512 becomes 1024x1024)")
    group.add_argument("--hires-upscaler", metavar="NAME",
                       help="Latent (default), Latent (bicubic), Latent (nearest-exact)…, Lanczos, studio-2x, or an upscaler file")
    group.add_argument("--hires-steps", type=int, metavar="N", help="steps of the second pass (default 0: as the first)")
    group.add_argument("--hires-denoise", type=float, metavar="S", help="denoising strength of the second pass 0..1 (default 0.7)")
    group.add_argument("--hires-prompt", metavar="TEXT", help="the second pass's prompt (default: the first's)")
    group.add_argument("--hires-negative-prompt", metavar="TEXT", help="the second pass's negative prompt")
    group.add_argument("--spandrel-extra-arches", action="store_true",
                       help="an upscaler file may be one of spandrel's non-commercial architectures "
                       "(needs spandrel_extra_arches; config: spandrel_extra_arches)")


def apply(args: argparse.Namespace, recipe: Recipe, library: ModelLibrary) -> Recipe:
    """`recipe` with the hires fix the flags ask for; RecipeError naming the flag or the upscaler."""
    given = {name: getattr(args, name) for name in _NEEDS_SCALE if getattr(args, name, None) is not None}
    if args.hires_scale is None:
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise RecipeError(f"{flag} needs --hires SCALE")
        return recipe
    recipe = recipe.replace(hires_scale=args.hires_scale, **given)
    if recipe.hires_scale:
        from studio.upscale.spandrel_net import extra_arches_wanted, use_extra_arches
        from studio.upscale.upscalers import BUILTIN_UPSCALER, resolve_upscaler

        ref = resolve_upscaler(recipe.hires_upscaler, library)  # a misspelt name fails before anything is recorded
        if ref.kind == "network" and ref.name != BUILTIN_UPSCALER:  # a user's file: spandrel loads it
            # the flag or the config's switch; a missing package fails here, before anything is recorded
            use_extra_arches(getattr(args, "spandrel_extra_arches", False) or extra_arches_wanted())
    return recipe

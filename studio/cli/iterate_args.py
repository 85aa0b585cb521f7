"""`studio generate`'s flags for taking an image further: --init, --mask, --strength, variations."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from studio.recipe import INPAINT_AREAS, RESIZE_MODES, Recipe, RecipeError

if TYPE_CHECKING:
    from studio.config import Config

_ENTRY = re.compile(r"^(?P<session>[^/\\]+):(?P<id>\d+)$")
_NEEDS_INIT = ("strength", "resize_mode", "mask", "mask_blur", "inpaint_area", "padding")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("taking an image further")
    group.add_argument("--init", metavar="IMAGE|SESSION:ID", help="start from this image (img2img), or a session entry's")
    group.add_argument("--strength", type=float, help="denoising strength 0..1 (default: 0.75)")
    group.add_argument("--resize-mode", choices=RESIZE_MODES, help="an init image of another size: crop (default), resize or pad")
    group.add_argument("--mask", type=Path, metavar="MASK.png", help="repaint where the mask is white (inpainting)")
    group.add_argument("--mask-blur", type=int, metavar="PX", help="soften the mask's seam (default: 4)")
    group.add_argument("--inpaint-area", choices=INPAINT_AREAS, help="repaint at the whole picture's scale, or only the masked region")
    group.add_argument("--padding", type=int, metavar="PX", help="context around the masked region for --inpaint-area masked (default: 32)")
    group.add_argument("--variation-seed", type=int, metavar="N", help="mix in this seed's noise ...")
    group.add_argument("--variation-strength", type=float, metavar="W", help="... by W in 0..1 (0: the seed's image, 1: N's)")


def apply(args: argparse.Namespace, recipe: Recipe, config: Config, size_given: bool) -> Recipe:
    """`recipe` with the init image, mask and variation the flags ask for; RecipeError naming the flag."""
    from studio.iterate import open_image, with_init

    given = {name: getattr(args, name) for name in _NEEDS_INIT if getattr(args, name) is not None}
    if given and not args.init:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise RecipeError(f"{flag} needs --init IMAGE (an image to start from)")
    if (args.variation_seed is None) != (args.variation_strength is None):
        raise RecipeError("--variation-seed and --variation-strength go together")
    changes: dict[str, object] = {}
    if args.variation_seed is not None:
        changes.update(variation_seed=args.variation_seed, variation_strength=args.variation_strength)
    renamed = {"padding": "inpaint_padding"}
    changes.update({renamed.get(name, name): value for name, value in given.items() if name != "mask"})
    recipe = recipe.replace(**changes)
    if not args.init:
        return recipe
    init = init_path(args.init, args, config)
    if not size_given:  # the init image's own size, to a multiple of 8
        image = open_image(init, "init image")
        recipe = recipe.replace(width=max(8, image.width // 8 * 8), height=max(8, image.height // 8 * 8))
    return with_init(recipe, init, args.mask)


def init_path(text: str, args: argparse.Namespace, config: Config) -> Path:
    """A file, or `SESSION:ID`: that entry's (first) image."""
    path = Path(text).expanduser()
    match = _ENTRY.match(text)
    if path.exists() or match is None:
        return path
    from studio.config import sessions_dir_from
    from studio.store.session import SessionError, SessionStore

    try:
        session = SessionStore(sessions_dir_from(args, config)).open(match["session"], read_only=True)
        entry = session.get(int(match["id"]))
    except SessionError as exc:
        raise RecipeError(f"--init {text}: {exc}") from None
    if not entry.images:
        raise RecipeError(f"--init {text}: entry {entry.id} has no image ({entry.status})")
    return session.image_path(entry.images[0])

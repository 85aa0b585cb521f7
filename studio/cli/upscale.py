"""`studio upscale IMAGE|SESSION:ID`: make an image bigger with an upscaler, as a new session entry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.recipe import Recipe, RecipeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("source", metavar="IMAGE|SESSION:ID", help="an image file, or a session entry's image")
    parser.add_argument("--upscaler", default="studio-2x", metavar="NAME",
                        help="studio-2x (built in, default), Lanczos, Nearest, or an upscaler file (studio models --kind upscaler)")
    parser.add_argument("--scale", type=float, default=2.0, metavar="N", help="how many times bigger, 1..8 (default 2)")
    parser.add_argument("--tile", type=int, default=512, metavar="PX", help="tile side in input pixels (default 512; halved on out-of-memory)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where the PNG goes (default: the session folder)")
    parser.add_argument("--session", metavar="NAME", help="add the entry to this session (made if new)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="read a pickled .pth upscaler with torch's restricted weights-only unpickler")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.run import library_for, make_studio, open_session, run_recipes, say
    from studio.config import load_config

    config = load_config()
    library = library_for(config)
    try:
        recipe = upscale_recipe(args, library, config)
    except (RecipeError, LookupError, ValueError, PermissionError) as exc:
        say(str(exc))
        return 2
    session = open_session(args, config)
    if session is None:
        return 1
    studio = make_studio(session, library, config, out_dir=args.out)
    return 0 if run_recipes(studio, [recipe], quiet=args.quiet).ok else 1


def upscale_recipe(args: argparse.Namespace, library, config) -> Recipe:
    """The upscale's recipe: the source's own (where it has one) naming the source and the upscaler."""
    from studio.cli.iterate_args import init_path
    from studio.formats.png import read_recipe
    from studio.iterate import file_hash, open_image
    from studio.upscale.upscalers import resolve_upscaler

    path = init_path(args.source, args, config)
    image = open_image(path, "source image")
    ref = resolve_upscaler(args.upscaler, library)
    if ref.kind == "latent":
        raise RecipeError(f"{ref.name} works on latents: use it with generate --hires; here use studio-2x or Lanczos")
    try:
        base = read_recipe(path) or Recipe(prompt="")
    except (RecipeError, ValueError, OSError):
        base = Recipe(prompt="")
    base = base.replace(
        batch_size=1, hires_scale=0.0, mask="", mask_hash="", variation_strength=0.0, device=args.device,
        width=max(8, min(image.width, 8192) // 8 * 8), height=max(8, min(image.height, 8192) // 8 * 8),
        upscaler=ref.name, upscaler_hash=ref.hash, upscale_scale=args.scale, upscale_tile=args.tile,
        allow_pickle=args.allow_pickle, init_image=str(path.resolve()), init_image_hash=file_hash(path),
    )
    if max(image.width, image.height) * args.scale > 16384:
        raise RecipeError(f"{image.width}x{image.height} times {args.scale} is over 16384 pixels a side")
    return base

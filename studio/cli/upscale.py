"""`studio upscale IMAGE|SESSION:ID`: make an image bigger with an upscaler, as a new session entry."""

from __future__ import annotations

import argparse
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
    parser.add_argument("--spandrel-extra-arches", action="store_true",
                        help="also load spandrel's non-commercial architectures (needs spandrel_extra_arches; "
                        "config: spandrel_extra_arches)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.run import library_for, make_studio, open_session, run_recipes, say
    from studio.config import load_config
    from studio.upscale.spandrel_net import use_extra_arches

    config = load_config()
    library = library_for(config)
    try:
        use_extra_arches(args.spandrel_extra_arches or config.spandrel_extra_arches)
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
    from studio.cli.iterate_args import init_path
    from studio.upscale.job import upscale_recipe as recipe_for
    from studio.upscale.upscalers import resolve_upscaler

    path = init_path(args.source, args, config)
    ref = resolve_upscaler(args.upscaler, library)
    return recipe_for(path, ref, args.scale, args.tile, args.device, args.allow_pickle)

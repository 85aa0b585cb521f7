"""`studio import IMAGE`: print the recipe inside an image as TOML; --run makes it again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from studio.printable import printable, printable_toml

if TYPE_CHECKING:
    from studio.config import Config
    from studio.formats.importer import ImportResult
    from studio.models.library import ModelLibrary
    from studio.recipe import Recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("image", type=Path, help="a PNG, JPEG or WebP made by studio, A1111, ComfyUI, InvokeAI or Fooocus")
    parser.add_argument("--run", dest="run_it", action="store_true", help="also make the image again (recorded in a session)")
    parser.add_argument("--session", metavar="NAME", help="with --run: add to this session (default: a new one)")
    parser.add_argument("--device", help="with --run: use this device instead of the recorded one")
    parser.add_argument("--quiet", "-q", action="store_true", help="with --run: no progress bar")
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.config import load_config
    from studio.formats.importer import ImportFailed, import_recipe, model_locator
    from studio.models.library import ModelLibrary
    from studio.recipe import RecipeError

    config = load_config()
    library = ModelLibrary.from_config(config)
    try:
        result = import_recipe(args.image, locate=model_locator(library.resolve))
    except ImportFailed as exc:
        print(printable(f"studio import: {exc}"), file=sys.stderr)
        return 1
    # With --run, stdout is for the new images' paths (like `studio generate`).
    print(render(result, args.image), end="", file=sys.stderr if args.run_it else sys.stdout)
    if not args.run_it:
        return 0
    recipe = result.recipe
    try:
        if args.device:
            recipe = recipe.replace(device=args.device)
    except RecipeError as exc:
        print(printable(f"studio import: {exc}"), file=sys.stderr)
        return 2
    return run_in_session([recipe], args, config, library)


def render(result: ImportResult, image: Path) -> str:
    """The recipe as TOML, with what could not be mapped as notes (and comments)."""
    import tomli_w

    lines = [printable(f"# recipe recovered from {image} ({result.source})")]
    for note in result.notes:
        lines.append(printable(f"# could not map: {note}"))
    body = tomli_w.dumps({"source": result.source, "notes": result.notes, "recipe": result.recipe.to_dict()})
    return "\n".join(lines) + "\n" + printable_toml(body)


def run_in_session(recipes: list[Recipe], args: argparse.Namespace, config: Config, library: ModelLibrary) -> int:
    """Run recipes through the service, recording them in a session."""
    from studio.cli.run import make_studio, open_session, run_recipes

    session = open_session(args, config)
    if session is None:
        return 1
    print(printable(f"session {session.name}"), file=sys.stderr)
    studio = make_studio(session, library, config)
    return 0 if run_recipes(studio, recipes, quiet=args.quiet).ok else 1

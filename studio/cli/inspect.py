"""`studio inspect MODEL`: what is inside a weights file, read from its header only."""

from __future__ import annotations

import argparse
import json
import sys

from studio.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", metavar="MODEL",
        help=".safetensors file or diffusers folder, or the name of a model in the model folders",
    )
    parser.add_argument(
        "--dir", action="append", default=[], metavar="DIR",
        help="also look for MODEL in this folder (repeatable), before the configured ones",
    )
    parser.add_argument("--json", action="store_true", help="print the inspection as JSON")
    parser.add_argument("--metadata", action="store_true", help="show every metadata entry")
    parser.add_argument("--tags", type=int, default=20, metavar="N", help="training tags to list (default 20)")
    parser.add_argument(
        "--allow-pickle", action="store_true",
        help="read a pickled .ckpt/.pt/.bin with torch's restricted weights-only unpickler",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.config import load_config
    from studio.models.inspect import inspect_file
    from studio.models.library import ModelLibrary
    from studio.models.pickles import PickleRefused
    from studio.models.report import format_inspection
    from studio.models.safetensors_header import HeaderError

    path = Path(args.path).expanduser()
    if not path.exists():
        # Not a path: a model by name. Found without hashing, as inspecting needs no hash.
        library = ModelLibrary.from_config(load_config(), extra_dirs=[Path(d) for d in args.dir])
        entry = library.find(args.path)
        if entry is None:
            print(printable(f"studio inspect: {args.path}: no such file or model"
                            f" (looked in: {library.looked_in(args.path)})"), file=sys.stderr)
            return 1
        path = entry.path
    try:
        result = inspect_file(path, allow_pickle=args.allow_pickle)
    except (HeaderError, PickleRefused) as exc:
        print(printable(f"studio inspect: {exc}"), file=sys.stderr)
        return 1
    if args.json:
        # ASCII JSON: every control, bidi or unpaired character in the metadata arrives as a \u escape.
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=True))
    else:
        print(format_inspection(result, all_metadata=args.metadata, tags=args.tags))
        pairing = _pairing(path, args)
        if pairing:
            print(printable(pairing))
    return 0


def _pairing(path, args: argparse.Namespace) -> str:
    """For a Flux or SD3 file: the text encoders and VAE a job would pair it with, or why none fit."""
    from pathlib import Path

    from studio.config import load_config
    from studio.models.comfy_layout import file_architecture, with_companions
    from studio.models.library import ModelLibrary
    from studio.recipe import Recipe

    try:
        if not file_architecture(path):
            return ""
        library = ModelLibrary.from_config(load_config(), extra_dirs=[Path(d) for d in args.dir])
        paired = with_companions(Recipe(prompt="", model=str(path)), library)
    except (LookupError, ValueError, ImportError) as exc:
        return f"pairs with: nothing yet ({exc})"
    parts = [*paired.text_encoders, *([f"VAE {paired.vae}"] if paired.vae else [])]
    return "pairs with: " + (", ".join(parts) if parts else "nothing (all inside the file)")

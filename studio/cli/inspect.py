"""`studio inspect FILE`: what is inside a weights file, read from its header only."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="FILE", help=".safetensors file or diffusers folder")
    parser.add_argument("--json", action="store_true", help="print the inspection as JSON")
    parser.add_argument("--metadata", action="store_true", help="show every metadata entry")
    parser.add_argument("--tags", type=int, default=20, metavar="N", help="training tags to list (default 20)")
    parser.add_argument(
        "--allow-pickle", action="store_true",
        help="read a pickled .ckpt/.pt/.bin with torch's weights-only loader",
    )


def run(args: argparse.Namespace) -> int:
    from studio.models.inspect import inspect_file
    from studio.models.pickles import PickleRefused
    from studio.models.report import format_inspection
    from studio.models.safetensors_header import HeaderError

    try:
        result = inspect_file(args.path, allow_pickle=args.allow_pickle)
    except (HeaderError, PickleRefused) as exc:
        print(f"studio inspect: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_inspection(result, all_metadata=args.metadata, tags=args.tags))
    return 0

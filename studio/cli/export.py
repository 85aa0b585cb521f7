"""`studio export QUERY DIR`: copy what a search finds, metadata intact, with a manifest of recipes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("query", help="a search, quoted as one argument (see `studio search`)")
    parser.add_argument("dir", type=Path, help="a new or empty folder")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="at most N entries (default: all)")
    parser.add_argument("--sheet", action="store_true", help="also draw a captioned contact sheet")
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.search import find
    from studio.config import sessions_dir_from
    from studio.review.export import SHEET, ExportError, contact_sheet, export

    hits = find(args, args.query)
    if hits is None:
        return 2
    try:
        done = export(hits, args.dir, sessions_dir_from(args))
    except ExportError as exc:
        print(printable(f"studio: {exc}"), file=sys.stderr)
        return 1
    for problem in done.missing:
        print(printable(f"warning: not copied: {problem}"), file=sys.stderr)
    if args.sheet:
        print(printable(str(contact_sheet(hits, args.dir / SHEET, args.query))))
    print(printable(f"{len(done.files)} images and {done.manifest} from {len(hits)} entries"))
    return 0

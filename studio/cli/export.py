"""`studio export QUERY DIR`: copy what a search finds, metadata intact, with a manifest of recipes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.cli.sheet import add_sheet_arguments
    from studio.config import add_sessions_dir_argument

    parser.add_argument("query", help="a search, quoted as one argument (see `studio search`)")
    parser.add_argument("dir", type=Path, help="a new or empty folder")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="at most N entries (default: all)")
    parser.add_argument("--sheet", action="store_true",
                        help="also draw a captioned contact sheet, recorded as a session entry (see `studio sheet`)"
                             " and copied into DIR")
    add_sheet_arguments(parser, limit=None)
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.search import find
    from studio.config import sessions_dir_from
    from studio.review.export import SHEET, ExportError, export

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
    print(printable(f"{len(done.files)} images and {done.manifest} from {len(hits)} entries"))
    if args.sheet:
        import shutil

        from studio.cli.sheet import record

        sheet = record(args, hits, args.query)
        if sheet is None:
            return 1
        shutil.copy2(sheet, args.dir / SHEET)
        print(printable(str(sheet)))  # the last line: the sheet as recorded
    return 0

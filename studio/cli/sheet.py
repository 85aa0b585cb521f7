"""`studio sheet QUERY`: a captioned contact sheet of what a search finds, recorded as a session entry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.printable import printable

MOST = 1000  # entries on one sheet; past that the picture is too big to look at


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("query", help="a search, quoted as one argument (see `studio search`)")
    add_sheet_arguments(parser, limit=60)
    add_sessions_dir_argument(parser)


def add_sheet_arguments(parser: argparse.ArgumentParser, limit: int | None) -> None:
    parser.add_argument("--session", metavar="NAME",
                        help="record the sheet in this session (made if new; default: a new one)")
    parser.add_argument("--columns", type=int, default=6, metavar="N", help="images a row (default 6)")
    if limit is not None:
        parser.add_argument("--limit", type=int, default=limit, metavar="N",
                            help=f"at most N entries, newest first as the query sorts (default {limit}, at most {MOST})")


def record(args: argparse.Namespace, hits: list, query: str) -> Path | None:
    """Draw and record the sheet of `hits`; its path, or None after a one-line error."""
    from studio.cli.run import open_session, say
    from studio.config import load_config
    from studio.review.sheet import SheetError, record_sheet

    if not 1 <= args.columns <= 100:
        say("--columns must be between 1 and 100")
        return None
    if len(hits) > MOST:
        say(f"a contact sheet shows at most {MOST} entries (the query found {len(hits)}); narrow it or use --limit")
        return None
    session = open_session(args, load_config())
    if session is None:
        return None
    try:
        entry, path = record_sheet(session, hits, query, columns=args.columns)
    except (SheetError, OSError) as exc:
        say(f"cannot make the contact sheet: {exc}")
        return None
    print(printable(f"{session.name}:{entry.id}  contact sheet of {len(entry.sheet['entries'])} entries"))
    return path


def run(args: argparse.Namespace) -> int:
    from studio.cli.search import find

    if not 1 <= args.limit <= MOST:
        print(f"studio: --limit must be between 1 and {MOST}", file=sys.stderr)
        return 2
    hits = find(args, args.query)
    if hits is None:
        return 2
    path = record(args, hits, args.query)
    if path is None:
        return 1
    print(printable(str(path)))  # the last line: the sheet itself
    return 0

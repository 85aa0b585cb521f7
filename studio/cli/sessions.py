"""`studio sessions`: list sessions with their size and dates."""

from __future__ import annotations

import argparse
import sys

from studio.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.table import format_table
    from studio.config import sessions_dir_from
    from studio.store.session import SessionStore

    root = sessions_dir_from(args)
    summaries = SessionStore(root).list()
    if not summaries:
        print(f"no sessions in {root}", file=sys.stderr)
        return 0
    rows = [[s.name, str(s.entries), short_time(s.first), short_time(s.last)] for s in summaries]
    print(format_table(["SESSION", "ENTRIES", "FIRST", "LAST"], rows, right={1}))
    for summary in summaries:
        if summary.warning:
            print(printable(f"warning: {summary.name}: {summary.warning}"), file=sys.stderr)
    return 0


def short_time(iso: str) -> str:
    """'2026-11-25T20:12:03.123Z' -> '2026-11-25 20:12' (UTC), '' -> '-'."""
    return iso[:16].replace("T", " ") if iso else "-"



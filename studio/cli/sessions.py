"""`studio sessions`: list sessions with their size and dates."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
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
            print(f"warning: {summary.name}: {summary.warning}", file=sys.stderr)
    return 0


def short_time(iso: str) -> str:
    """'2026-11-25T20:12:03.123Z' -> '2026-11-25 20:12' (UTC), '' -> '-'."""
    return iso[:16].replace("T", " ") if iso else "-"


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if i in right:
                cells.append(str(cell).rjust(widths[i]))
            else:
                cells.append(str(cell) if last else str(cell).ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

"""`studio show SESSION`: print a session's entries as a table."""

from __future__ import annotations

import argparse
import sys

from studio.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("session", help="session name (or a unique prefix of one, or its folder)")
    parser.add_argument("--all", action="store_true", help="include deleted entries")
    parser.add_argument("--width", type=int, default=48, metavar="N", help="prompt column width")
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.sessions import short_time
    from studio.cli.table import format_table
    from studio.config import sessions_dir_from
    from studio.store.session import SessionError, SessionStore

    try:
        session = SessionStore(sessions_dir_from(args)).open(args.session, read_only=True)
    except SessionError as exc:
        print(printable(f"studio: {exc}"), file=sys.stderr)
        return 1
    entries = session.entries(include_deleted=args.all)
    headers = ["ID", "TIME", "STATUS", "SEED", "STEPS", "SAMPLER", "SIZE", "MODEL", "MARKS", "PROMPT"]
    rows = [
        [
            str(e.id),
            short_time(e.time),
            e.status + (" (deleted)" if e.deleted else ""),
            str(e.recipe.seed),
            str(e.recipe.steps),
            e.recipe.sampler,
            e.recipe.size,
            e.recipe.model,
            marks(e),
            clip(e.recipe.prompt, args.width),
        ]
        for e in entries
    ]
    print(printable(f"{session.name}: {len(entries)} entries  ({session.path})"))
    if rows:
        print(format_table(headers, rows, right={0, 3, 4}))
    for warning in session.warnings:
        print(printable(f"warning: {warning}"), file=sys.stderr)
    return 0


def marks(entry) -> str:
    parts = []
    if entry.favourite:
        parts.append("♥")
    if entry.rating:
        parts.append("★" * entry.rating)
    if entry.note:
        parts.append("✎")
    return " ".join(parts) or "-"


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"

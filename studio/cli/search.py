"""`studio search QUERY`: find entries across every session (see `studio.review.query` for the syntax)."""

from __future__ import annotations

import argparse
import json
import sys

from studio.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("query", nargs="*", help="words and key:value filters, e.g. fox lora:inkwash rating:>=4")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N matches (0: all; default 50)")
    parser.add_argument("--json", action="store_true", help="print the matches as a JSON list")
    add_sessions_dir_argument(parser)


def open_index(args: argparse.Namespace):
    """The review index for the sessions folder, brought up to date (notices on stderr)."""
    from studio.config import sessions_dir_from
    from studio.review.index import IndexBusy, ReviewIndex

    index = ReviewIndex(sessions_dir_from(args), notice=lambda text: print(printable(f"studio: {text}"), file=sys.stderr))
    try:
        index.update()
    except IndexBusy as exc:  # another studio is writing it: search what it holds now
        print(printable(f"warning: {exc}; searching what it holds"), file=sys.stderr)
    return index


def find(args: argparse.Namespace, text: str) -> list | None:
    """The entries `text` finds (at most `args.limit`, 0 for all); None after a one-line error."""
    from studio.review.query import QueryError, parse_query

    try:
        query = parse_query(text)
    except QueryError as exc:
        print(printable(f"studio: {exc}"), file=sys.stderr)
        return None
    index = open_index(args)
    try:
        return index.search(query, limit=args.limit or None)
    finally:
        index.close()


def run(args: argparse.Namespace) -> int:
    from studio.cli.sessions import short_time

    if args.limit < 0:
        print("studio: --limit must be 0 or more", file=sys.stderr)
        return 2
    hits = find(args, " ".join(args.query))
    if hits is None:
        return 2
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=1))  # ensure_ascii: no control reaches the terminal
        return 0
    if not hits:
        print("no matches", file=sys.stderr)
        return 0
    width = max(len(hit.key) for hit in hits)
    for hit in hits:
        rating = "★" * hit.rating + ("♥" if hit.favourite else "")
        print(printable(f"{hit.key:<{width}}  {short_time(hit.time)}  {rating or '-':<6}  {clip(hit.prompt, 70)}"))
    return 0


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

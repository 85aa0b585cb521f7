"""`studio rerun SESSION ID`: make a session entry's image again, from its recipe."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("session", help="session name (or a unique prefix of one, or its folder)")
    parser.add_argument("ids", nargs="*", metavar="ID", help="entry ids to make again")
    parser.add_argument("--resume", action="store_true",
                        help="run the entries a crashed or disconnected studio left queued")
    parser.add_argument("--device", help="use this device instead of the recorded one")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_sessions_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from studio.recipe import RecipeError
    from studio.store.session import SessionError, SessionStore
    from studio.config import sessions_dir_from

    if not args.ids and not args.resume:
        print("studio rerun: give entry ids, or --resume", file=sys.stderr)
        return 2
    try:
        session = SessionStore(sessions_dir_from(args)).open(args.session)
        entries = [session.get(entry_id) for entry_id in args.ids]
        if args.resume:
            left = session.unfinished()
            if not left and not entries:
                print(f"studio rerun: nothing left unfinished in {session.name}", file=sys.stderr)
                return 0
            for entry in left:
                session.cancel(entry.id, "interrupted; resumed as a new entry")
            entries += left
        recipes = [e.recipe.replace(device=args.device) if args.device else e.recipe for e in entries]
    except (SessionError, RecipeError) as exc:
        print(f"studio rerun: {exc}", file=sys.stderr)
        return 1
    for entry in entries:
        _warn_if_model_changed(entry)
    from studio.cli.generate import run_recipes

    result = run_recipes(recipes, session.path, session=session, quiet=args.quiet)
    return 0 if getattr(result, "ok", bool(result)) else 1


def _warn_if_model_changed(entry) -> None:
    """Same model, seed and device give the same pixels; say so when the model differs."""
    from studio.models.resolve import ModelNotFound, resolve

    recorded = entry.model_hash or entry.recipe.model_hash
    if not recorded:
        return
    try:
        ref = resolve(entry.recipe.model)
    except (ModelNotFound, OSError, ValueError):
        return  # the engine reports a missing model itself
    if ref.hash and not ref.hash.startswith(recorded[:10]):
        print(
            f"warning: entry {entry.id}: model {entry.recipe.model} has changed "
            f"(hash {recorded} then, {ref.hash} now); the image will differ",
            file=sys.stderr,
        )

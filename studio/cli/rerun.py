"""`studio rerun SESSION ID`: make a session entry's image again, from its recipe."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.models.library import ModelLibrary
    from studio.service import Studio
    from studio.store.session import Entry


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
    from studio.cli.run import library_for, make_studio, run_jobs
    from studio.config import load_config, sessions_dir_from
    from studio.recipe import RecipeError
    from studio.store.session import SessionError, SessionStore

    if not args.ids and not args.resume:
        print("studio rerun: give entry ids, or --resume", file=sys.stderr)
        return 2
    config = load_config()
    try:
        session = SessionStore(sessions_dir_from(args, config)).open(args.session)
        again = [session.get(entry_id) for entry_id in args.ids]
        recipes = [e.recipe.replace(device=args.device) if args.device else e.recipe for e in again]
    except (SessionError, RecipeError) as exc:
        print(f"studio rerun: {exc}", file=sys.stderr)
        return 1
    library = library_for(config)
    studio = make_studio(session, library, config)
    # After recovery: an image a crash left unrecorded is adopted, not made again.
    left = session.unfinished() if args.resume else []
    if args.resume and not left and not again:
        print(f"studio rerun: nothing left unfinished in {session.name}", file=sys.stderr)
        return 0
    for entry in again:
        _warn_if_model_changed(entry, library)

    def submit(studio: Studio) -> list[str]:
        return studio.resume(left) + [studio.submit(recipe) for recipe in recipes]

    ok = run_jobs(studio, submit, quiet=args.quiet).ok
    if args.resume:  # a sweep's cells are all in: its grid next (printed last)
        from studio.printable import printable
        from studio.sweeps.run import finish_sweeps

        for path in finish_sweeps(session):
            print(printable(path), flush=True)
    return 0 if ok else 1


def _warn_if_model_changed(entry: Entry, library: ModelLibrary) -> None:
    """Same model, seed and device give the same pixels; say so when the model differs."""
    from studio.models.resolve import ModelNotFound

    recorded = entry.model_hash or entry.recipe.model_hash
    if not recorded:
        return
    try:
        ref = library.resolve(entry.recipe.model)
    except (ModelNotFound, OSError, ValueError):
        return  # the engine reports a missing model itself
    if ref.hash and not ref.hash.startswith(recorded[:10]):
        print(
            f"warning: entry {entry.id}: model {entry.recipe.model} has changed "
            f"(hash {recorded} then, {ref.hash} now); the image will differ",
            file=sys.stderr,
        )

"""`studio tui` (also plain `studio`): open the terminal studio."""

from __future__ import annotations

import argparse
import sys

from studio.builtin import DEFAULT_MODEL

GRAPHICS_CHOICES = ("auto", "kitty", "sixel", "halfcell", "unicode", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    add_sessions_dir_argument(parser)
    parser.add_argument("--session", metavar="NAME", help="reopen a session (default: start a new one)")
    parser.add_argument(
        "--graphics",
        choices=GRAPHICS_CHOICES,
        help="how images are drawn (default: the config's, else auto-detect)",
    )
    parser.add_argument("--model", "-m", help=f"model name or path (default: {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    parser.add_argument("--preview", metavar="KIND",
                        help="live previews: x0 (the clean estimate), latent, taesd, taesd:NAME or none"
                             " (default: the config's, else x0; P cycles them in the studio)")


def run(args: argparse.Namespace) -> int:
    from studio.config import load_config, sessions_dir_from
    from studio.store.folders import SessionError  # not the session's reader: it is imported after the first frame
    from studio.tui import graphics

    config = load_config()
    try:
        mode = graphics.normalise(args.graphics or config.graphics)
    except ValueError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 2
    if graphics.needs_probe(mode):
        mode = graphics.probe(mode)  # asks the terminal, which only works before Textual starts

    if args.preview is not None:
        from studio.engine.preview_choice import parse_preview

        try:
            parse_preview(args.preview)
        except ValueError as exc:
            print(f"studio: {exc}", file=sys.stderr)
            return 2

    from studio.tui.app import make_app

    try:
        app = make_app(
            sessions_dir_from(args, config),
            args.session,
            graphics=mode,
            model=args.model,
            device=args.device,
            dtype=args.dtype,
            config=config,
            preview=args.preview,
        )
    except (SessionError, OSError) as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 1
    try:
        app.run()
    finally:
        if app.engine is not None and app.engine.pending():
            print("studio: stopping the running job…", file=sys.stderr)
        app.stop_engine(wait=True)
    return int(app.return_code or 0)

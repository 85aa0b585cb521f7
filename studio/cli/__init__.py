"""`studio` on the command line: the TUI by default, or a headless subcommand.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`; modules are imported only to build the parser, so they
keep torch and diffusers out of their top-level imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from studio import __version__

# (command, module, one-line help). The TUI is what `studio` alone opens.
COMMANDS: list[tuple[str, str, str]] = [
    ("tui", "studio.cli.tui", "open the terminal studio (the default)"),
    ("generate", "studio.cli.generate", "make images headlessly and print their paths"),
    ("rerun", "studio.cli.rerun", "make a session entry's image again"),
    ("import", "studio.cli.import_image", "print the recipe inside a PNG/JPEG/WebP as TOML"),
    ("sessions", "studio.cli.sessions", "list sessions"),
    ("show", "studio.cli.show", "print a session's entries"),
    ("models", "studio.cli.models", "list local models, LoRAs, embeddings and VAEs"),
    ("inspect", "studio.cli.inspect", "show what is inside a weights file"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="A keyboard-driven terminal studio for open-weight diffusion models.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command whose module has not landed yet
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`studio` on the command line: the TUI by default, or a headless subcommand.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`; only the named command's module is imported to parse its
line, and modules keep torch and diffusers out of their top-level imports. A
module with `WARM_UP = True` runs the engine in this process: torch and
diffusers start importing on a thread before its line is even parsed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from studio import __version__, debuglog
from studio.errors import first_line
from studio.printable import printable

# (command, module, one-line help). The TUI is what `studio` alone opens.
COMMANDS: list[tuple[str, str, str]] = [
    ("tui", "studio.cli.tui", "open the terminal studio (the default)"),
    ("generate", "studio.cli.generate", "make images headlessly and print their paths"),
    ("sweep", "studio.cli.sweep", "an X/Y/Z grid: any field against any other, prompt S/R, wildcards"),
    ("rerun", "studio.cli.rerun", "make a session entry's image again"),
    ("import", "studio.cli.import_image", "print the recipe inside a PNG/JPEG/WebP as TOML"),
    ("sessions", "studio.cli.sessions", "list sessions"),
    ("show", "studio.cli.show", "print a session's entries"),
    ("export", "studio.cli.export", "copy what a search finds into a folder, with a manifest of recipes"),
    ("sheet", "studio.cli.sheet", "a captioned contact sheet of what a search finds, recorded as an entry"),
    ("search", "studio.cli.search", "find entries across every session (fox lora:inkwash rating:>=4 ...)"),
    ("upscale", "studio.cli.upscale", "make an image or a session entry's image bigger with an upscaler"),
    ("models", "studio.cli.models", "list local models, LoRAs, embeddings and VAEs"),
    ("inspect", "studio.cli.inspect", "show what is inside a weights file"),
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `command`, only that subcommand's module is imported and given its
    arguments (the others are listed, for `studio -h` and a misspelt command's message)."""
    parser = argparse.ArgumentParser(
        prog="studio",
        description="A keyboard-driven terminal studio for open-weight diffusion models.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="write a debug log with tracebacks (also STUDIO_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command in (None, name):
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = [a for a in argv if a == "--debug"]
    rest = [a for a in argv if a != "--debug"]  # --debug goes anywhere on the line
    if not rest or (rest[0].startswith("-") and rest[0] not in ("-h", "--help", "--version")):
        rest = ["tui", *rest]
    command = rest[0] if rest[0] in {name for name, _, _ in COMMANDS} else None
    if command and module_for(command).__dict__.get("WARM_UP") and not {"-h", "--help"} & set(rest):
        from studio.engine import warmup

        warmup.import_in_background()  # torch and diffusers load while the line is parsed and the model found
    parser = build_parser(command)
    args = parser.parse_args(flags + rest)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    log = debuglog.enable() if debuglog.wanted(args.debug) else None
    if log is not None:
        print(f"studio: debug log in {log}", file=sys.stderr)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: one line, the traceback behind --debug
        logging.getLogger("studio.cli").exception("studio %s failed", args.command)
        where = f"the traceback is in {log}" if log else "run with --debug for the traceback"
        print(printable(f"studio: {first_line(exc)} ({where})"), file=sys.stderr)
        return 1


def module_for(command: str) -> ModuleType:
    return importlib.import_module(next(module for name, module, _ in COMMANDS if name == command))


if __name__ == "__main__":
    sys.exit(main())

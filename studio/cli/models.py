"""`studio models`: list local checkpoints, LoRAs, embeddings and VAEs with their hashes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from studio.printable import printable

if TYPE_CHECKING:
    from studio.models.discovery import ModelEntry
    from studio.models.hashing import HashCache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", action="append", default=[], metavar="DIR",
        help="also scan this folder (repeatable), before the configured ones;"
        " A1111 and ComfyUI install folders are recognised",
    )
    parser.add_argument("--kind", choices=["checkpoint", "LoRA", "embedding", "VAE", "text encoder", "upscaler"], help="list only this kind")
    parser.add_argument("--no-hash", action="store_true", help="skip hashing files not hashed before")
    parser.add_argument("--no-hf-cache", action="store_true", help="leave out the Hugging Face cache")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.config import load_config
    from studio.models.discovery import with_cached_hashes
    from studio.models.library import ModelLibrary

    dirs = [Path(d).expanduser() for d in args.dir]
    for d in dirs:
        if not d.is_dir():
            print(printable(f"studio models: {d}: not a folder"), file=sys.stderr)
            return 2
    library = ModelLibrary.from_config(load_config(), extra_dirs=dirs)
    entries = library.scan(hf_cache=not args.no_hf_cache)
    if args.kind:
        entries = [e for e in entries if e.kind == args.kind]
    if args.no_hash:
        entries = with_cached_hashes(entries, library.hashes)
    else:
        entries = _hash_with_progress(entries, library.hashes)
    if args.json:
        rows = [{**e.__dict__, "path": str(e.path)} for e in entries]
        print(json.dumps(rows, indent=2))
        return 0
    if not entries:
        where = [str(d) for d in library.dirs] + ([] if args.no_hf_cache else ["the Hugging Face cache"])
        print(printable(f"no models found in {', '.join(where)}"), file=sys.stderr)
        return 0
    print(format_table(entries))
    return 0


def _hash_with_progress(entries: list[ModelEntry], cache: HashCache) -> list[ModelEntry]:
    from studio.models.discovery import with_hashes

    todo = sum(e.size for e in entries if e.path.is_file() and not cache.cached(e.path))
    if todo < 64 << 20 or not sys.stderr.isatty():
        return with_hashes(entries, cache)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    # Only worth a bar when there is real hashing to wait for (a new 6 GB checkpoint).
    with Progress(
        TextColumn("hashing {task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("", total=todo)
        offsets: dict[str, int] = {}

        def progress(entry: ModelEntry, done: int, total: int) -> None:
            previous = offsets.get(str(entry.path), 0)
            offsets[str(entry.path)] = done
            bar.update(task, advance=done - previous, description=entry.path.name)

        return with_hashes(entries, cache, progress)


def format_table(entries: list[ModelEntry]) -> str:
    from studio.cli.table import format_table as table
    from studio.models.report import human_bytes

    header = ("NAME", "KIND", "ARCHITECTURE", "SIZE", "DTYPE", "HASH", "LICENSE")
    rows = [
        (e.name, e.kind, e.architecture, human_bytes(e.size), e.dtype or "-", e.hash or "-", _license(e))
        for e in entries
    ]
    return table(header, rows)


def _license(entry: ModelEntry) -> str:
    """The declared license, flagged, and whether the folder ships a safety checker (never loaded unasked)."""
    text = entry.license or "-"
    return text + ("; ships a safety checker (off)" if entry.safety_checker else "")

"""`studio models`: list local checkpoints, LoRAs, embeddings and VAEs with their hashes."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", action="append", default=[], metavar="DIR",
        help="scan this folder (repeatable) instead of the configured ones;"
        " A1111 and ComfyUI install folders are recognised",
    )
    parser.add_argument("--kind", choices=["checkpoint", "LoRA", "embedding", "VAE"], help="list only this kind")
    parser.add_argument("--no-hash", action="store_true", help="skip hashing files not hashed before")
    parser.add_argument("--no-hf-cache", action="store_true", help="leave out the Hugging Face cache")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from studio.models.discovery import scan
    from studio.models.hashing import HashCache

    dirs = [Path(d).expanduser() for d in args.dir] or None
    for d in dirs or ():
        if not d.is_dir():
            print(f"studio models: {d}: not a folder", file=sys.stderr)
            return 2
    entries = scan(dirs, hf_cache=not args.no_hf_cache)
    if args.kind:
        entries = [e for e in entries if e.kind == args.kind]
    cache = HashCache()
    if args.no_hash:
        from dataclasses import replace

        entries = [replace(e, hash=(cache.cached(e.path) or "")[:10]) for e in entries]
    else:
        entries = _hash_with_progress(entries, cache)
    if args.json:
        rows = [{**e.__dict__, "path": str(e.path)} for e in entries]
        print(json.dumps(rows, indent=2))
        return 0
    if not entries:
        where = ", ".join(str(d) for d in dirs) if dirs else "the configured folders"
        print(f"no models found in {where}", file=sys.stderr)
        return 0
    print(format_table(entries))
    return 0


def _hash_with_progress(entries, cache):
    from studio.models.discovery import with_hashes

    todo = sum(e.size for e in entries if e.path.is_file() and not cache.cached(e.path))
    if todo < 64 << 20 or not sys.stderr.isatty():
        return with_hashes(entries, cache=cache)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    # Only worth a bar when there is real hashing to wait for (a new 6 GB checkpoint).
    with Progress(
        TextColumn("hashing {task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task("", total=todo)
        offsets: dict[str, int] = {}

        def progress(entry, done, total):
            previous = offsets.get(str(entry.path), 0)
            offsets[str(entry.path)] = done
            bar.update(task, advance=done - previous, description=entry.path.name)

        return with_hashes(entries, progress=progress, cache=cache)


def format_table(entries) -> str:
    from studio.models.report import human_bytes

    header = ("NAME", "KIND", "ARCHITECTURE", "SIZE", "DTYPE", "HASH")
    rows = [header] + [
        (e.name, e.kind, e.architecture, human_bytes(e.size), e.dtype or "-", e.hash or "-") for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)

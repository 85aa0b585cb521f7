"""How fast the TUI gallery paints its first page for a query of 100,000 entries.

Writes 1,000 sessions × 100 entries as bench/review.py does (the real format,
through the store's record writer), builds the review index, and gives the
newest two sessions real PNGs (so the first page has thumbnails to make).
Then, headless (`app.run_test`, half-cells, an engine that runs nothing), it
presses the gallery key and times, from the key press:

- first paint: the first page of hits drawn in the grid (the page comes from
  the index in a thread worker; the count and the catch-up with session files
  other processes wrote follow it, as the gallery does on opening);
- thumbnails: every cell of that page showing its thumbnail (made now into an
  empty thumbnail cache, off the event loop);
- a page turn: PageDown until the next page is drawn, median of 20 (each
  fetches its page by offset).

The first paint is also given in CPU seconds: the process's (all threads, from
the key to the page), and the event loop's own (the main thread's, from the key
to the first page drawn, which is what the first paint waits for): on a loaded
machine wall time is mostly waiting for a core. `--repeats N` runs both sizes
N times, alternating, and prints the medians too.

Goal: first paint ≤ 0.5 s.

    python bench/gallery.py [--sessions 1000] [--entries 100] [--dir DIR | --keep DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def measure(root: Path, size: tuple[int, int]) -> dict[str, float]:
    from studio.tui.app import make_app
    from studio.tui.widgets.gallery import GalleryScreen
    from tests.test_tui_support import IdleEngine, started, wait_until

    app = make_app(root, engine_factory=IdleEngine, graphics="halfcell", model="studio-tiny")
    out: dict[str, float] = {}
    painted = GalleryScreen._painted

    def timed_painted(screen: GalleryScreen) -> None:
        if screen.first_page_at is None:
            out["loop_cpu"] = time.thread_time() - loop_cpu  # the event loop's CPU from the key to the page
        painted(screen)

    GalleryScreen._painted = timed_painted  # type: ignore[method-assign]
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        await app.workers.wait_for_complete()
        cpu = time.process_time()
        loop_cpu = time.thread_time()  # this coroutine runs on the event loop's thread
        pressed = time.perf_counter()
        await pilot.press("ctrl+l")
        gallery = await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen) and app.screen)
        await wait_until(pilot, lambda: gallery.first_page_at is not None, timeout=60)
        out["first_paint"] = gallery.first_page_at - pressed
        out["first_paint_cpu"] = time.process_time() - cpu  # every thread's; steadier than wall time under load
        out["query"] = gallery.last_query_s or 0.0
        out["total"] = gallery.total
        out["page"] = gallery.page_size

        print(f"  first page drawn {out['first_paint'] * 1000:.0f} ms after the key", flush=True)

        def thumbs_made() -> bool:  # every thumbnail of the page made (or found unreadable) and drawn
            return not gallery._loading and gallery.grid.pictures_ready() and all(
                c.thumb is not None for c in gallery.grid.cells
                if c.hit is not None and c.hit.images and gallery.thumbs.get(c.hit.images[0]))

        await wait_until(pilot, thumbs_made, timeout=60)
        await pilot.pause()
        out["thumbs"] = time.perf_counter() - pressed
        turns = []
        for _ in range(20):
            start = time.perf_counter()
            await pilot.press("pagedown")
            await wait_until(pilot, lambda: gallery.selected() is not None and all(
                c.hit is not None for c in gallery.grid.cells), timeout=30)
            turns.append(time.perf_counter() - start)
        out["turn"] = statistics.median(turns)
        out["turn_max"] = max(turns)
    GalleryScreen._painted = painted  # type: ignore[method-assign]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1, help="run both sizes this many times, alternating")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the sessions and the index here once and reuse them on later runs"
                             " (the thumbnail cache is emptied on every run)")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args.keep, args)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        return run(Path(tmp), args)


def run(folder: Path, args: argparse.Namespace) -> int:
    import shutil

    os.environ["STUDIO_CACHE_DIR"] = str(folder / "cache")  # the index and thumbnails
    os.environ["STUDIO_CONFIG"] = str(folder / "config.toml")
    from bench.review import build
    from studio.review.index import ReviewIndex
    from studio.store.session import SessionStore
    from tests.test_tui_support import gradient_png

    root = folder / "sessions"
    built = folder / "built"
    if not built.is_file():
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(folder / "cache", ignore_errors=True)
        store = SessionStore(root)
        start = time.perf_counter()
        build(store, args.sessions, args.entries, random.Random(16))
        print(f"wrote {args.sessions} sessions × {args.entries} entries in {time.perf_counter() - start:.1f} s")
        for summary in store.list()[-2:]:
            for i in range(1, args.entries + 1):
                gradient_png(summary.path / f"{i:04d}.png", hue=i)
        start = time.perf_counter()
        ReviewIndex(root, notice=lambda text: None).update()
        print(f"index built in {time.perf_counter() - start:.1f} s")
        built.write_text(f"{args.sessions} {args.entries}\n")
    else:
        print(f"reusing {built.read_text().split()[0]} sessions × {built.read_text().split()[1]} entries in {root}")
    runs: dict[tuple[int, int], list[dict[str, float]]] = {(80, 24): [], (160, 45): []}
    for _ in range(args.repeats):
        for size, seen in runs.items():
            for thumbs in (folder / "cache").glob("**/thumbs"):
                shutil.rmtree(thumbs)  # every run makes its thumbnails into an empty cache
            got = asyncio.run(measure(root, size))
            seen.append(got)
            print(f"{size[0]}x{size[1]}: {int(got['total'])} matches, {int(got['page'])} a page; "
                  f"first paint {got['first_paint'] * 1000:.0f} ms, {got['first_paint_cpu'] * 1000:.0f} ms of CPU"
                  f" ({got['loop_cpu'] * 1000:.0f} ms of it the event loop's; its query {got['query'] * 1000:.0f} ms),"
                  f" thumbnails in {got['thumbs'] * 1000:.0f} ms, "
                  f"page turn median {got['turn'] * 1000:.0f} ms (max {got['turn_max'] * 1000:.0f} ms)")
            print(f"(goal first paint ≤ 0.5 s: {'ok' if got['first_paint'] <= 0.5 else 'OVER GOAL'}; load average {os.getloadavg()[0]:.1f})")
    if args.repeats > 1:
        for size, seen in runs.items():
            def median(key: str) -> float:
                return statistics.median(got[key] for got in seen) * 1000

            print(f"{size[0]}x{size[1]}, median of {len(seen)}: first paint {median('first_paint'):.0f} ms,"
                  f" event loop CPU {median('loop_cpu'):.0f} ms, all threads' CPU {median('first_paint_cpu'):.0f} ms,"
                  f" thumbnails in {median('thumbs'):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

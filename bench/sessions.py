"""How long a big session takes to open, and whether appending stays O(1).

Builds sessions of 100 and 10,000 entries (each queued, started and done, so
30,000 records at the large size), then times opening each and appending one
record to each, side by side in this run. Goals: open 10,000 entries in ≤ 1 s;
append at 10,000 entries within 2× of append at 100.

    python bench/sessions.py [--entries 10000] [--dir DIR] [--tui] [--launches 3] [--open-repeats 3]

With `--tui` it also launches the TUI on the large session in a fresh process
(headless) and reports the time to first paint, the time until every entry is
reachable (the history holds all of them: the newest on screen, the rest
through its filter; the TUI reads the session on a worker after painting, so
this is when that read is done), and the process's peak memory, beside a bare Textual app
with one TextArea launched in the same run. Goals: first paint ≤ 1.25× the
bare app, every entry reachable within 2 s, memory in proportion to the file.
It launches the TUI on three cases: the 100-entry session (the baseline), the
large one as first written (no snapshot), and the large one again after the
store has kept the snapshot of its fold that the TUI keeps after loading
(studio/store/snapshot.py), as a reopened session would be. Each case is
launched `--launches` times (default 3), the cases and the bare app taking
turns, and each figure is the median. The cache folder is a temporary one.

Each open of the large session is also timed in a fresh process (so its peak
memory is the open's own, not the build's): the first open (no snapshot), then
the reopen from the snapshot that first open keeps, each as CPU seconds
(time.process_time, which a loaded machine inflates less than the wall clock)
beside the wall seconds, and the process's peak RSS after taking `entries()`.
Goals: the first open ≤ 4 s CPU, the reopen ≤ 0.5 s CPU, peak ≤ 250 MB.

The last line ends with the seconds taken to open the 10,000-entry session.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.recipe import Recipe  # noqa: E402
from studio.store.journal import record_bytes  # noqa: E402
from studio.store.session import SessionStore, now_iso  # noqa: E402


def build(store: SessionStore, name: str, entries: int) -> None:
    """Write `entries` finished entries with the store's own record format.

    Written in one go (not one fsync per record) so building is quick; the
    bytes are exactly what `Session.queue/start/finish` append.
    """
    session = store.create(name)
    base = Recipe(prompt="a lighthouse on a cliff at dusk, oil painting, detailed")
    chunks = []
    for entry_id in range(1, entries + 1):
        recipe = base.replace(seed=entry_id).to_dict()
        when = now_iso()
        chunks.append(record_bytes({"id": entry_id, "kind": "queued", "time": when, "recipe": recipe}))
        chunks.append(record_bytes({"id": entry_id, "kind": "started", "time": when}))
        done = {
            "id": entry_id, "kind": "done", "time": when, "images": [f"{entry_id:04d}.png"],
            "duration": 1.5, "device": "cpu", "recipe": {"device": "cpu", "dtype": "float32"},
        }
        chunks.append(record_bytes(done))
    with open(session.file, "ab") as handle:
        handle.write(b"".join(chunks))


# Both children's own peak memory (pasted into each child's code at #PEAK_MB).
_PEAK_MB = r'''def _peak_mb():  # this process's own peak RSS: ru_maxrss keeps a forking parent's across exec
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
'''

_TUI_CHILD = r"""
import json, os, resource, sys, time
start = float(sys.argv[1])
from pathlib import Path
from studio.tui.app import StudioApp, make_app

#PEAK_MB


seen = {}

def report(self):
    if "paint" not in seen or "reachable" in seen:
        return
    seen["reachable"] = time.time() - start
    seen["entries"] = len(self.history._entries)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    seen["peak_mb"] = _peak_mb()
    seen["cpu"] = usage.ru_utime + usage.ru_stime  # this process's CPU seconds so far, beside the wall clock
    print(json.dumps(seen), flush=True)
    os._exit(0)

def after_first_paint(self):  # the engine is left unstarted: only the session is timed
    if not getattr(self, "loading", False):  # read before the first paint: every entry is there now
        report(self)
    else:
        self.read_after_first_paint()

StudioApp._after_first_paint = after_first_paint
try:  # read after it, on a worker: every entry is there once it says so
    from studio.tui.session_loading import SessionLoading
except ImportError:
    SessionLoading = None
if SessionLoading is not None:
    loaded = SessionLoading.on_session_loaded

    def on_session_loaded(self, message):
        loaded(self, message)
        report(self)

    SessionLoading.on_session_loaded = on_session_loaded
app = make_app(Path(sys.argv[2]), sys.argv[3], graphics="auto")
display = app._display

def first_frame(screen, update):
    display(screen, update)
    seen.setdefault("paint", time.time() - start)
    if not getattr(app, "loading", True):
        app.call_later(report, app)  # loaded before the first frame landed

app._display = first_frame
app.run(headless=True, size=(120, 36))
""".replace("#PEAK_MB\n", _PEAK_MB)


_OPEN_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from studio.store.session import Session

#PEAK_MB


folder, keep, repeats = Path(sys.argv[1]), sys.argv[2] == "keep", int(sys.argv[3])
best = None
for _ in range(repeats):
    session = entries = None  # the last open's fold is let go first: one session's peak
    cpu, wall = time.process_time(), time.perf_counter()
    session = Session(folder, read_only=True)
    entries = session.entries()
    took = (time.process_time() - cpu, time.perf_counter() - wall)
    best = took if best is None or took < best else best
    if keep:
        session.save_snapshot()  # as the TUI does after reading, and studio on closing
peak = _peak_mb()
print(json.dumps({"cpu": best[0], "wall": best[1], "peak_mb": peak, "entries": len(entries)}))
""".replace("#PEAK_MB\n", _PEAK_MB)


def open_in_child(folder: Path, cache: Path, keep: bool, repeats: int = 1) -> dict:
    """(best of `repeats`) CPU and wall seconds to open `folder` and take its entries, in a
    fresh process with `cache` as its cache folder, and that process's peak memory."""
    import json
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), STUDIO_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", _OPEN_CHILD, str(folder), "keep" if keep else "", str(repeats)],
                         capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    lines = out.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise SystemExit(f"open failed: {out.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


def tui_on(root: Path, name: str) -> dict:
    import json
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    env.setdefault("STUDIO_CONFIG", str(root / "config.toml"))
    start = time.time()
    out = subprocess.run([sys.executable, "-c", _TUI_CHILD, repr(start), str(root), name], capture_output=True,
                         text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    lines = out.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise SystemExit(f"TUI launch failed: {out.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


def time_open(store: SessionStore, name: str, repeats: int) -> tuple[float, int]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session = store.open(name)
        times.append(time.perf_counter() - start)
    return min(times), len(session.entries())


def time_append(store: SessionStore, name: str, repeats: int) -> float:
    """Median seconds for one `mark` append (lock, catch-up check, write, fsync)."""
    session = store.open(name)
    entry_id = session.entries()[0].id
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        session.mark(entry_id, rating=i % 6)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--tui", action="store_true", help="also the TUI's first paint and peak memory on it")
    parser.add_argument("--open-repeats", type=int, default=3)
    parser.add_argument("--launches", type=int, default=3, help="TUI launches of each case, with --tui (medians)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = SessionStore(Path(tmp))
        start = time.perf_counter()
        build(store, "small", 100)
        build(store, "large", args.entries)
        size = (Path(tmp) / "large" / "session.toml").stat().st_size
        print(f"built 100 and {args.entries} entries in {time.perf_counter() - start:.2f} s "
              f"(large file: {size / 1e6:.1f} MB)")
        small_append = time_append(store, "small", 50)
        large_append = time_append(store, "large", 50)
        ratio = large_append / small_append
        print(f"append at 100 entries: {small_append * 1000:.2f} ms (median of 50)")
        print(f"append at {args.entries} entries: {large_append * 1000:.2f} ms (median of 50)")
        verdict = "ok" if ratio <= 2 else "OVER GOAL"
        print(f"append ratio large/small: {ratio:.2f}x (goal ≤ 2x: {verdict})")
        small_open, _ = time_open(store, "small", 5)
        print(f"open 100 entries: {small_open:.3f} s")
        large_open, count = time_open(store, "large", args.open_repeats)
        if args.entries <= 10_000:
            verdict = "ok" if large_open <= 1 else "OVER GOAL"
            print(f"(goal ≤ 1 s: {verdict}; {count} entries read)")
        else:  # the goal is for 10,000 entries; the fresh-process figures below are the ones for this size
            print(f"({count} entries read in this process; the ≤ 1 s goal is for 10,000 entries)")
        cache = Path(tmp) / "open-cache"
        for label, keep, goal in (("first open (no snapshot)", True, 4.0), ("reopen from the snapshot", False, 0.5)):
            opened = open_in_child(Path(tmp) / "large", cache, keep, 1 if keep else args.open_repeats)
            verdict = "ok" if opened["cpu"] <= goal and opened["peak_mb"] <= 250 else "OVER GOAL"
            print(f"{label}, {opened['entries']} entries, fresh process: {opened['cpu']:.2f} s CPU, "
                  f"{opened['wall']:.2f} s wall; peak memory {opened['peak_mb']:.0f} MB "
                  f"(goals ≤ {goal} s CPU, ≤ 250 MB: {verdict})")
        if args.tui:
            import os

            from bench.tui import bare_first_paint

            cache = Path(tmp) / "cache"
            os.environ["STUDIO_CACHE_DIR"] = str(cache)
            bares: list[float] = []
            runs: dict[str, list[dict]] = {"100 entries": [], "first open": [], "reopened": []}
            for _ in range(args.launches):  # each launch beside a bare one, the cases alternating
                bares.append(bare_first_paint()[0])  # (wall, CPU): the wall clock
                runs["100 entries"].append(tui_on(Path(tmp), "small"))
                shutil.rmtree(cache, ignore_errors=True)  # no snapshot: as first written
                runs["first open"].append(tui_on(Path(tmp), "large"))
                bares.append(bare_first_paint()[0])
                if not store.open("large").save_snapshot():  # what the TUI does once it has read the session
                    raise SystemExit("no snapshot was kept of the large session")
                runs["reopened"].append(tui_on(Path(tmp), "large"))
            bare = statistics.median(bares)
            print(f"bare Textual app with one TextArea: first paint {bare:.2f} s (median of {len(bares)})")
            for label, launched in runs.items():
                paint, reachable, cpu, peak = (statistics.median(t[key] for t in launched)
                                               for key in ("paint", "reachable", "cpu", "peak_mb"))
                each = ", ".join(f"{t['reachable']:.2f}" for t in launched)
                print(f"TUI, {label}, {launched[0]['entries']} entries (median of {len(launched)}): first paint"
                      f" {paint:.2f} s (ratio {paint / bare:.2f}, goal ≤ 1.25); every entry reachable at"
                      f" {reachable:.2f} s (goal ≤ 2 s; {cpu:.2f} s CPU by then; each: {each}); peak memory {peak:.0f} MB")
            print(f"(the large file: {size / 1e6:.0f} MB; load average {os.getloadavg()[0]:.1f})")
        print(f"open {args.entries} entries: {large_open:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the review index builds, catches up and answers, at 1,000 sessions × 100 entries.

Writes the sessions in the real format with the store's own record writer
(`record_bytes`: queued, started, done and some marks per entry; one write per
session rather than 300 fsynced appends, so building is quick but the bytes
are what `Session` appends). Then times, in one process:

- the first index build over every session;
- an incremental update after one real append (`Session.mark`) to one session,
  both as `update()` sees it (stat every file, read the one that changed) and
  as the service does it (`update_session` with the live session);
- 50 mixed queries (words, LoRA, rating, dates, model, seed, sorts; a page of 50), p95.

Goals: build ≤ 30 s, incremental ≤ 50 ms, query p95 ≤ 100 ms.

    python bench/review.py [--sessions 1000] [--entries 100] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.recipe import LoraRef, Recipe  # noqa: E402
from studio.review.index import ReviewIndex  # noqa: E402
from studio.store.journal import record_bytes  # noqa: E402
from studio.store.session import SessionStore  # noqa: E402

SUBJECTS = ["red fox", "lighthouse", "owl", "portrait of a woman", "castle", "koi pond", "robot", "forest path",
            "city at night", "bowl of fruit", "dragon", "sailing ship", "mountain lake", "cat", "old man"]
STYLES = ["oil painting", "ink wash", "watercolour", "photograph", "pixel art", "charcoal sketch", "3d render"]
LORAS = ["inkwash", "detailer", "filmgrain", "lowpoly", "papercut", "neonpunk"]
MODELS = [("studio-tiny", "8711c266f2"), ("sd15-base", "cc6cb27103"), ("dreamy-v3", "0f1e2d3c4b")]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(store: SessionStore, sessions: int, entries: int, rng: random.Random) -> None:
    for number in range(sessions):
        day = START + timedelta(hours=8 * number)
        session = store.create(f"{day:%Y-%m-%d-%H%M}-{number:04d}")
        chunks = []
        for entry_id in range(1, entries + 1):
            model, model_hash = rng.choice(MODELS)
            loras = tuple(LoraRef(name, 0.8) for name in rng.sample(LORAS, rng.choice([0, 0, 1, 2])))
            recipe = Recipe(
                prompt=f"a {rng.choice(SUBJECTS)}, {rng.choice(STYLES)}, detailed, seed study {entry_id}",
                negative_prompt=rng.choice(["", "blurry", "lowres, watermark"]), model=model,
                seed=rng.randrange(1 << 32), width=rng.choice([512, 768]), height=rng.choice([512, 768]),
                sampler=rng.choice(["Euler a", "DPM++ 2M Karras", "DDIM"]), loras=loras,
            ).to_dict()
            when = iso(day + timedelta(seconds=20 * entry_id))
            chunks.append(record_bytes({"id": entry_id, "kind": "queued", "time": when, "recipe": recipe}))
            chunks.append(record_bytes({"id": entry_id, "kind": "started", "time": when}))
            chunks.append(record_bytes({
                "id": entry_id, "kind": "done", "time": when, "images": [f"{entry_id:04d}.png"],
                "duration": 1.5, "device": "cpu", "model_hash": model_hash,
                "recipe": {"device": "cpu", "dtype": "float32"},
            }))
            if rng.random() < 0.3:
                mark = {"id": entry_id, "kind": "mark", "time": when, "rating": rng.randrange(1, 6)}
                if rng.random() < 0.3:
                    mark.update(favourite=True, note=rng.choice(["keep", "print this", "nice light"]))
                chunks.append(record_bytes(mark))
        with open(session.file, "ab") as handle:
            handle.write(b"".join(chunks))


QUERIES = [
    "fox", "ink wash", "lora:inkwash", "rating:>=4", "fav:yes", "since:2026-03-01 until:2026-03-15",
    "castle lora:detailer rating:3", "model:8711c266f2", "model:dreamy", "sampler:euler_a size:512x768",
    "portrait rating:>=4 since:2026-02-01", "sort:rating", "owl sort:session", "seed:12345",
    "\"red fox\" oil", "status:done", "dragon lora:neonpunk lora:papercut", "print", "session:2026-02",
    "lighthouse watercolour sort:rating", "robot -", "koi until:2026-02-01", "cat fav:yes sort:rating",
    "mountain model:sd15 rating:<3", "study 42",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp dir)")
    args = parser.parse_args()
    rng = random.Random(16)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp) / "sessions"
        store = SessionStore(root)
        start = time.perf_counter()
        build(store, args.sessions, args.entries, rng)
        print(f"wrote {args.sessions} sessions × {args.entries} entries in {time.perf_counter() - start:.1f} s")

        index = ReviewIndex(root, path=Path(tmp) / "index.sqlite", notice=lambda text: None)
        start = time.perf_counter()
        index.update()
        first = time.perf_counter() - start
        total = index.count("")
        print(f"first build: {first:.2f} s for {total} entries (goal ≤ 30 s: {'ok' if first <= 30 else 'OVER GOAL'})")

        names = [s.name for s in index.sessions()]
        timings = []
        for name in rng.sample(names, 5):
            store.open(name).mark(7, rating=5, note="bench")
            start = time.perf_counter()
            assert index.update() == 1
            timings.append(time.perf_counter() - start)
        incremental = statistics.median(timings)
        live = store.open(names[0])
        index.update_session(live.path, live=live)
        hooks = []
        for i in range(20):
            live.mark(8, rating=i % 6)
            start = time.perf_counter()
            index.update_session(live.path, live=live)
            hooks.append(time.perf_counter() - start)
        print(f"update() after one append: {incremental * 1000:.1f} ms (median of 5; stat {len(names)} files, "
              f"read one session); the service's hook: {statistics.median(hooks) * 1000:.1f} ms (median of 20)")
        print(f"(goal ≤ 50 ms: {'ok' if incremental <= 0.05 else 'OVER GOAL'})")

        queries = [QUERIES[i % len(QUERIES)] for i in range(50)]
        rng.shuffle(queries)
        times, found = [], 0
        for text in queries:
            start = time.perf_counter()
            hits = index.search(text, limit=50)
            index.count(text)
            times.append(time.perf_counter() - start)
            found += len(hits)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"50 mixed queries (a page of 50 and the count each): median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms; {found} hits shown")
        print(f"query p95: {p95 * 1000:.1f} ms (goal ≤ 100 ms: {'ok' if p95 <= 0.1 else 'OVER GOAL'})")
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

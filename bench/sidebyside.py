"""The shared half of the engine benches: studio's side through the service, and the alternating rounds.

`bench/overhead.py`, `bench/img2img.py` and `bench/hires.py` each write their
own bare-diffusers side; this runs the same recipe the way `studio generate`
does (a session record, the local engine on the already-loaded pipeline, a
PNG with its metadata) and alternates the two so machine noise hits both alike.
"""

from __future__ import annotations

import queue
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ThroughStudio:
    """Runs a recipe through the service on `pipe`; `made` holds each image's path."""

    def __init__(self, workdir: Path, library: Any, pipe: Any) -> None:
        from studio.engine import LocalEngine
        from studio.service import Studio
        from studio.store.session import SessionStore

        self.inbox: queue.Queue = queue.Queue()
        session = SessionStore(workdir / "sessions").create("bench")
        self.studio = Studio(session, library, engine_factory=lambda listener: LocalEngine(
            listener, library=library, reserve_core=False, loader=lambda *a: pipe))
        self.studio.subscribe(self.inbox.put)
        self.made: list[Path] = []

    def seconds(self, recipe: Any) -> float:
        from studio.engine import events as ev

        start = time.perf_counter()
        job = self.studio.submit(recipe)
        while True:
            event = self.inbox.get()
            if isinstance(event, ev.Failed) and event.job_id == job:
                raise SystemExit(f"engine job failed: {event.reason}")
            if isinstance(event, ev.Finished) and event.job_id == job:
                self.made.append(event.paths[0])
                return time.perf_counter() - start


def alternate(bare: Callable[[int], float], engine: Callable[[int], float], rounds: int) -> tuple[float, float]:
    """Warm both sides, then `rounds` rounds in alternating order; the (bare, engine) medians, printed."""
    bare(-1), engine(-1)  # the first call pays allocator and cache costs
    bare_times: list[float] = []
    engine_times: list[float] = []
    for index in range(rounds):
        pair = [(bare, bare_times), (engine, engine_times)]
        for run, times in pair if index % 2 == 0 else reversed(pair):
            times.append(run(index))
        print(f"round {index + 1:2d}: bare {bare_times[-1]:.3f} s  engine {engine_times[-1]:.3f} s", flush=True)
    medians = statistics.median(bare_times), statistics.median(engine_times)
    print(f"median per image: bare {medians[0]:.3f} s, engine {medians[1]:.3f} s")
    return medians

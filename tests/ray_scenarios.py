"""Ray scenarios, on whatever Ray instance is up (or a local one they start).

`kill(SESSIONS, MODEL)`: a sweep on 2 actors, one actor SIGKILLed after the
first cell lands; what the session recorded (tests/test_ray_engine.py calls it
on the module's shared cluster; `python -m tests.ray_scenarios kill ...` prints
it as JSON). `... time SESSIONS MODEL WORKERS CELLS STEPS`: wall time of a sweep
after every worker has loaded the model (WORKERS 0: the local engine; prints JSON). Used by tests/test_ray_engine.py and bench/ray_sweep.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from studio.engine import events as ev
from studio.engine.ray_engine import RayEngine
from studio.models.library import ModelLibrary
from studio.recipe import Recipe
from studio.service import Studio
from studio.store.session import Session, SessionStore
from studio.sweeps.run import finish_sweeps, submit_sweep
from studio.sweeps.sweep import Sweep


def _studio(root: Path, model: str, workers: int) -> tuple[Studio, Session, list[RayEngine]]:
    session = SessionStore(root).create()
    library = ModelLibrary(use_hf_cache=False)
    engines: list[RayEngine] = []

    def factory(listener):  # type: ignore[no-untyped-def]
        engines.append(RayEngine(listener, address="ray", library=library, workers=workers))
        return engines[-1]

    studio = Studio(session, library, engine_factory=factory if workers else None)  # 0: the local engine
    studio.start()
    return studio, session, engines


def kill(root: Path, base: Recipe, x: str, y: str | None = None) -> dict:
    """The sweep `x` by `y` over `base` on 2 actors; once a cell has landed, the actor running the next
    cell to report its first step is SIGKILLed (its pid asked for up front, so the kill is not late)."""
    import ray

    studio, session, (engine,) = _studio(root, base.model, 2)
    pids = {id(actor): pid for actor, pid in zip(engine._actors, ray.get([a.pid.remote() for a in engine._actors]))}
    landed, stepping = threading.Event(), threading.Event()
    victim_job: list[str] = []

    def listen(event: ev.Event) -> None:
        if isinstance(event, ev.Finished):
            landed.set()
        elif isinstance(event, ev.Progress) and landed.is_set() and not victim_job:
            victim_job.append(event.job_id)
            stepping.set()

    studio.subscribe(listen)
    sweep = Sweep.build(base, x, y)
    submit_sweep(studio, sweep)
    stepping.wait(300)
    job = engine._running.get(victim_job[0]) if victim_job else None
    pid = pids[id(job.actor)] if job is not None else next(iter(pids.values()))
    os.kill(pid, signal.SIGKILL)
    studio.wait_idle(300)
    finish_sweeps(session, only={sweep.id})
    alive = ray.get([actor.pid.remote() for actor in engine._actors], timeout=60)
    studio.shutdown()
    text = session.file.read_text()
    entries = Session(session.path).entries()
    return {
        "session": str(session.path),
        "killed": pid,
        "was_busy": job is not None,
        "replaced": engine.replaced,
        "alive": len(engine._actors),
        "pids": alive,
        "statuses": [e.status for e in entries],
        "done_records": text.count('kind = "done"'),
        "cells": sweep.count,
        "images": sorted(name for e in entries for name in e.images),
    }


def timed(root: Path, model: str, workers: int, cells: int, steps: int) -> dict:
    studio, session, _ = _studio(root, model, workers)
    base = Recipe(prompt="a red circle", model=model, width=64, height=64, steps=steps, seed=5)
    warm = Sweep.build(base, f"seed=100-{99 + workers}")  # every actor loads its pipeline first
    submit_sweep(studio, warm)
    studio.wait_idle(300)
    sweep = Sweep.build(base, f"seed=1-{cells}")
    began = time.perf_counter()
    submit_sweep(studio, sweep)
    studio.wait_idle(600)
    seconds = time.perf_counter() - began
    studio.shutdown()
    done = sum(1 for e in Session(session.path).entries() if e.status == "done")
    return {"workers": workers, "cells": cells, "seconds": round(seconds, 3), "done": done}


def rounds(root: Path, model: str, cells: int, steps: int, count: int) -> dict:
    """The local engine, Ray with 1 single-thread worker and Ray with 2, on one Ray instance, in
    alternating rounds of a `cells`-cell sweep (so a load that comes and goes hits all three alike);
    every engine has loaded the model before the first round. Seconds per round, per engine."""
    from studio.engine.ray_engine import start_local_instance

    start_local_instance(threads=1, workers=3)  # room for 1 + 2 actors
    setups = {name: _studio(root / name, model, workers) for name, workers in (("local", 0), ("ray1", 1), ("ray2", 2))}
    base = Recipe(prompt="a red circle", model=model, width=64, height=64, steps=steps, seed=5)
    for name, (studio, _, _) in setups.items():  # every actor loads its pipeline first
        submit_sweep(studio, Sweep.build(base, "seed=100-101"))
        studio.wait_idle(300)
    seconds: dict[str, list[float]] = {name: [] for name in setups}
    for round_ in range(count):
        for name, (studio, _, _) in setups.items():
            sweep = Sweep.build(base, f"seed={1 + round_ * cells}-{cells + round_ * cells}")
            began = time.perf_counter()
            submit_sweep(studio, sweep)
            studio.wait_idle(600)
            seconds[name].append(round(time.perf_counter() - began, 3))
    done = {}
    for name, (studio, session, _) in setups.items():
        studio.shutdown()
        done[name] = sum(1 for e in Session(session.path).entries() if e.status == "done")
    return {"cells": cells, "steps": steps, "seconds": seconds, "done": done}


if __name__ == "__main__":
    what, root, model, *rest = sys.argv[1:]
    if what == "rounds":
        print(json.dumps(rounds(Path(root), model, *map(int, rest))))
    elif what == "kill":
        print(json.dumps(kill(Path(root), Recipe(prompt="a red circle", model=model, width=64, height=64,
                                                 steps=12, seed=5), "seed=1-6")))
    else:
        print(json.dumps(timed(Path(root), model, *map(int, rest))))

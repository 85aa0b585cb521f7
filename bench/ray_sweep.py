"""Sweep wall time: the local engine, Ray with 1 worker, Ray with 2 (single-thread workers), on studio-tiny.

    python bench/ray_sweep.py [CELLS] [STEPS] [ROUNDS]

One process, one local Ray instance (tests/ray_scenarios.py `rounds`): the
three engines take turns, round after round, so a machine whose load comes and
goes (other work on it) hits all three alike; each figure is the median round.
Every worker has loaded the model before the clock starts, so the figures are
per-cell cost, not load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cells: int, steps: int, rounds: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-m", "tests.ray_scenarios", "rounds", tmp, "studio-tiny",
                              str(cells), str(steps), str(rounds)], env=env, capture_output=True, text=True,
                             cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    cells, steps, rounds = (int(a) for a in (sys.argv[1:] + ["6", "8", "3"][len(sys.argv[1:]):])[:3])
    result = run(cells, steps, rounds)
    median = {name: statistics.median(times) for name, times in result["seconds"].items()}
    for name, times in result["seconds"].items():
        print(f"{name:6} {cells} cells x {rounds} rounds, {result['done'][name]} done: median {median[name]:.2f} s "
              f"({median[name] / cells:.3f} s/cell); rounds {times}")
    best = {name: min(times) for name, times in result["seconds"].items()}
    print(f"per cell, ray 1 worker / local: {median['ray1'] / median['local']:.2f}x median, "
          f"{best['ray1'] / best['local']:.2f}x best rounds")
    print(f"sweep wall time, ray 2 workers / 1 worker: {median['ray2'] / median['ray1']:.2f}x median, "
          f"{best['ray2'] / best['ray1']:.2f}x best rounds")

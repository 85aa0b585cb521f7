"""Sweep wall time: the local engine, Ray with 1 worker, Ray with 2 (single-thread workers), on studio-tiny.

    python bench/ray_sweep.py [CELLS] [STEPS]

Each run is a fresh process (tests/ray_scenarios.py `time`); every worker loads
the model before the clock starts, so the figures are per-cell cost, not load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(workers: int, cells: int, steps: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-m", "tests.ray_scenarios", "time", tmp, "studio-tiny",
                              str(workers), str(cells), str(steps)], env=env, capture_output=True, text=True,
                             cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    cells, steps = (int(a) for a in (sys.argv[1:] + ["8", "8"])[:2])
    results = {w: run(w, cells, steps) for w in (0, 1, 2)}
    for w, r in results.items():
        name = "local" if w == 0 else f"ray x{w}"
        print(f"{name:8} {r['cells']} cells, {r['done']} done: {r['seconds']:.2f} s ({r['seconds'] / r['cells']:.3f} s/cell)")
    print(f"ray 1 worker / local: {results[1]['seconds'] / results[0]['seconds']:.2f}x")
    print(f"ray 2 workers / 1 worker: {results[2]['seconds'] / results[1]['seconds']:.2f}x")

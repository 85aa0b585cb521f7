"""The Ray engine on a local CPU cluster: same pixels as the local engine, a killed worker loses nothing.

Ray needs sockets, which this test process blocks, so Ray runs in subprocesses
(`studio sweep --cluster ray`, tests/ray_scenarios.py). Skipped without ray.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.store.session import SessionStore

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "STUDIO_CONFIG": "/nonexistent"}
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (studio[ray])")


def _cells(root: Path) -> list[np.ndarray]:
    (summary,) = SessionStore(root).list()
    session = SessionStore(root).open(summary.name)
    cells = sorted((e for e in session.entries() if e.sweep and "at" in e.sweep), key=lambda e: e.sweep["at"][::-1])
    return [np.asarray(Image.open(session.image_path(e.images[0]))) for e in cells]


@pytest.mark.slow
@needs_ray
def test_a_2x2_sweep_on_ray_has_the_local_engines_pixels(tmp_path, capsys):
    sweep = ["sweep", "a red circle", "--x", "steps=2,3", "--y", "sr=red,blue", "--size", "64x64", "--seed", "11", "-q"]
    assert main([*sweep, "--sessions-dir", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    ray = subprocess.run([sys.executable, "-m", "studio", *sweep, "--sessions-dir", str(tmp_path / "ray"),
                          "--cluster", "ray", "--workers", "2"], env=ENV, capture_output=True, text=True, timeout=300)
    assert ray.returncode == 0, ray.stderr[-2000:]
    assert ray.stdout.split()[-1].endswith("-grid.png")
    local, remote = _cells(tmp_path / "local"), _cells(tmp_path / "ray")
    assert len(local) == len(remote) == 4
    assert all(np.array_equal(a, b) for a, b in zip(local, remote))
    assert not np.array_equal(local[0], local[3])


@pytest.mark.slow
@needs_ray
def test_a_killed_worker_loses_no_cell_and_records_none_twice(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tests.ray_scenarios", "kill", str(tmp_path / "s"), "studio-tiny"],
                         env=ENV, capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["statuses"] == ["done"] * (report["cells"] + 1)  # the cells, then the grid
    assert report["done_records"] == report["cells"] + 1
    assert report["images"][:report["cells"]] == [f"{i:04d}.png" for i in range(1, report["cells"] + 1)]


def test_an_unknown_cluster_is_a_one_line_error(tmp_path, capsys):
    code = main(["sweep", "a red circle", "--x", "steps=1,2", "--cluster", "spark://x",
                 "--sessions-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "--cluster must be" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()

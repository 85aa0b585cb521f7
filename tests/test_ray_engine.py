"""The Ray engine on one local CPU cluster shared by this module's Ray tests.

The cluster starts once (`local_ray`, module-scoped) the way `--cluster ray`
starts it: loopback only, token authentication on. Ray's driver here needs
loopback sockets, so only the Ray tests may connect, and only to 127.0.0.1
(pytest-socket's `allow_hosts`); every other test, before and after, has
sockets blocked as conftest says (the last test here checks it). Skipped
without ray (`pip install "studio[ray]"`).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import events as ev
from studio.recipe import Recipe
from studio.store.session import SessionStore

ROOT = Path(__file__).resolve().parent.parent
HAS_RAY = importlib.util.find_spec("ray") is not None
RAY_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


def on_ray(test):  # type: ignore[no-untyped-def]
    """A Ray test: slow (actors start), skipped without ray, loopback sockets allowed for it alone."""
    for mark in (pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"]),
                 pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (studio[ray])")):
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    """One local Ray instance for the module, started by studio's own start-up; its GCS address."""
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    from studio.engine.ray_engine import import_ray_secured, start_local_instance

    ray = import_ray_secured()
    address = start_local_instance(threads=1, workers=2)
    yield address
    ray.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _cells(root: Path) -> list[np.ndarray]:
    (summary,) = SessionStore(root).list()
    session = SessionStore(root).open(summary.name)
    cells = sorted((e for e in session.entries() if e.sweep and "at" in e.sweep), key=lambda e: e.sweep["at"][::-1])
    return [np.asarray(Image.open(session.image_path(e.images[0]))) for e in cells]


@on_ray
def test_the_local_instance_listens_on_loopback_only_with_token_auth(local_ray):
    import psutil
    import ray

    from studio.engine.ray_engine import local_instance_facts

    assert local_ray.startswith("127.0.0.1:")
    assert local_instance_facts(ray) == (local_ray, "token")
    assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    listening = [c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.pid in ours]
    assert listening  # the GCS, the raylet, the workers...
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip in listening), listening


@on_ray
def test_the_local_instance_refuses_a_client_without_its_token(local_ray):
    """Ray clients in subprocesses (this process holds the token): a wrong token and none are refused."""
    join = f"import ray; ray.init(address={local_ray!r}, log_to_driver=False); print('joined')"
    once = {"RAY_NUM_REDIS_GET_RETRIES": "1"}  # one try, not 20 seconds of retries
    clients = [subprocess.Popen([sys.executable, "-c", join], env={**os.environ, **once, **env}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for env in ({"RAY_AUTH_TOKEN": "0" * 64}, {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""})]
    for client in clients:
        out, err = client.communicate(timeout=120)
        assert client.returncode != 0 and "joined" not in out
        assert "Authentication token is missing or incorrect" in err, err[-2000:]


@on_ray
def test_a_2x2_sweep_with_a_worker_killed_mid_sweep_has_every_cell_once_with_local_pixels(
        local_ray, tmp_path, capsys, monkeypatch):
    """The issue's two Ray must-shows in one run (actors are slow to start): a 2x2 sweep on Ray gives
    the local engine's pixels, and killing the worker running a cell mid-sweep loses no cell and
    records none twice (the killed cell reruns on the actor started in its place)."""
    from tests.ray_scenarios import kill

    # The same pixels need the same torch thread count: the actors run one thread each, so the
    # local side does too (OMP_NUM_THREADS wins over studio's all-cores default; conftest set 1).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    x, y = "steps=5,6", "sr=red,blue"  # steps enough for the kill to land mid-cell
    sweep = ["sweep", "a red circle", "--x", x, "--y", y, "--size", "64x64", "--seed", "11", "-q"]
    assert main([*sweep, "--sessions-dir", str(tmp_path / "local")]) == 0
    assert capsys.readouterr().out.split()[-1].endswith("-grid.png")
    report = kill(tmp_path / "ray", _base_recipe(sweep), x, y)

    assert report["was_busy"]  # killed mid-job, not between jobs
    assert report["statuses"] == ["done"] * (report["cells"] + 1)  # the cells, then the grid
    assert report["done_records"] == report["cells"] + 1
    assert report["images"][:report["cells"]] == [f"{i:04d}.png" for i in range(1, report["cells"] + 1)]
    assert report["replaced"] >= 1 and report["alive"] == 2 and report["killed"] not in report["pids"]
    local, remote = _cells(tmp_path / "local"), _cells(tmp_path / "ray")
    assert len(local) == len(remote) == 4
    assert all(np.array_equal(a, b) for a, b in zip(local, remote))
    assert not np.array_equal(local[0], local[3])


def _base_recipe(argv: list[str]) -> Recipe:
    """The base recipe `studio sweep ARGV` builds (the model's defaults filled in, as the CLI does)."""
    from studio.cli import build_parser, generate
    from studio.cli.run import library_for
    from studio.config import load_config

    config = load_config()
    return generate.recipes_from_args(build_parser().parse_args(argv), library_for(config, None), config)[0]


@on_ray
def test_cancel_reaches_the_actor_running_the_job(local_ray, tmp_path):
    from studio.engine.ray_engine import RayEngine
    from studio.models.library import ModelLibrary

    heard: list[ev.Event] = []
    stepping = threading.Event()

    def listen(event: ev.Event) -> None:
        heard.append(event)
        if isinstance(event, ev.Progress) and event.step >= 2:
            stepping.set()

    engine = RayEngine(listen, address="ray", library=ModelLibrary(use_hf_cache=False), workers=1)
    try:
        long = Recipe(prompt="a red circle", model="studio-tiny", width=64, height=64, steps=400, seed=3)
        job = engine.submit(long, tmp_path / "out")
        assert stepping.wait(120), heard
        assert engine.cancel(job)
        assert engine.wait_idle(60)
        final = [e for e in heard if isinstance(e, (ev.Finished, ev.Failed, ev.Cancelled))]
        assert len(final) == 1 and isinstance(final[0], ev.Cancelled), final
        assert 2 <= final[0].step < 400  # stopped on the actor mid-run, not after the last step
        assert not (tmp_path / "out").exists()
        # The actor is still there and takes the next job.
        short = engine.submit(long.replace(steps=2), tmp_path / "out")
        assert engine.wait_idle(60)
        assert isinstance(heard[-1], ev.Finished) and heard[-1].job_id == short
    finally:
        engine.shutdown()


def test_an_unknown_cluster_is_a_one_line_error(tmp_path, capsys):
    code = main(["sweep", "a red circle", "--x", "steps=1,2", "--cluster", "spark://x",
                 "--sessions-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "--cluster must be" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_sockets_are_blocked_again_after_the_ray_tests():
    """Runs after them (file order): the loopback allowance was theirs alone."""
    with pytest.warns(UserWarning, match="socket"), pytest.raises(Exception, match="socket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)

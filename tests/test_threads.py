"""How many CPU threads torch gets: every core from the CLI, all but one under the TUI."""

from __future__ import annotations

import pytest

from studio.cli import main
from studio.engine import device


@pytest.fixture
def four_cores(monkeypatch):
    """Pretend the process may run on four cores; torch goes back to one thread after."""
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "available_cores", lambda: 4)
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(1)


def test_the_cli_engine_runs_torch_on_every_core(four_cores, tiny_model_dir, tmp_path, capsys, monkeypatch):
    # torch's thread count is per thread (OpenMP's): read it where the work runs, on the worker,
    # while loading (every core, for the TUI too) and while sampling (every core for the CLI only).
    from studio.engine import encode
    from studio.models import loading

    seen = []
    load, condition = loading.load_pipeline_for_recipe, encode.conditioning_for

    def load_and_count(*args, **kwargs):
        seen.append(("load", four_cores.get_num_threads()))
        return load(*args, **kwargs)

    def condition_and_count(*args, **kwargs):
        seen.append(("sample", four_cores.get_num_threads()))
        return condition(*args, **kwargs)

    monkeypatch.setattr(loading, "load_pipeline_for_recipe", load_and_count)
    monkeypatch.setattr(encode, "conditioning_for", condition_and_count)
    code = main(["generate", "a red circle", "--model", str(tiny_model_dir), "--steps", "1",
                 "--size", "64x64", "--seed", "1", "--device", "cpu",
                 "--sessions-dir", str(tmp_path / "sessions"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert seen == [("load", 4), ("sample", 4)]


def test_a_ui_in_the_process_keeps_one_core_back(four_cores):
    assert device.set_cpu_threads(reserve_core=True) == 3 and four_cores.get_num_threads() == 3
    assert device.set_cpu_threads(reserve_core=False) == 4 and four_cores.get_num_threads() == 4


def test_omp_num_threads_set_by_the_user_wins(four_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert device.set_cpu_threads(reserve_core=False) == 1 and four_cores.get_num_threads() == 1


def test_omp_num_threads_wins_even_after_the_count_was_changed_in_the_process(four_cores, monkeypatch):
    # torch reads the variable once: a count changed since (by an earlier job, a library) must not stay.
    four_cores.set_num_threads(3)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert device.set_cpu_threads(reserve_core=True) == 2 and four_cores.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert device.set_cpu_threads(reserve_core=False) == 2 and four_cores.get_num_threads() == 2


def test_generate_starts_the_heavy_imports_before_it_hashes_the_model(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from studio.engine import warmup
    from studio.models import hashing

    order = []
    start, digest = warmup.import_in_background, hashing.HashCache._digest

    def started():
        order.append("imports")
        return start()

    def hashed(self, *args, **kwargs):
        order.append("hash")
        return digest(self, *args, **kwargs)

    monkeypatch.setattr(warmup, "import_in_background", started)
    monkeypatch.setattr(hashing.HashCache, "_digest", hashed)
    code = main(["generate", "a red circle", "--model", str(tiny_model_dir), "--steps", "1",
                 "--size", "64x64", "--seed", "1", "--device", "cpu",
                 "--sessions-dir", str(tmp_path / "sessions"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert order[0] == "imports" and "hash" in order


@pytest.mark.slow
def test_the_background_import_loads_the_lazy_pipeline_modules():
    import subprocess
    import sys

    code = ("import sys; from studio.engine.warmup import import_in_background; import_in_background().join(); "
            "print('diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion' in sys.modules,"
            " 'diffusers.loaders.single_file' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.stdout.split() == ["True", "True"], done.stderr[-2000:]


def test_a_second_thread_waits_for_the_background_import_instead_of_importing_beside_it(monkeypatch):
    """diffusers' lazy module fails one of two threads importing it at once; the engine's import waits."""
    import threading

    from studio.engine import warmup

    release, order = threading.Event(), []

    def slow_background():
        release.wait(30)
        order.append("background")

    background = threading.Thread(target=slow_background, daemon=True)
    monkeypatch.setattr(warmup, "_background", background)
    background.start()
    engine_side = threading.Thread(target=lambda: (warmup.import_libraries(), order.append("engine")))
    engine_side.start()
    engine_side.join(0.5)
    assert engine_side.is_alive() and order == []  # still waiting for the background import
    release.set()
    engine_side.join(60)
    assert order == ["background", "engine"]

"""`studio generate` end to end on the tiny model, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.store.session import SessionStore


ROOT = Path(__file__).resolve().parent.parent
# The checkout under test, whatever studio the venv has installed.
STUDIO_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def run_studio(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **STUDIO_ENV}
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_same_seed_twice_gives_identical_pixels(tiny_model_dir, tmp_path):
    common = ["generate", "a red circle", "--model", str(tiny_model_dir), "--steps", "4",
              "--size", "64x64", "--seed", "42", "--quiet"]
    first = run_studio(*common, "--out", "one", "--sessions-dir", "s1", cwd=tmp_path)
    second = run_studio(*common, "--out", "two", "--sessions-dir", "s2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    (path_a,), (path_b,) = first.stdout.split(), second.stdout.split()
    a = np.asarray(Image.open(tmp_path / path_a))
    b = np.asarray(Image.open(tmp_path / path_b))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)


def test_count_random_seed_and_session_record(tiny_model_dir, tmp_path, capsys):
    code = main(["generate", "a blue square", "--model", str(tiny_model_dir), "--steps", "2", "--size", "64x64",
                 "-n", "2", "--sessions-dir", str(tmp_path / "sessions"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = [Path(line) for line in captured.out.split()]
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    seed = int(captured.err.split("seed ")[1].split()[0])
    (summary,) = SessionStore(tmp_path / "sessions").list()
    entries = SessionStore(tmp_path / "sessions").open(summary.name).entries()
    assert [e.status for e in entries] == ["done", "done"]
    assert [e.recipe.seed for e in entries] == [seed, seed + 1]
    assert {e.recipe.device for e in entries} == {"cpu"}
    assert all(e.recipe.model_hash for e in entries)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "65x64"], "multiple of 8"),
        (["--steps", "0"], "steps must be between 1"),
        (["--model", "no-such-model"], "not found"),
        (["--cfg", "-2"], "CFG scale"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tiny_model_dir, tmp_path, capsys):
    argv = ["generate", "x", "--model", str(tiny_model_dir), "--sessions-dir", str(tmp_path), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not list(tmp_path.iterdir())  # nothing written for a refused request


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("generate", "tui"):
        assert command in out


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_and_keeps_finished_images(tiny_model_dir, tmp_path):
    env = {**os.environ, **STUDIO_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "generate", "a dot", "--model", str(tiny_model_dir), "--steps", "150",
         "--size", "64x64", "--seed", "1", "-n", "12", "--sessions-dir", "s", "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # pytest-xdist's workers ignore SIGINT, and an ignored signal stays ignored across exec:
        # the child would never see the Ctrl-C this test sends (CI ran all 12 images).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    session_file = None
    while time.monotonic() < deadline:  # wait until the first image is finished
        files = list((tmp_path / "s").glob("*/session.toml"))
        if files and 'kind = "done"' in files[0].read_text():
            session_file = files[0]
            break
        time.sleep(0.05)
    assert session_file is not None, "no image was finished"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    entries = SessionStore(tmp_path / "s").open(session_file.parent.name).entries()
    statuses = [e.status for e in entries]
    assert statuses[0] == "done" and "cancelled" in statuses
    assert set(statuses) <= {"done", "cancelled"}  # every job has a final record
    kept = sorted(session_file.parent.glob("*.png"))
    assert kept and len(kept) == statuses.count("done")
    assert [str(p.relative_to(tmp_path)) for p in kept] == out.split()


def test_lora_flag_parsing():
    from studio.cli.generate import parse_lora
    from studio.recipe import LoraRef, RecipeError

    assert parse_lora("ink") == LoraRef("ink", 1.0)
    assert parse_lora("ink:0.6") == LoraRef("ink", 0.6)
    with pytest.raises(RecipeError):
        parse_lora("ink:lots")


def test_missing_lora_fails_the_job_with_one_line(tiny_model_dir, tmp_path, capsys):
    code = main(["generate", "x <lora:nowhere:0.5>", "--model", str(tiny_model_dir), "--steps", "1",
                 "--size", "64x64", "--sessions-dir", str(tmp_path), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "nowhere" in err and "not found" in err


def test_session_flag_appends_to_one_session(tiny_model_dir, tmp_path, capsys):
    for _ in range(2):
        assert main(["generate", "x", "--model", str(tiny_model_dir), "--steps", "1", "--size", "64x64",
                     "--session", "series", "--sessions-dir", str(tmp_path), "--quiet"]) == 0
    assert [e.status for e in SessionStore(tmp_path).open("series").entries()] == ["done", "done"]


@pytest.mark.slow
def test_a_failed_job_is_one_line_and_the_traceback_waits_behind_debug(tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "no-unet"
    shutil.copytree(tiny_model_dir, broken)
    shutil.rmtree(broken / "unet")  # a download cut short: the folder lacks a component
    common = ["generate", "a red circle", "--model", str(broken), "--steps", "2", "--size", "64x64",
              "--seed", "1", "--quiet", "--sessions-dir", "s"]
    plain = run_studio(*common, cwd=tmp_path)
    assert plain.returncode == 1
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: job failed:"), plain.stderr
    assert "Traceback" not in plain.stderr

    env_home = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    debug = subprocess.run([sys.executable, "-m", "studio", "--debug", *common], cwd=tmp_path,
                           env={**os.environ, **STUDIO_ENV, **env_home},
                           capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" not in debug.stderr
    log_line = next(line for line in debug.stderr.splitlines() if "debug log in" in line)
    log = Path(log_line.split("debug log in ", 1)[1])
    assert log.is_relative_to(tmp_path) and "Traceback (most recent call last)" in log.read_text()

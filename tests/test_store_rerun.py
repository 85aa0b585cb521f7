"""`studio rerun`, `studio import --run`, `sessions` and `show` against the tiny model."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

from studio.cli import main
from studio.config import Config, save_config
from studio.recipe import Recipe
from studio.formats.png import RECIPE_KEY
from studio.store.session import SessionStore


def test_rerun_gives_the_same_pixels_and_import_run_too(tiny_model_dir, tmp_path, capsys):
    root = tmp_path / "sessions"
    save_config(Config(model_dirs=[tiny_model_dir.parent]))
    code = main(["generate", "a red circle", "--model", str(tiny_model_dir), "--steps", "3",
                 "--size", "64x64", "--seed", "11", "--device", "cpu", "--sampler", "Euler",
                 "--sessions-dir", str(root), "--quiet"])
    first_out = capsys.readouterr()
    assert code == 0, first_out.err
    (first_path,) = [Path(p) for p in first_out.out.split()]
    (summary,) = SessionStore(root).list()

    assert main(["rerun", summary.name, "1", "--sessions-dir", str(root), "--quiet"]) == 0
    (second_path,) = [Path(p) for p in capsys.readouterr().out.split()]
    first, second = np.asarray(Image.open(first_path)), np.asarray(Image.open(second_path))
    assert first_path != second_path and np.array_equal(first, second)
    session = SessionStore(root).open(summary.name)
    one, two = session.entries()
    assert one.recipe == two.recipe and two.status == "done"
    assert session.image_path(two.images[0]) == second_path.resolve()

    # The image itself carries the recipe: import --run makes it a third time.
    stored = Recipe.from_dict(tomllib.loads(Image.open(first_path).info[RECIPE_KEY]))
    assert stored == one.recipe  # the same model reference (here a path) in the PNG and the session
    code = main(["import", str(first_path), "--run", "--session", summary.name,
                 "--sessions-dir", str(root), "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    (third_path,) = [Path(p) for p in out.out.split()]
    assert np.array_equal(first, np.asarray(Image.open(third_path)))
    assert len(SessionStore(root).open(summary.name).entries()) == 3

    assert main(["sessions", "--sessions-dir", str(root)]) == 0
    listing = capsys.readouterr().out
    assert summary.name in listing and " 3 " in listing
    assert main(["show", summary.name[:12], "--sessions-dir", str(root)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:3] == ["ID", "TIME", "STATUS"] and len(table) == 5
    assert all("done" in row and "a red circle" in row for row in table[2:])


def test_rerun_resume_runs_what_a_crash_left(tiny_model_dir, tmp_path, capsys):
    root = tmp_path / "sessions"
    session = SessionStore(root).create("crashed")
    recipe = Recipe(prompt="a red circle", model=str(tiny_model_dir), steps=2, width=64, height=64,
                    seed=3, device="cpu", sampler="Euler")
    left = session.queue(recipe)
    # Pretend the process that queued it has gone.
    text = session.file.read_text().replace(left.owner, "elsewhere:1")
    session.file.write_text(text)
    assert [e.id for e in SessionStore(root).open("crashed").unfinished()] == [left.id]
    assert main(["rerun", "crashed", "--resume", "--sessions-dir", str(root), "--quiet"]) == 0
    capsys.readouterr()
    entries = SessionStore(root).open("crashed").entries()
    assert [(e.id, e.status) for e in entries] == [(1, "done")]  # resumed under its own id and file name
    assert SessionStore(root).open("crashed").unfinished() == []


def test_rerun_errors_are_one_line(tmp_path, capsys):
    root = tmp_path / "sessions"
    SessionStore(root).create("empty")
    assert main(["rerun", "empty", "7", "--sessions-dir", str(root)]) == 1
    assert main(["rerun", "nope", "1", "--sessions-dir", str(root)]) == 1
    assert main(["show", "nope", "--sessions-dir", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "no entry 7" in err[0] and "no session 'nope'" in err[1]

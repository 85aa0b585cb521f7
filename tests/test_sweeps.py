"""Sweeps: axes and ranges, prompt S/R, wildcards, cells as session entries, the grid, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.models.library import ModelLibrary
from studio.recipe import LoraRef, Recipe, RecipeError
from studio.service import Studio
from studio.store import session as session_module
from studio.store.records import check_sweep_tag
from studio.store.session import Session, SessionError, SessionStore, record_bytes
from studio.sweeps.axes import AxisError, parse_axis
from studio.sweeps.grid import SWEEP_KEY
from studio.sweeps.run import finish_sweeps, is_grid, submit_sweep
from studio.sweeps.sweep import Sweep
from studio.sweeps.wildcards import WildcardError, Wildcards
from tests.test_service import ScriptedEngine

BASE = Recipe(prompt="a red circle on grey", width=64, height=64, seed=7)


# -- axes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, target, values",
    [
        ("steps=10-40(+10)", "steps", (10, 20, 30, 40)),
        ("steps=1-3", "steps", (1, 2, 3)),
        ("steps=8-2(-3)", "steps", (8, 5, 2)),
        ("steps=10-20[3], 30", "steps", (10, 15, 20, 30)),
        ("cfg=4-8[3]", "cfg_scale", (4.0, 6.0, 8.0)),
        ("cfg=1-2(+0.5)", "cfg_scale", (1.0, 1.5, 2.0)),
        ("CFG Scale=7", "cfg_scale", (7.0,)),
        ("clip skip=1,2", "clip_skip", (1, 2)),
        ("clip-skip=2", "clip_skip", (2,)),
        ("seed=1,5", "seed", (1, 5)),
        ("sampler=euler a, DPM++ 2M Karras", "sampler", ("Euler a", "DPM++ 2M Karras")),
        ("denoising=0.3,0.6", "strength", (0.3, 0.6)),
        ("vae_tiling=true,off", "vae_tiling", (True, False)),
        ("variation-strength=0,0.5", "variation_strength", (0.0, 0.5)),
        ("size=64x64,128x64", "size", ((64, 64), (128, 64))),
        ("negative=blurry,'dark, grainy'", "negative_prompt", ("blurry", "'dark", "grainy'")),
        ('negative=blurry,"dark, grainy"', "negative_prompt", ("blurry", "dark, grainy")),
    ],
)
def test_axis_fields_aliases_and_ranges(text, target, values):
    axis = parse_axis(text)
    assert axis.target == target and axis.values == values


def test_any_recipe_field_is_an_axis_by_its_name():
    import dataclasses

    for field in dataclasses.fields(Recipe):
        if field.type in ("int", "float") and not field.name.endswith("hash"):
            assert parse_axis(f"{field.name}=1").target == field.name


def test_labels_read_as_a1111_draws_them():
    assert parse_axis("steps=10,20").labels == ("Steps: 10", "Steps: 20")
    assert parse_axis("cfg=4-8[3]").labels == ("CFG Scale: 4", "CFG Scale: 6", "CFG Scale: 8")
    assert parse_axis("sr=red,blue").labels == ("red", "blue")


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps", "FIELD=v1,v2"),
        ("steps=", "no values"),
        ("steps=ten", "not a number"),
        ("steps=1.5", "not a whole number"),
        ("steps=40-10(+10)", "the step must lead"),
        ("steps=1-100000", "at most"),
        ("wobble=1", "unknown axis field"),
        ("prompt=a,b", "cannot be an axis"),
        ("model_hash=x", "cannot be an axis"),
        ("sampler=Nope", "unknown sampler"),
        ("sr=red", "at least one replacement"),
        ("lora:=1", "needs the LoRA's name"),
    ],
)
def test_bad_axes_are_one_line_errors(text, message):
    with pytest.raises(AxisError, match=message) as caught:
        parse_axis(text)
    assert "\n" not in str(caught.value)


def test_lora_weight_axis_sets_the_list_or_the_prompt_tag():
    listed = Sweep.build(BASE.replace(loras=(LoraRef("ink", 1.0),)), "lora:ink=0.2,0.6")
    assert [c.recipe.loras for c in listed.cells()] == [(LoraRef("ink", 0.2),), (LoraRef("ink", 0.6),)]
    added = Sweep.build(BASE, "lora:ink=0.5")
    assert added.cells()[0].recipe.loras == (LoraRef("ink", 0.5),)
    tagged = Sweep.build(BASE.replace(prompt="a fox <lora:ink:1>, snow"), "lora:ink=0.2,1.5")
    assert [c.recipe.prompt for c in tagged.cells()] == ["a fox <lora:ink:0.2>, snow", "a fox <lora:ink:1.5>, snow"]
    assert all(c.recipe.loras == () for c in tagged.cells())


# -- sweeps --------------------------------------------------------------------


def test_prompt_sr_replaces_and_a_missing_value_is_refused_before_anything_runs():
    sweep = Sweep.build(BASE.replace(negative_prompt="red blur"), "sr=red,blue,green")
    assert [c.recipe.prompt for c in sweep.cells()] == ["a red circle on grey", "a blue circle on grey",
                                                          "a green circle on grey"]
    assert sweep.cells()[1].recipe.negative_prompt == "blue blur"  # as A1111: the negative prompt too
    with pytest.raises(AxisError, match="'square' is not in the prompt"):
        Sweep.build(BASE, "steps=1,2", "sr=square,circle")


def test_cells_go_z_then_y_then_x_and_every_cell_is_checked():
    sweep = Sweep.build(BASE, "steps=1,2", "cfg=3,4", "seed=1,2,3")
    cells = sweep.cells()
    assert sweep.shape == (2, 2, 3) and len(cells) == 12
    assert [c.at for c in cells[:3]] == [(0, 0, 0), (1, 0, 0), (0, 1, 0)]
    assert (cells[5].recipe.steps, cells[5].recipe.cfg_scale, cells[5].recipe.seed) == (2, 3.0, 2)
    with pytest.raises(RecipeError, match="steps must be between 1 and 1000"):
        Sweep.build(BASE, "steps=10,0")
    with pytest.raises(RecipeError, match="multiple of 8"):
        Sweep.build(BASE, "size=64x64,65x64")
    with pytest.raises(AxisError, match="at least one axis"):
        Sweep.build(BASE, None)


# -- wildcards -----------------------------------------------------------------


@pytest.fixture
def wild(tmp_path) -> Wildcards:
    (tmp_path / "w" / "colours").mkdir(parents=True)
    (tmp_path / "w" / "colours" / "warm.txt").write_text("red\norange\n# a comment\n\nyellow\n")
    (tmp_path / "w" / "shape.txt").write_text("__colours/warm__ circle\n{big|small} __colours/warm__ square\n")
    return Wildcards([tmp_path / "nothing-here", tmp_path / "w"])


def test_wildcards_are_drawn_from_the_seed(wild):
    first = [wild.resolve("a __shape__ on {grey|white}", seed) for seed in range(30)]
    assert first == [wild.resolve("a __shape__ on {grey|white}", seed) for seed in range(30)]
    assert len(set(first)) > 3
    assert all("__" not in text and "{" not in text for text in first)
    colours = {wild.resolve("__colours/warm__", seed) for seed in range(40)}
    assert colours == {"red", "orange", "yellow"}  # comments and blank lines are never picked


def test_several_variants_at_once(wild):
    for seed in range(20):
        picked = wild.resolve("{2$$a|b|c}", seed).split(", ")
        assert len(picked) == 2 and len(set(picked)) == 2 and set(picked) <= {"a", "b", "c"}
        assert wild.resolve("{2$$ and $$x|y}", seed) in ("x and y", "y and x")
        assert 1 <= len(wild.resolve("{1-3$$a|b|c}", seed).split(", ")) <= 3
    assert wild.resolve("{a|{b|c}}", 1) in ("a", "b", "c")


@pytest.mark.parametrize(
    "template, message",
    [
        ("a __nope__", "no wildcard file nope.txt"),
        ("a __../secret__", "stays inside"),
        ("a {red|blue", "never closed"),
        ("a red} circle", "closes no"),
    ],
)
def test_bad_templates_are_one_line_errors(wild, template, message):
    with pytest.raises(WildcardError, match=message):
        wild.check(template)


def test_a_sweep_resolves_each_cell_from_its_seed_and_keeps_the_template(wild):
    sweep = Sweep.build(BASE.replace(prompt="a __colours/warm__ disc"), "seed=1-12", wildcards=wild)
    cells = sweep.cells()
    assert all(c.template == "a __colours/warm__ disc" for c in cells)
    assert len({c.recipe.prompt for c in cells}) > 1
    assert [c.recipe.prompt for c in cells] == [wild.resolve("a __colours/warm__ disc", s) for s in range(1, 13)]
    with pytest.raises(WildcardError, match="no wildcard file"):
        Sweep.build(BASE.replace(prompt="a __missing__"), "steps=1,2", wildcards=wild)


# -- the session record --------------------------------------------------------


@pytest.mark.parametrize(
    "tag, message",
    [
        ({"id": "s", "at": [0, 0, 0], "shape": [1, 1, 1], "axes": ["", "", ""], "labels": ["", "", ""]}, ""),
        ({"id": "s", "shape": [2, 1, 1], "axes": ["Steps", "", ""], "cells": [1, 0]}, ""),
        ({"id": "s", "at": [1, 0, 0], "shape": [1, 1, 1], "axes": ["", "", ""], "labels": ["", "", ""]}, "outside"),
        ({"id": "s", "shape": [1, 1, 1], "axes": ["", "", ""]}, "a cell ('at') or a grid"),
        ({"id": "s", "shape": [1, 1], "axes": ["", "", ""], "cells": []}, "three items"),
        ({"id": "s", "shape": [1, 1, 1], "axes": ["", "", ""], "cells": [True]}, "whole numbers"),
        ({"id": "s", "shape": [1, 1, 1], "axes": [1, "", ""], "cells": [1]}, "hold text"),
        ({"shape": [1, 1, 1], "axes": ["", "", ""], "cells": [1]}, "needs an id"),
        ({"id": "s", "shape": [1, 1, 1], "axes": ["", "", ""], "cells": [1], "colour": "red"}, "unknown field"),
    ],
)
def test_sweep_tags_are_checked(tag, message):
    problem = check_sweep_tag(tag)
    assert (message in problem) if message else problem == ""


def test_a_session_with_a_bad_sweep_tag_is_refused(tmp_path):
    session = SessionStore(tmp_path).create("s")
    record = {"id": 1, "kind": "queued", "time": "2026-01-01T00:00:00Z", "recipe": {"prompt": "x"},
              "sweep": {"id": "s", "shape": [1, 1, 1], "axes": ["", "", ""], "cells": "1"}}
    with open(session.file, "ab") as handle:
        handle.write(record_bytes(record))
    with pytest.raises(SessionError, match="'cells' has the wrong type"):
        Session(session.path)


def make_studio(session) -> Studio:
    return Studio(session, ModelLibrary(use_hf_cache=False), engine_factory=lambda listener: ScriptedEngine(listener))


def test_cells_are_tagged_entries_and_the_grid_names_them(tmp_path, wild):
    session = SessionStore(tmp_path / "sessions").create("s")
    studio = make_studio(session)
    sweep = Sweep.build(BASE.replace(prompt="a {red|blue} circle"), "steps=1,2", "cfg=3,4,5", wildcards=wild)
    submit_sweep(studio, sweep)
    studio.wait_idle()
    (grid,) = finish_sweeps(session, only={sweep.id})
    entries = Session(session.path).entries()
    cells, (grid_entry,) = entries[:6], entries[6:]
    assert [c.sweep["at"] for c in cells] == [[i, j, 0] for j in range(3) for i in range(2)]
    assert all(c.status == "done" and c.template == "a {red|blue} circle" for c in cells)
    assert all(c.recipe.prompt in ("a red circle", "a blue circle") for c in cells)
    assert is_grid(grid_entry) and grid_entry.sweep["cells"] == [c.id for c in cells]
    assert grid_entry.images == (grid.name,)
    with Image.open(grid) as image:
        assert image.width > 2 * 8 and image.height > 3 * 8  # the cells and their labels
        assert sweep.id in image.text[SWEEP_KEY] and "Steps: 20" not in image.text["parameters"]
    assert finish_sweeps(session) == []  # once only


def test_a_crashed_sweep_resumes_its_cells_and_then_its_grid(tmp_path, monkeypatch):
    root = tmp_path / "sessions"
    session = SessionStore(root).create("s")
    sweep = Sweep.build(BASE, "steps=1,2", "sr=red,blue")
    cells = sweep.cells()
    first = make_studio(session)
    first.submit(cells[0].recipe, sweep=sweep.cell_tag(cells[0]))
    first.wait_idle()
    monkeypatch.setattr(session_module, "_OWNER", "a-gone-host:1")  # the rest were queued by a process now dead
    for cell in cells[1:]:
        session.queue(cell.recipe, sweep=sweep.cell_tag(cell))
    monkeypatch.undo()
    assert finish_sweeps(session) == []  # three cells still to make: no grid yet

    reopened = Session(session.path)
    left = reopened.unfinished()
    assert [e.id for e in left] == [2, 3, 4]
    studio = make_studio(reopened)
    studio.resume(left)
    studio.wait_idle()
    (grid,) = finish_sweeps(reopened)
    entries = Session(session.path).entries()
    assert [e.status for e in entries] == ["done"] * 5 and is_grid(entries[-1])
    assert entries[-1].sweep["cells"] == [1, 2, 3, 4]
    assert Path(grid).is_file() and finish_sweeps(reopened) == []


def test_an_unfinished_grid_entry_is_never_run_by_resume(tmp_path, monkeypatch):
    session = SessionStore(tmp_path / "sessions").create("s")
    monkeypatch.setattr(session_module, "_OWNER", "a-gone-host:1")
    session.queue(BASE, sweep={"id": "s", "shape": [1, 1, 1], "axes": ["Steps", "", ""], "cells": [0]})
    monkeypatch.undo()
    studio = make_studio(Session(session.path))
    assert studio.resume(Session(session.path).unfinished()) == []


# -- the command line ----------------------------------------------------------


@pytest.mark.slow
def test_studio_sweep_prints_cells_then_the_grid_and_cells_equal_generate(tiny_model_dir, tmp_path, capsys):
    common = ["--model", str(tiny_model_dir), "--size", "64x64", "--seed", "3", "--quiet"]
    code = main(["sweep", "a red circle", "--x", "steps=1,2", "--y", "sr=red,blue", *common,
                 "--sessions-dir", str(tmp_path / "s"), "--session", "sw"])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.split()
    assert len(lines) == 5 and lines[-1].endswith("-grid.png")
    code = main(["generate", "a blue circle", "--steps", "2", *common, "--out", str(tmp_path / "g"),
                 "--sessions-dir", str(tmp_path / "s")])
    (made,) = capsys.readouterr().out.split()
    assert code == 0
    assert np.array_equal(np.asarray(Image.open(lines[3])), np.asarray(Image.open(made)))
    assert not np.array_equal(np.asarray(Image.open(lines[0])), np.asarray(Image.open(lines[3])))


def test_studio_sweep_refuses_bad_axes_before_recording(tiny_model_dir, tmp_path, capsys):
    code = main(["sweep", "a red circle", "--x", "sr=square,circle", "--model", str(tiny_model_dir),
                 "--sessions-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "'square' is not in the prompt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


# -- wildcards in `studio generate` --------------------------------------------------


@pytest.mark.slow
def test_studio_generate_draws_wildcards_from_each_jobs_seed_and_keeps_the_template(tiny_model_dir, tmp_path,
                                                                                    capsys, wild):
    from studio.formats.png import read_recipe

    template = "a __colours/warm__ {disc|square}"
    args = ["generate", template, "--negative", "{blurry|dark}", "--model", str(tiny_model_dir), "--size", "64x64",
            "--steps", "1", "--seed", "7", "-n", "3", "--quiet", "--wildcards", str(wild.folders[1]),
            "--sessions-dir", str(tmp_path / "s"), "--session", "w"]
    assert main(args) == 0, capsys.readouterr().err
    paths = capsys.readouterr().out.split()
    entries = SessionStore(tmp_path / "s").open("w").entries()
    drawn = [wild.resolve(template, seed) for seed in (7, 8, 9)]
    assert [e.recipe.prompt for e in entries] == drawn  # each job draws from its own seed
    assert [e.recipe.negative_prompt for e in entries] == [wild.resolve("{blurry|dark}", s + 1) for s in (7, 8, 9)]
    assert all(e.template == template for e in entries)
    assert [read_recipe(Path(p)).prompt for p in paths] == drawn  # the image carries the resolved prompt
    assert main([*args[:-1], "again"]) == 0  # the same seeds draw the same prompts
    capsys.readouterr()
    assert [e.recipe.prompt for e in SessionStore(tmp_path / "s").open("again").entries()] == drawn


def test_studio_generate_refuses_a_missing_wildcard_before_recording(tiny_model_dir, tmp_path, capsys):
    code = main(["generate", "a __nowhere__ circle", "--model", str(tiny_model_dir), "--wildcards", str(tmp_path),
                 "--sessions-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "no wildcard file nowhere.txt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()

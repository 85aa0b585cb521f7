"""Licenses: read from model cards and headers, shown by inspect, models and the picker, recorded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from PIL import Image

from studio.cli import main
from studio.formats.a1111 import a1111_parameters, read_a1111
from studio.models.inspect import inspect_file
from studio.models.license import NON_COMMERCIAL, OTHER, License, card_license, front_matter, recorded_license
from studio.models.library import ModelLibrary
from studio.recipe import Recipe
from tests import models_fixtures as mf

FLUX_DEV_CARD = """---
language:
- en
license: other
license_name: flux-1-dev-non-commercial-license
license_link: LICENSE.md
tags:
- text-to-image
---
# FLUX.1 [dev]
"""
CASCADE_CARD = '---\nlicense: other\nlicense_name: "stable-cascade-nc-community"\nlicense_link: LICENSE\n---\n'
SDXL_CARD = "---\nlicense: openrail++\ntags: [text-to-image]\n---\n# SDXL\n"


def folder_with_card(tmp_path: Path, name: str, card: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    (folder / "README.md").write_text(card)
    return folder


def test_front_matter_and_flags():
    assert front_matter(FLUX_DEV_CARD)["license_name"] == "flux-1-dev-non-commercial-license"
    assert front_matter("# no front matter\nlicense: mit\n") == {}
    assert front_matter("---\nlicense:\n- cc-by-nc-4.0\n---\n")["license"] == "cc-by-nc-4.0"
    assert front_matter("---\nlicense: [apache-2.0]\n---\n")["license"] == "apache-2.0"
    assert License("other", "flux-1-dev-non-commercial-license").flag == NON_COMMERCIAL
    assert License("other", "stable-cascade-nc-community").flag == NON_COMMERCIAL
    assert License("cc-by-nc-sa-4.0").flag == NON_COMMERCIAL
    assert License("other", "stabilityai-ai-community").flag == OTHER
    assert License("openrail++").flag == "" and License("apache-2.0").flag == ""
    assert License("").label() == ""
    assert License("other", "stable-cascade-nc-community").label() == "other: stable-cascade-nc-community (non-commercial)"
    assert License("other", "stabilityai-ai-community").label() == "other: stabilityai-ai-community (read its terms)"
    assert License("other", "x").recorded == "x" and License("mit").recorded == "mit"


def test_card_is_read_bounded(tmp_path):
    big = folder_with_card(tmp_path, "big", SDXL_CARD + "x" * (5 << 20))  # 5 MB card: only its head is read
    assert card_license(big).id == "openrail++"
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "README.md")  # never opened for reading: no hang
    assert card_license(fifo) == License("")
    assert card_license(tmp_path / "missing") == License("")


def test_inspect_shows_a_folder_license(tmp_path, capsys):
    folder = folder_with_card(tmp_path, "flux-dev", FLUX_DEV_CARD)
    result = inspect_file(folder)
    assert result.license.flag == NON_COMMERCIAL
    assert main(["inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "license       other: flux-1-dev-non-commercial-license (non-commercial) <LICENSE.md>" in out
    assert main(["inspect", "--json", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["license"]["flag"] == "non-commercial"


def test_inspect_shows_a_hub_snapshot_license(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--stabilityai--stable-cascade"
    snapshot = repo / "snapshots" / "abc123"
    folder_with_card(snapshot.parent, snapshot.name, CASCADE_CARD)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert main(["inspect", "stabilityai/stable-cascade"]) == 0
    assert "other: stable-cascade-nc-community (non-commercial)" in capsys.readouterr().out


def test_inspect_shows_a_single_file_license_printable(tmp_path, capsys):
    path = mf.write_header_only(
        tmp_path / "sd3.safetensors", mf.sd3_spec(24), {"modelspec.license": "cc-by-nc-4.0\x1b]52;c;eA==\x07"}
    )
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "license" in out and "cc-by-nc-4.0" in out and "(non-commercial)" in out
    assert "\x1b" not in out and "\x07" not in out
    assert out.count("cc-by-nc-4.0") == 1  # the license row, not the metadata highlight as well
    unlicensed = mf.write_header_only(tmp_path / "plain.safetensors", mf.sd1_spec())
    assert main(["inspect", str(unlicensed)]) == 0
    assert "not declared" in capsys.readouterr().out


def test_models_table_and_picker_flag_licenses_and_checkers(tmp_path, capsys):
    models = tmp_path / "models"
    folder_with_card(models, "flux-dev", FLUX_DEV_CARD)
    sdxl = folder_with_card(models, "sdxl", SDXL_CARD)
    index = {"_class_name": "StableDiffusionPipeline", "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]}
    (sdxl / "model_index.json").write_text(json.dumps(index))
    assert main(["models", "--dir", str(models), "--no-hf-cache", "--no-hash"]) == 0
    out = capsys.readouterr().out
    assert "LICENSE" in out.splitlines()[0]
    flux_line = next(line for line in out.splitlines() if line.startswith("flux-dev"))
    assert "(non-commercial)" in flux_line
    sdxl_line = next(line for line in out.splitlines() if line.startswith("sdxl"))
    assert "openrail++" in sdxl_line and "ships a safety checker (off)" in sdxl_line

    from studio.tui.widgets.model_picker import list_models

    rows = {Path(row.name).name: row for row in list_models(ModelLibrary([models], use_hf_cache=False))}
    assert "(non-commercial)" in rows["flux-dev"].license
    assert rows["sdxl"].safety_checker and rows["sdxl"].license == "openrail++"


def test_a1111_carries_the_license_both_ways():
    recipe = Recipe(prompt="a cat", model_license="flux-1-dev-non-commercial-license")
    text = a1111_parameters(recipe)
    assert "License: flux-1-dev-non-commercial-license" in text
    fields, notes = read_a1111(text)
    assert fields["model_license"] == "flux-1-dev-non-commercial-license" and not notes
    assert "License" not in a1111_parameters(Recipe(prompt="a cat"))


def test_the_engine_records_the_license_and_the_png_carries_it(tiny_model_dir, tmp_path):
    from studio.engine import LocalEngine, events as ev
    from studio.formats.png import read_recipe
    from tests.test_engine import Recorder

    model = tmp_path / "licensed"
    shutil.copytree(tiny_model_dir, model)
    (model / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n")
    assert recorded_license(model) == "cc-by-nc-4.0"
    recorder = Recorder()
    engine = LocalEngine(recorder)
    try:
        job = engine.submit(Recipe(prompt="a red circle", model=str(model), steps=2, width=64, height=64), tmp_path)
        done = recorder.until(ev.Finished, job)
    finally:
        engine.shutdown()
    assert done.recipe.model_license == "cc-by-nc-4.0"
    assert "License: cc-by-nc-4.0" in Image.open(done.paths[0]).text["parameters"]
    assert read_recipe(done.paths[0]).model_license == "cc-by-nc-4.0"

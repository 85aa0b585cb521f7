"""`Session.recover`: what a writer killed at the two crash windows leaves, tidied.

The kill tests run real child processes that SIGKILL themselves at the exact
window: inside `atomic_writer` (a temp file is left), and after `save_png`
landed the image but before `finish()` (the image is unrecorded).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from studio.atomic import atomic_writer
from studio.formats import png
from studio.formats.png import save_png
from studio.recipe import Recipe
from studio.store.journal import record_bytes
from studio.store.session import FILE_NAME, SessionStore, now_iso

ROOT = Path(__file__).resolve().parent.parent
RECIPE = Recipe(prompt="a lighthouse at dusk", negative_prompt="blur", seed=41, steps=4, width=64, height=64)

# argv: session folder, batch size, window ("temp", "image" or "none").
_CHILD = """
import os, signal, sys
from pathlib import Path
from studio.recipe import Recipe
from studio.store.session import Session
session = Session(Path(sys.argv[1]))
recipe = Recipe(prompt="a lighthouse at dusk", negative_prompt="blur", seed=41, steps=4,
                width=64, height=64, batch_size=int(sys.argv[2]))
entry = session.queue(recipe)
if sys.argv[3] == "none":
    sys.exit(0)
session.start(entry.id)
if sys.argv[3] == "temp":
    from studio.atomic import atomic_writer
    with atomic_writer(session.path / f"{entry.stem}.png") as handle:
        handle.write(b"\\x89PNG\\r\\n\\x1a\\n half an image")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
from PIL import Image
from studio.formats.png import save_png
# What the engine records: hashes, device and dtype filled in, the model as named.
used = recipe.replace(model_hash="0123abcd", device="cpu", dtype="float32")
for i in range(recipe.batch_size):
    name = entry.stem if recipe.batch_size == 1 else f"{entry.stem}-{i}"
    save_png(Image.new("RGB", (8, 8), (i * 60, 90, 200)), session.path / f"{name}.png", used.for_image(i))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _child(folder: Path, window: str, batch_size: int = 1) -> int:
    """Run the child to its window; the exit status (the child is reaped, so its pid is gone)."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), str(batch_size), window], cwd=ROOT, timeout=60
    )
    return proc.returncode


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def test_killed_inside_the_atomic_write_leaves_a_temp_that_recover_removes(store):
    session = store.create("window1")
    assert _child(session.path, "temp") == -signal.SIGKILL
    assert len(_temps(session.path)) == 1 and _temps(session.path)[0].startswith(".0001.png-")

    reopened = store.open("window1")
    notes = reopened.recover()
    assert _temps(session.path) == [] and not (session.path / "0001.png").exists()
    assert len(notes) == 1 and "removed 1 temp file" in notes[0]
    # Nothing landed, so the entry is still to make: resume will make it.
    assert [(e.id, e.status) for e in reopened.unfinished()] == [(1, "running")]
    assert reopened.recover() == []


@pytest.mark.parametrize("batch_size", [1, 2])
def test_killed_between_the_image_and_its_record_recover_adopts_it(store, batch_size):
    session = store.create("window2")
    assert _child(session.path, "image", batch_size) == -signal.SIGKILL
    names = ["0001.png"] if batch_size == 1 else ["0001-0.png", "0001-1.png"]
    assert all((session.path / name).is_file() for name in names)
    assert [e.id for e in store.open("window2").unfinished()] == [1]

    reopened = store.open("window2")
    notes = reopened.recover()
    assert notes == [f"entry 1: recorded {', '.join(names)}, made before a crash"]
    assert reopened.unfinished() == [] and _temps(session.path) == []
    for view in (reopened, store.open("window2")):  # the record is on disk, and reads strictly
        entry = view.get(1)
        assert entry.status == "done" and list(entry.images) == names
        assert entry.duration is None  # unknown, so not invented
        assert entry.recipe == RECIPE.replace(
            batch_size=batch_size, model_hash="0123abcd", device="cpu", dtype="float32"
        )
        assert entry.device == "cpu" and entry.model_hash == "0123abcd"
    assert reopened.recover() == []


def test_a_temp_file_a_live_process_is_writing_is_left_alone(store):
    session = store.create("live")
    entry = session.queue(RECIPE)  # queued by this process, which is alive
    session.start(entry.id)
    other = store.open("live")
    with atomic_writer(session.path / f"{entry.stem}.png") as handle:
        handle.write(b"being written")
        assert other.recover() == []
        assert len(_temps(session.path)) == 1
    assert (session.path / "0001.png").read_bytes() == b"being written"


def test_temps_of_final_entries_and_of_the_session_file_go_others_stay(store):
    session = store.create("final")
    entry = session.queue(RECIPE)
    session.finish(entry.id, RECIPE.replace(device="cpu"), ["0001.png"], 1.0)
    stray = [".0001.png-abcd1234.tmp", ".0001-1.png-x_9.tmp", ".0001_2.png-zz.tmp", ".session.toml-q1w2.tmp"]
    kept = [
        ".0042.png-abcd1234.tmp",  # an entry this session does not know of
        ".notes.png-abcd1234.tmp", ".0001.png.tmp", ".0001.png-abcd.tmp.keep", ".0001.jpg-abcd.tmp",
        "0001.png-abcd.tmp",
    ]
    for name in stray + kept:
        (session.path / name).write_bytes(b"x")
    notes = store.open("final").recover()
    assert len(notes) == 1 and notes[0].startswith("removed 4 temp files")
    assert sorted(p.name for p in session.path.iterdir() if p.name != FILE_NAME) == sorted(kept)


def test_read_only_sessions_recover_nothing(store):
    session = store.create("ro")
    assert _child(session.path, "image") == -signal.SIGKILL
    (session.path / ".0001.png-abcd1234.tmp").write_bytes(b"x")
    view = store.open("ro", read_only=True)
    assert view.recover() == []
    assert _temps(session.path) and [e.id for e in store.open("ro").unfinished()] == [1]


def _left_behind(store: SessionStore, name: str) -> Path:
    """A session with entry 1 queued by a process that has exited."""
    session = store.create(name)
    assert _child(session.path, "none") == 0
    return session.path


def test_an_image_with_another_recipe_is_not_adopted(store):
    folder = _left_behind(store, "other")
    for changed in (RECIPE.replace(seed=42), RECIPE.replace(prompt="a barn"), RECIPE.replace(steps=5),
                    RECIPE.replace(model="another-model"), RECIPE.replace(width=128)):
        save_png(Image.new("RGB", (8, 8)), folder / "0001.png", changed)
        session = store.open("other")
        assert session.recover() == []
        assert [e.id for e in session.unfinished()] == [1]
    Image.new("RGB", (8, 8)).save(folder / "0001.png")  # a PNG with no recipe at all
    assert store.open("other").recover() == []


def test_a_truncated_png_is_not_adopted(store):
    folder = _left_behind(store, "cut")
    path = folder / "0001.png"
    save_png(Image.new("RGB", (32, 32), "teal"), path, RECIPE.replace(device="cpu"))
    whole = path.read_bytes()
    session = store.open("cut")
    for keep in (len(whole) // 2, len(whole) - 20, len(whole) - 1, 5):  # PIL reads len - 20 whole
        path.write_bytes(whole[:keep])
        assert session.recover() == [] and [e.id for e in session.unfinished()] == [1]
    path.write_bytes(whole)  # whole again: now it is adopted
    assert session.recover() == ["entry 1: recorded 0001.png, made before a crash"]


def test_a_batch_with_an_image_missing_is_not_adopted(store):
    session = store.create("part")
    assert _child(session.path, "image", batch_size=2) == -signal.SIGKILL
    (session.path / "0001-1.png").unlink()  # killed between the two images
    reopened = store.open("part")
    assert reopened.recover() == [] and [e.id for e in reopened.unfinished()] == [1]


def test_recover_opens_only_unfinished_entries_images(store, monkeypatch):
    session = store.create("big")
    records = []
    for entry_id in range(1, 2001):
        recipe = RECIPE.replace(seed=entry_id).to_dict()
        records.append(record_bytes({"id": entry_id, "kind": "queued", "time": now_iso(), "recipe": recipe}))
        done = {"id": entry_id, "kind": "done", "time": now_iso(), "images": [f"{entry_id:04d}.png"]}
        records.append(record_bytes(done))
    records.append(record_bytes(
        {"id": 2001, "kind": "queued", "time": now_iso(), "recipe": RECIPE.to_dict(), "owner": "gone-host:1"}
    ))
    with open(session.file, "ab") as handle:
        handle.write(b"".join(records))
    for entry_id in (1, 2, 2001):
        save_png(Image.new("RGB", (8, 8)), session.path / f"{entry_id:04d}.png", RECIPE.replace(device="cpu"))
    opened: list[str] = []
    real = png.read_recipe
    monkeypatch.setattr(png, "read_recipe", lambda path: opened.append(Path(path).name) or real(path))
    assert store.open("big").recover() == ["entry 2001: recorded 2001.png, made before a crash"]
    assert opened == ["2001.png"]

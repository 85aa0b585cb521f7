"""The review index and its query syntax: derived from the session files, incremental, rebuilt when broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from studio.recipe import LoraRef, Recipe
from studio.review.index import ReviewIndex, default_index_path
from studio.review.query import QueryError, parse_query
from studio.store.session import SessionStore

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    """The environment for a child: this test's own cache folder (set per test), this checkout."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def finish(session, recipe: Recipe, model_hash: str = "8711c266f2aa") -> int:
    entry = session.queue(recipe)
    session.start(entry.id)
    made = recipe.replace(device="cpu", dtype="float32", model_hash=model_hash)
    session.finish(entry.id, made, [f"{entry.stem}.png"], 1.0)
    return entry.id


@pytest.fixture
def root(tmp_path) -> Path:
    store = SessionStore(tmp_path / "sessions")
    a = store.create("2026-11-01-a")
    fox = finish(a, Recipe(prompt="a red fox in snow", seed=7, loras=(LoraRef("inkwash", 0.8),)))
    finish(a, Recipe(prompt="a lighthouse at dusk", negative_prompt="blurry fox", seed=8, width=512, height=768))
    a.mark(fox, rating=5, favourite=True)
    b = store.create("2026-11-02-b")
    owl = finish(b, Recipe(prompt="an owl, ink wash portrait", seed=9, sampler="Euler a",
                           loras=(LoraRef("InkWash-v2"), LoraRef("detailer"))), model_hash="0123456789ab")
    b.mark(owl, rating=3, note="nice fox-like ears")
    failed = b.queue(Recipe(prompt="a broken job", seed=10))
    b.fail(failed.id, "out of memory")
    gone = finish(b, Recipe(prompt="a deleted fox", seed=11))
    b.delete(gone)
    return tmp_path / "sessions"


def keys(index: ReviewIndex, query: str) -> list[str]:
    return [hit.key for hit in index.search(query)]


def test_the_index_finds_by_words_and_filters(root):
    index = ReviewIndex(root)
    assert index.update() == 2
    assert keys(index, "fox") == ["2026-11-02-b:1", "2026-11-01-a:2", "2026-11-01-a:1"]  # prompt, negative, note
    assert keys(index, '"red fox"') == ["2026-11-01-a:1"]
    assert keys(index, "lora:inkwash") == ["2026-11-02-b:1", "2026-11-01-a:1"]
    assert keys(index, "lora:inkwash lora:detailer") == ["2026-11-02-b:1"]
    assert keys(index, "rating:4") == ["2026-11-01-a:1"]
    assert keys(index, "rating:<4 status:done") == ["2026-11-02-b:1", "2026-11-01-a:2"]
    assert keys(index, "fav:yes") == ["2026-11-01-a:1"]
    assert keys(index, "model:8711c266") == ["2026-11-01-a:2", "2026-11-01-a:1"]
    assert keys(index, "model:studio-tiny session:2026-11-02") == ["2026-11-02-b:2", "2026-11-02-b:1"]
    assert keys(index, "seed:9") == ["2026-11-02-b:1"]
    assert keys(index, "size:512x768") == ["2026-11-01-a:2"]
    assert keys(index, "status:failed") == ["2026-11-02-b:2"]
    assert keys(index, "sampler:EULER_A") == ["2026-11-02-b:1"]
    assert keys(index, "seed:11") == []  # deleted entries never match
    assert keys(index, "sort:rating")[:2] == ["2026-11-01-a:1", "2026-11-02-b:1"]
    assert keys(index, "sort:session") == ["2026-11-01-a:1", "2026-11-01-a:2", "2026-11-02-b:1", "2026-11-02-b:2"]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert len(keys(index, f"since:{today} until:{today}")) == 4
    assert keys(index, "until:2020-01-01") == [] and len(keys(index, "since:1d")) == 4
    hit = index.search("red fox")[0]
    assert hit.images == (root / "2026-11-01-a" / "0001.png",) and hit.rating == 5 and hit.favourite
    assert index.count("fox") == 3 and [s.entries for s in index.sessions()] == [2, 2]


@pytest.mark.parametrize("text, problem", [
    ("fox colour:red", "unknown search key 'colour:'"),
    ("rating:7", "rating: must be 0–5"),
    ("seed:abc", "seed: must be a whole number"),
    ("size:big", "size: must be WIDTHxHEIGHT"),
    ("status:lost", "status: must be one of"),
    ("fav:maybe", "fav: must be yes or no"),
    ("since:yesterday", "since: must be a date"),
    ("sort:random", "sort: must be one of"),
    ("model:", "model: needs a value"),
])
def test_a_bad_query_is_a_one_line_error(text, problem):
    with pytest.raises(QueryError, match=problem) as caught:
        parse_query(text)
    assert "\n" not in str(caught.value)


def test_quoted_text_and_punctuation_are_free_text():
    query = parse_query('"a:b" !!! fox model:"my model"')
    assert query.words == ("a:b", "fox") and query.params == ("%my model%", "my model%")
    assert parse_query('fo"x').match()  # a stray quote is not an error


def test_updates_are_incremental_and_follow_other_writers(root):
    index = ReviewIndex(root)
    index.update()
    assert index.update() == 0  # nothing changed: only a stat per session
    other = SessionStore(root).open("2026-11-01-a")  # another process, say
    other.mark(2, rating=4)
    assert index.update() == 1
    assert keys(index, "rating:4") == ["2026-11-01-a:2", "2026-11-01-a:1"]
    other.mark(2, rating=1)  # caught up from the session it read last time: new bytes only
    index.update()
    assert keys(index, "rating:4") == ["2026-11-01-a:1"]
    (root / "2026-11-02-b").rename(root / "2026-11-03-renamed")
    index.update()
    assert {s.name for s in index.sessions()} == {"2026-11-01-a", "2026-11-03-renamed"}
    assert keys(index, "seed:9") == ["2026-11-03-renamed:1"]
    fresh = ReviewIndex(root)  # a second process sees what the first wrote, reading nothing
    assert fresh.update() == 0 and fresh.count("") == 4


def test_a_live_session_updates_its_entries_without_reading_the_file(root):
    index = ReviewIndex(root)
    index.update()
    session = SessionStore(root).open("2026-11-01-a")
    new = finish(session, Recipe(prompt="a grey wolf", seed=12))
    index.update_session(session.path, live=session)
    assert keys(index, "wolf") == [f"2026-11-01-a:{new}"]
    session.delete(new)
    index.update_session(session.path, live=session)
    assert keys(index, "wolf") == [] and index.update() == 0


def test_a_corrupt_index_is_rebuilt_with_a_notice(root):
    path = default_index_path(root)
    ReviewIndex(root).update()
    assert path.is_file() and path.is_relative_to(Path(os.environ["STUDIO_CACHE_DIR"]))
    toml_before = {p: p.read_bytes() for p in root.glob("*/session.toml")}
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    notices: list[str] = []
    index = ReviewIndex(root, notice=notices.append)
    index.update()
    assert len(notices) == 1 and "unreadable" in notices[0] and "\n" not in notices[0]
    assert index.count("") == 4
    assert {p: p.read_bytes() for p in root.glob("*/session.toml")} == toml_before  # the record untouched
    index.close()
    path.unlink()
    notices.clear()
    again = ReviewIndex(root, notice=notices.append)
    assert again.count("fox") == 0 and len(notices) == 1 and "building" in notices[0]
    again.update()
    assert again.count("fox") == 3


def run_cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args, "--sessions-dir", str(root)],
                          capture_output=True, text=True, env=env(), timeout=60)


def test_studio_search_prints_one_escaped_line_a_match(root):
    session = SessionStore(root).open("2026-11-01-a")
    finish(session, Recipe(prompt="a fox \x1b]52;c;aGk=\x07 in a hat", seed=20))
    done = run_cli("search", "fox", "rating:>=0", root=root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["2026-11-01-a:3", "2026-11-02-b:1", "2026-11-01-a:2", "2026-11-01-a:1"]
    assert "\x1b" not in done.stdout and "\\x1b]52" in lines[0]
    assert "★★★★★♥" in lines[-1] and "a red fox in snow" in lines[-1]
    as_json = json.loads(run_cli("search", "lora:inkwash", "--json", root=root).stdout)
    assert [(h["session"], h["id"], h["seed"]) for h in as_json] == [("2026-11-02-b", 1, 9), ("2026-11-01-a", 1, 7)]
    bad = run_cli("search", "fox", "colour:red", root=root)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown search key" in bad.stderr
    assert "Traceback" not in bad.stderr


TWO_WRITERS = """
import sys
from pathlib import Path
from studio.recipe import Recipe
from studio.review.index import ReviewIndex
from studio.store.session import SessionStore
root, name = Path(sys.argv[1]), sys.argv[2]
session = SessionStore(root).open(name)
index = ReviewIndex(root, timeout=10)
for i in range(40):
    entry = session.queue(Recipe(prompt=f"{name} task {i}", seed=i))
    index.update_session(session.path, live=session)
    if i % 10 == 0:
        index.update()
print("ok")
"""


def test_two_processes_update_the_index_at_once(root):
    procs = [subprocess.Popen([sys.executable, "-c", TWO_WRITERS, str(root), name], env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("2026-11-01-a", "2026-11-02-b")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    index = ReviewIndex(root)
    assert index.update() == 0  # each wrote the state it read, and said so
    assert index.count("task") == 80 and index.count("session:2026-11-02-b task") == 40


def test_the_service_indexes_every_record_and_a_broken_index_never_fails_a_job(tmp_path):
    from studio.models.library import ModelLibrary
    from studio.service import Studio
    from tests.test_service import ScriptedEngine

    root = tmp_path / "sessions"
    session = SessionStore(root).create("s")
    engines: list[ScriptedEngine] = []
    studio = Studio(session, ModelLibrary(use_hf_cache=False),
                    engine_factory=lambda listener: engines.append(ScriptedEngine(listener)) or engines[-1])
    studio.submit(Recipe(prompt="a blue square", seed=3))
    studio.wait_idle()
    hits = studio.index.search("blue")  # no update(): the service told the index as it recorded
    assert [(h.key, h.status, h.model_hash) for h in hits] == [("s:1", "done", "abcdef0123")]

    class Broken(ReviewIndex):
        def update_session(self, folder, live=None):
            raise OSError(28, "No space left on device")

    broken = Studio(session, ModelLibrary(use_hf_cache=False), index=Broken(root),
                    engine_factory=lambda listener: engines.append(ScriptedEngine(listener)) or engines[-1])
    broken.submit(Recipe(prompt="a green circle", seed=4))
    broken.wait_idle()
    assert session.get(2).status == "done"
    fresh = ReviewIndex(root)
    fresh.update()  # the next update catches up from the file
    assert [h.key for h in fresh.search("green")] == ["s:2"]


def test_studio_export_copies_images_with_their_metadata_and_a_manifest(root, tmp_path):
    import tomllib

    from PIL import Image

    from studio.formats.png import read_recipe, save_png

    session = SessionStore(root).open("2026-11-01-a")
    for entry in session.entries():
        save_png(Image.new("RGB", (16, 16), "red"), session.path / entry.images[0], entry.recipe)
    dest = tmp_path / "picked"
    done = run_cli("export", "lora:inkwash", str(dest), "--sheet", "--session", "picks", root=root)
    assert done.returncode == 0, done.stderr
    assert "not copied" in done.stderr  # session b's owl has no image on disk: said, not fatal
    copied = dest / "2026-11-01-a-0001.png"
    assert copied.read_bytes() == (session.path / "0001.png").read_bytes()
    assert read_recipe(copied).seed == 7  # the metadata travelled with it
    manifest = tomllib.loads((dest / "manifest.toml").read_text())
    assert [(i["file"], i["rating"], i["recipe"]["seed"]) for i in manifest["image"]] == [("2026-11-01-a-0001.png", 5, 7)]
    recorded = Path(done.stdout.splitlines()[-1])  # the sheet, recorded in the session named, is the last line
    assert recorded.parent == root / "picks" and recorded.read_bytes() == (dest / "contact-sheet.png").read_bytes()
    with Image.open(dest / "contact-sheet.png") as sheet:
        # session b's owl is on it, drawn as missing: the sheet names what the query found
        assert json.loads(sheet.text["studio-contact-sheet"])["entries"] == ["2026-11-02-b:1", "2026-11-01-a:1"]
    again = run_cli("export", "fox", str(dest), root=root)
    assert again.returncode == 1 and "not an empty folder" in again.stderr and again.stderr.count("\n") == 1


def test_thumbnails_are_made_once_per_image_version(tmp_path):
    from PIL import Image

    from studio.review.thumbs import thumbnail

    image = tmp_path / "big.png"
    Image.new("RGB", (640, 320), "blue").save(image)
    first = thumbnail(image)
    assert first is not None and first.is_relative_to(Path(os.environ["STUDIO_CACHE_DIR"]))
    with Image.open(first) as small:
        assert small.size == (128, 64)
    assert thumbnail(image) == first  # cached
    Image.new("RGB", (100, 100), "red").save(image)
    os.utime(image, ns=(1, 10**18))
    assert thumbnail(image) != first
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert thumbnail(tmp_path / "bad.png") is None and thumbnail(tmp_path / "none.png") is None


def test_rename_and_archive_keep_folder_record_and_index_in_step(root):
    from studio.review.sessions import archive_session, rename_session
    from studio.store.session import SessionError

    index = ReviewIndex(root)
    index.update()
    before = (root / "2026-11-01-a" / "session.toml").read_bytes()
    moved = rename_session(root, "2026-11-01", "foxes")
    assert (moved / "session.toml").read_bytes() == before and SessionStore(root).open("foxes").get(1).rating == 5
    index.update()
    assert keys(index, '"red fox"') == ["foxes:1"]
    archive_session(root, "foxes")
    index.update()
    assert keys(index, "fox") == ["2026-11-02-b:1"] and [s.name for s in SessionStore(root).list()] == ["2026-11-02-b"]
    assert (root / "archive" / "foxes" / "session.toml").read_bytes() == before
    with pytest.raises(SessionError, match="bad session name"):
        rename_session(root, "2026-11-02-b", "../escape")
    running = SessionStore(root).open("2026-11-02-b")
    running.queue(Recipe(prompt="still going"))  # queued by this live process
    with pytest.raises(SessionError, match="has a job running"):
        rename_session(root, "2026-11-02-b", "later")

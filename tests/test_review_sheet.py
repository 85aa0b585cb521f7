"""Contact sheets (issue 16): a captioned grid of what a query finds, recorded as an entry of its own."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from studio.formats.png import save_png
from studio.recipe import Recipe
from studio.review.index import ReviewIndex
from studio.review.sheet import SHEET_KEY, SheetError, record_sheet
from studio.store.records import check_event
from studio.store.session import Session, SessionStore
from tests.test_review import finish, run_cli


@pytest.fixture
def root(tmp_path):
    """Two sessions of finished entries with real PNGs (their recipes inside)."""
    store = SessionStore(tmp_path / "sessions")
    for name, prompts in (("a", ["a red fox", "a blue fox"]), ("b", ["an owl", "a fox at night"])):
        session = store.create(name)
        for seed, prompt in enumerate(prompts, start=1):
            entry_id = finish(session, Recipe(prompt=prompt, seed=seed))
            entry = session.get(entry_id)
            save_png(Image.new("RGB", (32, 32), (40 * seed, 90, 160)), session.image_path(entry.images[0]), entry.recipe)
    return tmp_path / "sessions"


def indexed(root):
    index = ReviewIndex(root)
    index.update()
    return index


def test_a_sheet_is_an_entry_that_names_its_query_and_entries(root):
    hits = indexed(root).search("fox")
    assert [h.key for h in hits] == ["b:2", "a:2", "a:1"]
    session = SessionStore(root).open("a")
    entry, path = record_sheet(session, hits, "fox", columns=2)
    assert entry.status == "done" and entry.images == (path.name,) and path.parent == session.path
    assert entry.sheet == {"query": "fox", "entries": ["b:2", "a:2", "a:1"]}
    # the record, read again from the file, says the same
    assert Session(session.path, read_only=True).get(entry.id).sheet == entry.sheet
    with Image.open(path) as sheet:
        assert sheet.size == (2 * 192, 2 * (192 + 28))  # three images, two a row
        assert json.loads(sheet.text[SHEET_KEY]) == entry.sheet
        parameters = sheet.text["parameters"]  # what A1111's PNG Info shows
        assert parameters.splitlines() == [
            "contact sheet of 3 AI-generated images, composed by studio", "Query: fox", "Entries: b:2, a:2, a:1"]
        assert "digitalsourcetype/compositeSynthetic" in sheet.text["XML:com.adobe.xmp"]
        assert sheet.getpixel((96, 96)) == (80, 90, 160)  # b:2's own picture, first cell


def test_a_sheet_never_shows_another_sheet(root):
    session = SessionStore(root).open("b")
    first, _ = record_sheet(session, indexed(root).search("fox"), "fox")
    again = indexed(root).search("")  # every entry, the first sheet among them
    assert f"b:{first.id}" in [h.key for h in again]
    second, _ = record_sheet(session, again, "")
    assert f"b:{first.id}" not in second.sheet["entries"] and len(second.sheet["entries"]) == 4


def test_nothing_to_draw_is_one_line_and_records_nothing(root):
    session = SessionStore(root).open("a")
    before = len(session.entries())
    with pytest.raises(SheetError, match="nothing to draw"):
        record_sheet(session, indexed(root).search("lighthouse"), "lighthouse")
    assert len(session.entries()) == before


@pytest.mark.parametrize("tag, problem", [
    ({"query": "fox", "entries": ["a:1"], "extra": 1}, "unknown field 'extra'"),
    ({"entries": ["a:1"]}, "needs its query"),
    ({"query": "fox", "entries": ["a-1"]}, "SESSION:ID"),
    ({"query": "fox", "entries": [":1"]}, "SESSION:ID"),
    ({"query": "fox", "entries": "a:1"}, "SESSION:ID"),
])
def test_a_malformed_sheet_tag_is_refused(tag, problem):
    record = {"kind": "queued", "id": 1, "time": "2026-11-01T00:00:00+00:00", "recipe": {"prompt": "x"}, "sheet": tag}
    assert problem in check_event(record)


def test_a_sheet_left_unfinished_by_a_crash_is_never_run(root, monkeypatch):
    import studio.store.session as store_module
    from studio.models.library import ModelLibrary
    from studio.service import Studio

    session = SessionStore(root).open("a")
    monkeypatch.setattr(store_module, "_OWNER", "another-host:1")  # queued by a process that is gone
    left = session.queue(Recipe(prompt="contact sheet of 1 AI-generated image"), sheet={"query": "", "entries": ["a:1"]})
    monkeypatch.undo()
    ran = []
    studio = Studio(session, ModelLibrary(use_hf_cache=False), engine_factory=lambda listener: ran.append(1))
    assert [e.id for e in session.unfinished()] == [left.id]
    assert studio.resume(session.unfinished()) == [] and ran == []


def test_studio_sheet_prints_the_recorded_sheet_last(root):
    done = run_cli("sheet", "fox", "--session", "picks", "--columns", "3", root=root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    path = root / "picks" / "0001-sheet.png"
    assert lines == ["picks:1  contact sheet of 3 entries", str(path)]
    entry = SessionStore(root).open("picks", read_only=True).get(1)
    assert entry.sheet == {"query": "fox", "entries": ["b:2", "a:2", "a:1"]}

    empty = run_cli("sheet", "lighthouse", "--session", "picks", root=root)
    assert empty.returncode == 1 and "nothing to draw" in empty.stderr and empty.stderr.count("\n") == 1
    bad = run_cli("sheet", "fox", "--limit", "0", root=root)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    unknown = run_cli("sheet", "colour:red", root=root)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1

"""The session store: records, folding, torn tails, corrupt files, two writers."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from studio.recipe import LoraRef, Recipe
from studio.store.session import FILE_NAME, SessionError, SessionStore
from studio.store.tomlio import dump_table, fast_parse

RECIPE = Recipe(prompt='a "quoted" lighthouse\nat dusk, 50% = fog', negative_prompt="blur", seed=7)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def test_record_lifecycle_folds_and_survives_reopen(store):
    session = store.create("one")
    entry = session.queue(RECIPE)
    assert (entry.id, entry.status, entry.recipe) == (1, "queued", RECIPE)
    session.start(entry.id)
    used = RECIPE.replace(device="cpu", dtype="float32", model_hash="abcdef0123")
    session.finish(entry.id, used, ["0001.png"], 2.5)
    session.mark(entry.id, favourite=True, rating=4, note="keep, this one")
    second = session.queue(RECIPE.replace(seed=8))
    session.fail(second.id, "out of memory")
    third = session.queue(RECIPE.replace(seed=9))
    session.cancel(third.id, "user")
    session.delete(third.id)

    again = store.open("one")
    assert again.entries() == session.entries()
    first = again.get(1)
    assert first.status == "done" and first.images == ("0001.png",)
    assert first.recipe == used and first.device == "cpu" and first.duration == 2.5
    assert first.model_hash == "abcdef0123"
    assert (first.favourite, first.rating, first.note) == (True, 4, "keep, this one")
    assert again.get(2).status == "failed" and again.get(2).reason == "out of memory"
    assert [e.id for e in again.entries()] == [1, 2]  # 3 is deleted
    again.restore(3)
    assert [e.id for e in store.open("one").entries()] == [1, 2, 3]
    assert again.warnings == []


def test_a_new_session_is_not_read_back_and_takes_records_as_a_read_one_does(store, monkeypatch):
    """create() knows what it wrote (the header, no entries): the file is not read back, nor a
    snapshot looked for, so a new window paints sooner; the next append and a reopen see it all."""
    from studio.store import journal

    def no_read(self, fd):
        raise AssertionError("a new session's file was read back")

    monkeypatch.setattr(journal.Journal, "read_all", no_read)
    session = store.create("fresh")
    assert session.loaded and session.entries() == [] and not session.warnings
    monkeypatch.undo()
    entry = session.queue(Recipe(prompt="first", seed=3))
    other = store.open("fresh")  # another reader of the same file
    assert [e.id for e in other.entries()] == [entry.id] == [1]
    assert other.entries()[0].recipe.prompt == "first"
    assert session.queue(Recipe(prompt="second")).id == 2 and other.queue(Recipe(prompt="third")).id == 3
    assert [e.recipe.prompt for e in store.open("fresh").entries()] == ["first", "second", "third"]


def test_file_is_plain_toml_with_a_schema(store):
    session = store.create("toml")
    entry = session.queue(RECIPE.replace(loras=(LoraRef("detail", 0.5, "1234abcd"),)))
    session.finish(entry.id, entry.recipe.replace(device="cpu"), ["0001.png"], 1.0)
    data = tomllib.loads((session.path / FILE_NAME).read_text())
    assert data["schema"] == 1
    assert [e["kind"] for e in data["event"]] == ["queued", "done"]
    assert data["event"][0]["recipe"] == entry.recipe.to_dict()
    assert store.open("toml").get(1).recipe.loras == (LoraRef("detail", 0.5, "1234abcd"),)


def test_fast_reader_agrees_with_tomllib():
    event = {
        "id": 3, "kind": "queued", "time": "t", "n": -1.5e-7, "flag": False, "tags": ["a", "b"],
        "recipe": {**RECIPE.to_dict(), "prompt": "tab\there \\ back \x7f del \u2028 \U0001f600"},
    }
    event["recipe"]["loras"] = [{"name": "x", "weight": 1.0, "hash": ""}, {"name": "y", "weight": 2, "hash": "h"}]
    text = "\n".join(dump_table("event", event, array=True)) + "\n# end 3\n"
    assert tomllib.loads(text)["event"][0] == event
    assert fast_parse(text.split("\n", 1)[1], "event") == event


@pytest.mark.parametrize(
    "body",
    ['id = 1 # a comment\n', "id = 'literal'\n", 'a = "x" "y"\n', 'a = 1\na = 2\n', 'a = "\\/"\n',
     'a = 1,"b":2\n', 'a = {x = 1}\n', '"quoted key" = 1\n'],
)
def test_fast_reader_defers_anything_unusual(body):
    assert fast_parse(body, "event") is None


def test_append_does_not_rewrite_earlier_bytes(store):
    session = store.create("append")
    session.queue(RECIPE)
    before = session.file.read_bytes()
    inode = session.file.stat().st_ino
    session.mark(1, rating=3)
    after = session.file.read_bytes()
    assert after.startswith(before) and session.file.stat().st_ino == inode


def _cut(session, keep_bytes: int) -> bytes:
    data = session.file.read_bytes()
    session.file.write_bytes(data[:keep_bytes])
    return data[keep_bytes:]


def test_torn_last_record_is_reported_set_aside_and_never_lost(store):
    session = store.create("torn")
    for seed in range(3):
        session.queue(RECIPE.replace(seed=seed))
    whole = session.file.read_bytes()
    last_start = whole.rindex(b"\n[[event]]\n")
    for keep in (last_start + 2, last_start + 5, last_start + 60, len(whole) - 3, len(whole) - 1):
        session.file.write_bytes(whole[:keep])
        torn = whole[:keep]
        reopened = store.open("torn")
        assert [e.id for e in reopened.entries()] == [1, 2]
        assert any("incomplete" in w for w in reopened.warnings)
        assert session.file.read_bytes() == torn  # loading never writes
        # The next append sets the torn bytes aside, then the file is whole TOML again.
        entry = reopened.queue(RECIPE.replace(seed=99))
        assert entry.id == 3
        data = tomllib.loads(session.file.read_text())
        assert [e["id"] for e in data["event"]] == [1, 2, 3]
        asides = sorted(session.path.glob(f"{FILE_NAME}.torn-*"))
        aside = asides[-1].read_bytes()
        assert len(asides) == 1 and aside.strip() and torn.endswith(aside)
        assert session.file.read_bytes().startswith(torn[: len(torn) - len(aside)])
        assert len(torn) - len(aside) in (last_start, last_start + 1)
        for aside in asides:
            aside.unlink()
        assert store.open("torn").warnings == []


def test_torn_record_keeps_a_complete_record_before_it(store):
    session = store.create("torn2")
    session.queue(RECIPE)
    data = session.file.read_bytes()
    session.file.write_bytes(data + b"\n[[ev")  # a cut inside the next record's header
    reopened = store.open("torn2")
    assert [e.id for e in reopened.entries()] == [1]
    assert reopened.warnings
    reopened.mark(1, note="after the tear")
    assert tomllib.loads(session.file.read_text())["event"][-1]["note"] == "after the tear"


def test_torn_header_only_file(store):
    session = store.create("fresh")
    session.file.write_bytes(session.file.read_bytes() + b"\n[[event]]\nid = 1\nki")
    reopened = store.open("fresh")
    assert reopened.entries() == [] and reopened.warnings
    reopened.queue(RECIPE)
    assert store.open("fresh").warnings == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("steps = 20", "steps = twenty", 1), "toml:19: Invalid value"),
        (lambda t: t.replace("steps = 20", "steps = 0", 1), "steps must be between"),
        (lambda t: t.replace('kind = "mark"', 'kind = "nope"', 1), "field 'kind'"),
        (lambda t: t.replace("rating = 3", "rating = 9", 1), "field 'rating' must be 0–5"),
        (lambda t: t.replace("rating = 3", "ratng = 3", 1), "unknown field 'ratng'"),
        (lambda t: t.replace("schema = 1", "schema = 7", 1), "newer studio"),
        (lambda t: t.replace("id = 1", "id = 5", 1), "never queued"),
    ],
)
def test_corrupt_file_gives_one_line_error_and_is_untouched(store, edit, expected):
    session = store.create("bad")
    session.queue(RECIPE)
    session.mark(1, rating=3)
    text = edit(session.file.read_text())
    session.file.write_text(text)
    with pytest.raises(SessionError) as info:
        store.open("bad")
    message = str(info.value)
    assert "\n" not in message and expected in message and str(session.file) in message
    # A read-only view carries on with what it can read.
    view = store.open("bad", read_only=True)
    assert view.read_only and view.warnings
    with pytest.raises(SessionError, match="read-only"):
        view.mark(1, rating=1)
    assert session.file.read_text() == text
    assert store.list()[0].warning


def test_hand_edit_in_plain_toml_is_read(store):
    session = store.create("hand")
    session.queue(RECIPE)
    text = session.file.read_text().replace("steps = 20", "steps = 25  # more steps")
    text += "\n[[event]]\nid = 1\nkind = 'mark'\ntime = 2026-01-01T00:00:00Z\nnote = '''a note'''\n# end 1\n"
    session.file.write_text(text)
    entry = store.open("hand").get(1)
    assert entry.recipe.steps == 25 and entry.note == "a note"


def test_unfinished_entries_from_a_dead_process(store):
    session = store.create("resume")
    mine = session.queue(RECIPE)
    assert session.unfinished() == []  # our own jobs are still running here
    text = session.file.read_text().replace(f":{os.getpid()}\"", ':999999999"')
    session.file.write_text(text)
    reopened = store.open("resume")
    assert [e.id for e in reopened.unfinished()] == [mine.id]
    reopened.finish(mine.id, RECIPE, ["0001.png"], 1.0)
    assert reopened.unfinished() == []


def test_two_sessions_on_one_file_never_collide(store):
    first = store.create("shared")
    second = store.open("shared")
    a = first.queue(RECIPE)
    b = second.queue(RECIPE.replace(seed=1))  # sees a's record before choosing an id
    assert (a.id, b.id) == (1, 2)
    first.mark(b.id, rating=5)
    second.refresh()
    assert second.get(b.id).rating == 5


_WRITER = """
import sys
from pathlib import Path
from studio.recipe import Recipe
from studio.store.session import Session
session = Session(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    session.queue(Recipe(prompt=f"{sys.argv[3]} {i}"))
"""


def test_two_processes_append_concurrently(store, tmp_path):
    session = store.create("race")
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(session.path), "60", tag],
                         cwd=Path(__file__).resolve().parent.parent)
        for tag in ("left", "right")
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    entries = store.open("race").entries()
    assert [e.id for e in entries] == list(range(1, 121))
    prompts = {e.recipe.prompt for e in entries}
    assert prompts == {f"{tag} {i}" for tag in ("left", "right") for i in range(60)}
    assert len(tomllib.loads(session.file.read_text())["event"]) == 120


def test_store_names_list_and_prefix(store):
    assert store.list() == []
    one = store.create("2026-11-25-alpha")
    one.queue(RECIPE)
    store.create("2026-11-26-beta")
    auto = store.create()
    assert auto.name[:4].isdigit()
    summaries = {s.name: s for s in store.list()}
    assert summaries["2026-11-25-alpha"].entries == 1 and summaries["2026-11-25-alpha"].first
    assert store.open("2026-11-25-al").name == "2026-11-25-alpha"
    assert store.open(str(one.path)).name == one.name
    with pytest.raises(SessionError, match="several"):
        store.open("2026-11-2")
    with pytest.raises(SessionError, match="already exists"):
        store.create("2026-11-26-beta")
    with pytest.raises(SessionError, match="bad session name"):
        store.create("../escape")
    with pytest.raises(SessionError, match="no session"):
        store.open("missing")
    with pytest.raises(SessionError, match="no entry"):
        one.get(42)


def test_whole_file_reader_agrees_with_record_by_record(store):
    from studio.store.journal import SEP as _SEP
    from studio.store.tomlio import fast_parse_records

    session = store.create("agree")
    for i in range(4):
        entry = session.queue(RECIPE.replace(prompt=f"p{i}", seed=i, loras=(LoraRef("a", 0.5, "h"),) * (i % 3)))
        session.finish(entry.id, entry.recipe.replace(device="cpu"), [f"{entry.stem}.png"], 0.25)
        session.mark(entry.id, note='says "hi"\tthere', rating=i)
    pieces = session.file.read_bytes().split(_SEP)[1:]
    one_by_one = [tomllib.loads("[[event]]\n" + p.decode())["event"][0] for p in pieces]
    assert fast_parse_records(_SEP.join(pieces).decode()) == one_by_one
    # A " = " inside a value makes the whole-file reader step aside, not misread.
    session.mark(1, note="x = 1")
    pieces = session.file.read_bytes().split(_SEP)[1:]
    assert fast_parse_records(_SEP.join(pieces).decode()) is None
    assert store.open("agree").get(1).note == "x = 1"

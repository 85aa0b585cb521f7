"""Reading big sessions: the recipe memo, chunked parsing, deferred loads and the tail preview."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

import studio.store.journal as journal
from studio.recipe import MAX_PROMPT_CHARS, MAX_SEED, Recipe, RecipeError
from studio.store.entries import VARYING, RecipeMemo
from studio.store.session import FILE_NAME, Session, SessionError, SessionStore, record_bytes


def outcome(build, data):
    """(the recipe's fields with their types) or ("error", message)."""
    try:
        recipe = build(dict(data))
    except (RecipeError, TypeError) as exc:
        return ("error", str(exc))
    return tuple((f.name, type(v).__name__, v) for f in dataclasses.fields(Recipe) for v in [getattr(recipe, f.name)])


BASES = [
    Recipe(prompt="a fox").to_dict(),
    Recipe(prompt="a fox", cfg_scale=6.5, steps=30, sampler="Euler").to_dict(),
    {**Recipe(prompt="a fox").to_dict(), "loras": [{"name": "ink", "weight": 0.8, "hash": ""}]},
    {**Recipe(prompt="a fox").to_dict(), "embeddings": ["bad-hands"], "embedding_hashes": ["ab"]},
    {"prompt": "a fox"},  # the writer always writes every field; a hand edit need not
]
# Values for the varying fields, good and bad, as a hostile file may hold them.
PROMPTS = ["a fox", "", 'quotes " and \\ and \n and \x1b[31m and é ☃', "x" * MAX_PROMPT_CHARS,
           "x" * (MAX_PROMPT_CHARS + 1), 7, None, True, ["a"]]
SEEDS = [0, 5, MAX_SEED - 1024, MAX_SEED - 1023, -1, True, 1.0, "5", None]
# Other fields changed under a cached shape: the same values under another type must not pass.
OTHERS = [{}, {"steps": True}, {"steps": 20.0}, {"cfg_scale": 7}, {"cfg_scale": True}, {"width": 513},
          {"sampler": "nope"}, {"loras": [{"name": "ink", "weight": True, "hash": ""}]},
          {"loras": [{"name": "ink", "weight": 1, "hash": ""}]}, {"unknown": 1}]


@pytest.mark.parametrize("base", BASES)
def test_the_memo_builds_what_from_dict_builds_and_fails_as_it_fails(base):
    memo = RecipeMemo()
    memo.build(dict(base))  # the shape is cached from here on
    for prompt, seed, negative, other in itertools.product(PROMPTS, SEEDS, ["", "blurry", 3], OTHERS):
        data = {**base, **other, "prompt": prompt, "seed": seed, "negative_prompt": negative}
        data = {k: v for k, v in data.items() if v is not None}
        assert outcome(memo.build, data) == outcome(Recipe.from_dict, data), data


def test_no_rule_of_recipe_ties_the_varying_fields_to_another():
    # The memo checks prompt, negative prompt and seed on their own: a recipe that is
    # valid with one set of them is valid with any other set valid on its own.
    for other in OTHERS[:7]:
        base = {**Recipe(prompt="p").to_dict(), **other}
        valid = outcome(Recipe.from_dict, base)[0] != "error"
        for prompt, seed in itertools.product(PROMPTS[:4], SEEDS[:3]):
            data = {**base, "prompt": prompt, "seed": seed}
            assert (outcome(Recipe.from_dict, data)[0] != "error") == valid, (other, prompt, seed)
    assert set(VARYING) <= {f.name for f in dataclasses.fields(Recipe)}


def test_entries_share_their_recipe_values_and_snapshots(tmp_path):
    session = SessionStore(tmp_path).create("s")
    for seed in range(5):
        session.queue(Recipe(prompt="a lighthouse " + "at dusk", seed=seed))
    again = Session(session.path)
    first, *rest = again.entries()
    assert [e.recipe.seed for e in again.entries()] == [0, 1, 2, 3, 4]
    assert all(e.recipe.prompt is first.recipe.prompt for e in rest)
    assert again.entries()[0] is first  # made once per change
    again.mark(first.id, rating=3)
    assert again.entries()[0] is not first and again.entries()[0].rating == 3


def test_a_list_of_entries_is_made_as_it_is_read_and_keeps_them_as_they_were(tmp_path, monkeypatch):
    import studio.store.entries as entries

    session = SessionStore(tmp_path).create("s")
    for seed in range(6):
        session.queue(Recipe(prompt="p", seed=seed))
    again = Session(session.path)
    made = []
    snapshot = entries.State.snapshot
    monkeypatch.setattr(entries.State, "snapshot", lambda self: made.append(1) or snapshot(self))
    before = again.entries()
    assert len(before) == 6 and made == []  # nothing made until read
    assert before[-1].recipe.seed == 5 and len(made) == 1
    again.mark(1, rating=4)
    again.delete(2)
    again.queue(Recipe(prompt="later"))
    assert before[0].rating == 0 and [e.id for e in before] == [1, 2, 3, 4, 5, 6]  # as when asked for
    now = again.entries()
    assert now[0].rating == 4 and [e.id for e in now] == [1, 3, 4, 5, 6, 7]
    assert now == list(now) and now[1:3] == [now[1], now[2]] and list(reversed(now))[0].id == 7
    assert now != before and again.entries(include_deleted=True)[1].deleted
    assert again.get(1).rating == 4 and Session(session.path).entries() == now


def _mixed_session(tmp_path, count=12):
    """A session with hostile strings, a hand-edited record (tomllib's path) and marks."""
    session = SessionStore(tmp_path).create("mixed")
    for i in range(count):
        entry = session.queue(Recipe(prompt=f'#{i} "quoted" \\ back \t tab é ☃ \x7f', seed=i))
        session.finish(entry.id, entry.recipe.replace(device="cpu"), [f"{entry.stem}.png"], 1.0)
    with open(session.file, "a", encoding="utf-8") as handle:
        handle.write("\n[[event]]\nid = 3 # a hand edit\nkind = 'mark'\ntime = \"2026-01-01T00:00:00Z\"\nnote = '''two\nlines'''\n# end 3\n")
    session = Session(session.path)
    session.mark(5, favourite=True)
    session.delete(7)
    return session


def test_parsing_a_stretch_at_a_time_reads_what_parsing_at_once_reads(tmp_path, monkeypatch):
    whole = _mixed_session(tmp_path)
    expected = whole.entries(include_deleted=True)
    assert whole.get(3).note == "two\nlines" and whole.get(5).favourite and whole.get(7).deleted
    for chunk in (1, 2, 5, 10_000):
        monkeypatch.setattr(journal, "CHUNK", chunk)
        assert Session(whole.path).entries(include_deleted=True) == expected


def test_a_bad_record_deep_in_a_big_file_is_still_reported_first(tmp_path, monkeypatch):
    session = _mixed_session(tmp_path)
    with open(session.file, "ab") as handle:
        handle.write(record_bytes({"id": 99, "kind": "mark", "time": "2026-01-01T00:00:00Z", "rating": 9}))
        handle.write(record_bytes({"id": 1, "kind": "mark", "time": "2026-01-01T00:00:00Z", "rating": 2}))
    monkeypatch.setattr(journal, "CHUNK", 3)
    with pytest.raises(SessionError, match=r"rating.*0–5"):
        Session(session.path)
    read_only = Session(session.path, read_only=True)
    assert read_only.get(1).rating == 2 and len(read_only.warnings) == 1


def test_a_deferred_session_reads_nothing_until_loaded_and_a_write_reads_first(tmp_path):
    whole = _mixed_session(tmp_path)
    later = SessionStore(tmp_path).open("mixed", load=False)
    assert not later.loaded and later.entries() == []
    entry = later.queue(Recipe(prompt="after the rest"))
    assert later.loaded and entry.id == 13  # not 1: the write read the file first
    assert later.entries(include_deleted=True)[:-1] == Session(whole.path).entries(include_deleted=True)[:-1]
    deferred = Session(whole.path, load=False)
    deferred.load()
    assert deferred.get(13).recipe.prompt == "after the rest"


def test_the_newest_entries_are_read_from_the_end_as_the_whole_file_has_them(tmp_path):
    session = SessionStore(tmp_path).create("big")
    for i in range(300):
        entry = session.queue(Recipe(prompt=f"entry {i}", seed=i))
        session.finish(entry.id, entry.recipe, [f"{entry.stem}.png"], 1.0)
    session.mark(300, rating=4, note="the last")
    session.delete(299)
    size = session.file.stat().st_size
    newest, estimate = Session(session.path, load=False).newest(size // 10)
    assert 10 < len(newest) < 60
    full = {e.id: e for e in Session(session.path).entries()}
    assert newest == [full[e.id] for e in newest]  # marks and deletes included
    assert [e.id for e in newest][-2:] == [298, 300] and newest[-1].note == "the last"
    assert 200 < estimate < 400
    everything, count = Session(session.path, load=False).newest(size * 2)
    assert everything == list(full.values()) and count == 299


def test_the_preview_leaves_out_a_torn_tail_and_bad_records(tmp_path):
    session = SessionStore(tmp_path).create("torn")
    for i in range(5):
        session.queue(Recipe(prompt=f"entry {i}", seed=i))
    with open(session.file, "ab") as handle:
        handle.write(record_bytes({"id": 6, "kind": "queued", "time": "t", "recipe": {"prompt": "p", "steps": 0}}))
        handle.write(b"\n[[event]]\nid = 7\nkind = \"queued\"\n")  # torn
    newest, _ = Session(session.path, load=False).newest()
    assert [e.id for e in newest] == [1, 2, 3, 4, 5]
    assert not (session.path / FILE_NAME).with_suffix(".toml.torn").exists()


# -- the snapshot of a big session's fold (studio/store/snapshot.py) ----------------


@pytest.fixture
def snapshots(monkeypatch):
    import studio.store.snapshot as snapshot

    monkeypatch.setattr(snapshot, "MIN_ENTRIES", 3)
    return snapshot


def _reads(monkeypatch, snapshot):
    """Count the whole-file reads from here on."""
    calls = []
    read_all = journal.Journal.read_all
    monkeypatch.setattr(journal.Journal, "read_all", lambda self, fd: calls.append(1) or read_all(self, fd))
    return calls


def test_a_snapshot_reopens_the_same_entries_without_reading_the_file(tmp_path, snapshots, monkeypatch):
    session = _mixed_session(tmp_path)
    expected = session.entries(include_deleted=True)
    assert session.save_snapshot() and snapshots.snapshot_path(session.file).is_file()
    reads = _reads(monkeypatch, snapshots)
    again = Session(session.path)
    assert again.entries(include_deleted=True) == expected and reads == []
    assert again.entries()[0].recipe.prompt == expected[0].recipe.prompt
    # Appends made since (by this process or another) are read as a catch-up.
    other = Session(session.path, load=False)
    other.queue(Recipe(prompt="later"))
    other.mark(1, note="noted later")
    third = Session(session.path)
    assert reads == [1]  # `other` read the file; `third` started from the snapshot
    assert third.get(13).recipe.prompt == "later" and third.get(1).note == "noted later"
    assert third.queue(Recipe(prompt="next")).id == 14


def test_a_snapshot_that_no_longer_describes_the_file_is_not_used(tmp_path, snapshots, monkeypatch):
    session = _mixed_session(tmp_path)
    session.save_snapshot()
    text = session.file.read_text(encoding="utf-8")
    session.file.write_text(text.replace('"#4 ', '"#4 edited ', 1), encoding="utf-8")  # a hand edit, same tail
    reads = _reads(monkeypatch, snapshots)
    assert Session(session.path).get(5).recipe.prompt.startswith("#4 edited") and reads == [1]


def _set(name, index, value):
    """Damage one entry's value in a snapshot's column, however the column is stored."""
    def damage(doc):
        column = doc["columns"][name]
        if isinstance(column, dict):  # {"all": v} or {"pick": [...], "at": [...]}: spelled out
            column = [column["all"]] * doc["count"] if "all" in column else [column["pick"][i] for i in column["at"]]
        column[index] = value
        doc["columns"][name] = column
    return damage


def _grow(doc):
    """An id twice: every column one longer, its last entry a copy of the first."""
    for column in doc["columns"].values():
        if isinstance(column, dict) and "all" in column:
            continue
        if isinstance(column, dict):
            column["at"].append(column["at"][0])
        else:
            column.append(column[0])
    doc["count"] += 1


@pytest.mark.parametrize("damage", [
    lambda doc: doc.update(format=99),
    _set("id", 0, True),
    _set("favourite", 1, "yes"),
    _set("seed", 2, -5),
    _set("prompt", 2, "x" * (MAX_PROMPT_CHARS + 1)),
    _set("rating", 3, 6),
    _set("status", 3, "lost"),
    _set("images", 4, [3]),
    _set("sweep", 4, {"id": "s"}),  # a sweep tag without its shape
    lambda doc: doc["recipes"][0].update(steps=0),
    _set("shape", 3, 7),  # no such recipe shape
    _set("line", 3, "7"),
    lambda doc: doc["columns"]["time"].update(at=[0, 99]) if "at" in doc["columns"]["time"] else doc["columns"]["time"].pop(),
    _grow,
    lambda doc: doc["columns"].pop("note"),
    lambda doc: doc["columns"].update(device={"all": ["cpu"]}),
    lambda doc: doc.update(studio_version="0.0.0"),
])
def test_a_damaged_or_odd_snapshot_is_ignored_and_the_file_read(tmp_path, snapshots, monkeypatch, damage):
    import json

    session = _mixed_session(tmp_path)
    expected = session.entries(include_deleted=True)
    session.save_snapshot()
    path = snapshots.snapshot_path(session.file)
    document = json.loads(path.read_text(encoding="utf-8"))
    damage(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    reads = _reads(monkeypatch, snapshots)
    assert Session(session.path).entries(include_deleted=True) == expected and reads == [1]
    path.write_text("{not json", encoding="utf-8")
    assert Session(session.path).entries(include_deleted=True) == expected and reads == [1, 1]


def test_small_sessions_and_sessions_with_warnings_keep_no_snapshot(tmp_path, snapshots, monkeypatch):
    small = SessionStore(tmp_path).create("small")
    small.queue(Recipe(prompt="one"))
    assert not small.save_snapshot()
    session = _mixed_session(tmp_path)
    with open(session.file, "ab") as handle:
        handle.write(b"\n[[event]]\nid = 99\n")  # torn
    assert not Session(session.path).save_snapshot()

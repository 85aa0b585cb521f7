"""The snapshot's compact columns (studio/store/snapshot.py), read when a big session is reopened.

A column of at least `snapshot._LONG` entries may be kept as runs of whole
numbers, as values repeated in turn, or (the images) as one flat list of names;
the tests that damage a snapshot a column at a time (tests/test_store_entries.py)
see only the forms short columns take. Here `_LONG` is lowered so that a small
session is kept in the long forms: each reads back the entries the file holds
(compared by repr, so 1 and 1.0, 0.0 and -0.0 tell apart), and each kind of
damage to one is refused, the file read instead.
"""

from __future__ import annotations

import json
import os
import random
import sys

import pytest

from studio.recipe import MAX_SEED, Recipe
from studio.store import journal, snapshot
from studio.store.session import Session, SessionStore, record_bytes

WHEN = "2026-01-01T00:00:00.000Z"
LONG_PROMPT = "a lighthouse on a cliff at dusk, oil painting, " * 4
COUNT = 60


def _records() -> list[dict]:
    """60 entries whose columns take every long form: ids and seeds in two runs each, statuses and
    notes in turn, two long prompts picked, two images, one or none, durations only repr tells apart."""
    base = Recipe(prompt="p")
    out = []
    for i in range(COUNT):
        entry_id = i + 1 if i < 30 else i + 101  # a gap: two runs
        recipe = base.replace(prompt=LONG_PROMPT if i % 3 else LONG_PROMPT + "!", seed=i * 3 if i < 30 else 7,
                              batch_size=2 if i % 4 == 0 else 1)
        out.append({"id": entry_id, "kind": "queued", "time": WHEN if i < 25 else f"2026-01-02T00:00:{i:02d}.000Z",
                    "recipe": recipe.to_dict(), "owner": "host:1"})
        if i >= 54:
            continue  # queued still
        if i >= 48:
            out.append({"id": entry_id, "kind": "failed", "time": WHEN, "reason": "out of memory"})
            continue
        stem = f"{entry_id:04d}"
        images = [f"{stem}-0.png", f"{stem}-1.png"] if recipe.batch_size == 2 else [f"{stem}.png"]
        duration = (1.5, 1, 0.0, -0.0)[i % 4]
        out.append({"id": entry_id, "kind": "done", "time": WHEN, "images": images, "duration": duration,
                    "device": "cpu", "recipe": {"device": "cpu", "dtype": "float32"}})
        if i % 10 == 0:
            out.append({"id": entry_id, "kind": "mark", "time": WHEN, "rating": 4})
        if i in (33, 44):
            out.append({"id": entry_id, "kind": "mark", "time": WHEN, "note": "noted"})
    return out


def _write(tmp_path, records: list[dict]) -> Session:
    session = SessionStore(tmp_path).create("long")
    with open(session.file, "ab") as handle:
        handle.write(b"".join(map(record_bytes, records)))
    return Session(session.path)


@pytest.fixture
def long_forms(monkeypatch):
    monkeypatch.setattr(snapshot, "MIN_ENTRIES", 3)
    monkeypatch.setattr(snapshot, "_LONG", 8)


def _reads(monkeypatch) -> list[int]:
    """Count the whole-file reads from here on."""
    calls: list[int] = []
    read_all = journal.Journal.read_all
    monkeypatch.setattr(journal.Journal, "read_all", lambda self, fd: calls.append(1) or read_all(self, fd))
    return calls


def _kept(session: Session) -> tuple[list[str], dict]:
    """The session's entries by repr, and the snapshot it keeps of them, as read from its file."""
    expected = [repr(e) for e in session.entries(include_deleted=True)]
    assert session.save_snapshot()
    return expected, json.loads(snapshot.snapshot_path(session.file).read_text(encoding="utf-8"))


def test_every_long_form_reads_back_the_entries_the_file_holds(tmp_path, long_forms, monkeypatch):
    expected, document = _kept(_write(tmp_path, _records()))
    columns = document["columns"]
    assert columns["id"] == {"runs": [1, 1, 30, 131, 1, 30]} and columns["seed"] == {"runs": [0, 3, 30, 7, 0, 30]}
    assert set(columns["status"]) == {"each", "times"} and set(columns["prompt"]) == {"pick", "at"}
    assert set(columns["images"]) == {"names", "counts"} and isinstance(columns["images"]["counts"], list)
    assert isinstance(columns["duration"], list)  # 0.0 and -0.0 are equal, but not the same value
    reads = _reads(monkeypatch)
    again = Session(tmp_path / "long")
    assert [repr(e) for e in again.entries(include_deleted=True)] == expected and reads == []
    assert again.get(1).images == ("0001-0.png", "0001-1.png") and again.get(160).images == ()
    # A field most entries have at Entry's default is held only by those that differ.
    assert set(columns["note"]) == {"each", "times"} and again.get(134).note == "noted"
    assert "note" not in again._states[2].values and again._states[134].values["note"] == "noted"


def _put(name, encoded):
    return lambda doc: doc["columns"].__setitem__(name, encoded)


def _huge(doc):
    """A trillion entries, every column one value or one stretch: consistent, but not what the file holds."""
    doc["count"] = 10**12
    for name, column in doc["columns"].items():
        if name != "images":
            first = column[0] if isinstance(column, list) else snapshot._column(column, snapshot._TYPES[name], COUNT)[0]
            doc["columns"][name] = {"all": first}
    doc["columns"]["id"] = {"runs": [1, 1, 10**12]}
    doc["columns"]["images"] = {"names": [], "counts": {"all": 0}}


NAMES = [f"{n:04d}.png" for n in range(1, COUNT + 2)]
N = COUNT
TAG = {"id": "s1", "at": [0, 0, 0], "shape": [2, 1, 1], "axes": ["seed", "", ""], "labels": ["1", "", ""]}


@pytest.mark.parametrize("damage", [
    _put("id", {"runs": [1, 1, 30, 30, 1, 30]}),  # 30 twice
    _put("id", {"runs": [1, 0, 2, 3, 1, N - 2]}),  # 1 twice
    _put("id", {"runs": [N, -1, N]}),  # going down
    _put("id", {"runs": [1, 1, 30, 131, 1, 29]}),  # one short
    _put("id", {"runs": [1, 1, 10**12]}),  # more than it holds (refused before anything is made)
    _huge,
    _put("id", {"runs": [1, 1, 30, 500, 1, 0, 131, 1, 30]}),  # a stretch of none
    _put("id", {"runs": [1, 1]}),
    _put("id", {"runs": [1, True, N]}),
    _put("line", {"runs": [8, 1.5, N]}),
    _put("seed", {"runs": [-3, 1, N]}),
    _put("seed", {"runs": [MAX_SEED, 1, N]}),
    _put("note", {"runs": [1, 1, N]}),  # a column of text as numbers
    _put("status", {"each": ["done", "lost"], "times": [30, N - 30]}),
    _put("status", {"each": ["done"], "times": [N - 1]}),
    _put("status", {"each": ["done", "failed", "done"], "times": [N, 0, 0]}),
    _put("status", {"each": ["done", "failed"], "times": [N]}),
    _put("status", {"each": "done", "times": [N]}),
    _put("favourite", {"each": [1], "times": [N]}),
    _put("rating", {"each": [4, 9], "times": [30, N - 30]}),
    _put("sweep", {"each": [TAG], "times": [N]}),  # a well-formed tag, but one dict for every entry
    _put("images", {"names": NAMES[: N - 1] + [3], "counts": {"all": 1}}),
    _put("images", {"names": NAMES[:N], "counts": {"all": 2}}),
    _put("images", {"names": NAMES[:N], "counts": [2, -1] + [1] * (N - 2)}),
    _put("images", {"names": NAMES[: N + 1], "counts": [1] * N}),
    _put("images", {"names": "0001.png", "counts": {"all": 1}}),
    _put("images", {"names": NAMES[:N], "counts": {"pick": [1], "at": [0] * N}}),
    _put("prompt", {"pick": ["p", "q"], "at": {"runs": [0, 1, N]}}),  # an index past the end
    _put("prompt", {"pick": ["p"], "at": {"runs": [-1, 0, N]}}),
    _put("prompt", {"pick": ["p"], "at": {"pick": [0], "at": [0] * N}}),
    _put("prompt", {"pick": ["p"], "at": [0] * (N - 1)}),
])
def test_a_damaged_long_form_is_refused_and_the_file_read(tmp_path, long_forms, monkeypatch, damage):
    expected, document = _kept(_write(tmp_path, _records()))
    damage(document)
    path = snapshot.snapshot_path(tmp_path / "long" / "session.toml")
    path.write_text(json.dumps(document), encoding="utf-8")
    reads = _reads(monkeypatch)
    assert [repr(e) for e in Session(tmp_path / "long").entries(include_deleted=True)] == expected and reads == [1]


def _spelled(column: list, count: int) -> list[str]:
    return [repr(v) for v in (column * count if len(column) == 1 else column)]


def _random_column(seed: int) -> list:
    """Up to 60 values in stretches: whole numbers that go up by a step, or text, or scalars of every kind."""
    rng = random.Random(seed)
    pools = {
        "int": lambda: rng.choice([rng.randint(-3, 3), rng.randint(0, 10**20)]),
        "str": lambda: rng.choice(["", "a", "b", "é ☃", "a" * 80]),
        "mixed": lambda: rng.choice([0, 1, True, False, 1.0, 0.0, -0.0, None, "1"]),
    }
    kind = rng.choice(sorted(pools))
    values: list = []
    while len(values) < 60:
        value, step = pools[kind](), rng.choice([0, 0, 1, 84, -2])
        values += [value + k * step if kind == "int" else value for k in range(rng.randint(1, 12))]
    return values[: rng.randint(1, 60)]


@pytest.mark.parametrize("values", [
    *map(_random_column, range(40)),
    [0.0] * 9 + [-0.0], [-0.0] * 10, [0.0] * 20 + [-0.0] * 20, [1] * 20 + [True] * 20, [1] * 20 + [1.0] * 20,
])
def test_each_form_a_column_is_written_in_reads_back_as_it_was(monkeypatch, values):
    monkeypatch.setattr(snapshot, "_LONG", 8)
    encoded = json.loads(json.dumps(snapshot._encode(values)))
    types = frozenset({int, str, bool, float, type(None)})
    assert _spelled(snapshot._column(encoded, types, len(values)), len(values)) == _spelled(values, 1), encoded


def _studio_written(tmp_path, count: int) -> Session:
    """A session of `count` entries as studio writes them: queued, started, done."""
    base = Recipe(prompt="a lighthouse at dusk")
    records = []
    for i in range(1, count + 1):
        when = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        records.append({"id": i, "kind": "queued", "time": when, "recipe": base.replace(seed=1000 + i).to_dict(),
                        "owner": "host:1"})
        records.append({"id": i, "kind": "started", "time": WHEN, "owner": "host:1"})
        records.append({"id": i, "kind": "done", "time": WHEN, "images": [f"{i:04d}.png"], "duration": 0.5 + i / 8,
                        "device": "cpu", "recipe": {"device": "cpu", "dtype": "float32"}})
    return _write(tmp_path, records)


def _python_calls(session: Session) -> list[str]:
    """The Python functions `snapshot.load` calls (and each resumption of a generator), by name."""
    calls: list[str] = []

    def count(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    fd = os.open(session.file, os.O_RDONLY)
    try:
        sys.setprofile(count)
        found = snapshot.load(session.file, fd)
    finally:
        sys.setprofile(None)
        os.close(fd)
    assert found is not None and len(found[0]) == len(session.entries())
    return calls


def test_a_reopen_makes_no_python_call_per_entry(tmp_path):
    # The entries are made a column at a time, by C loops (map, zip, json.loads): a reopen of twice
    # the entries makes the same Python calls. (A count, not a clock: the same on any machine.)
    calls = []
    for count in (snapshot.MIN_ENTRIES, 2 * snapshot.MIN_ENTRIES):
        session = _studio_written(tmp_path / str(count), count)
        expected, document = _kept(session)
        columns = document["columns"]
        runs = {name for name, column in columns.items() if isinstance(column, dict) and "runs" in column}
        assert runs == {"id", "seed", "line"} and set(columns["images"]) == {"names", "counts"}
        calls.append(_python_calls(session))
        assert [repr(e) for e in Session(session.path).entries(include_deleted=True)] == expected
    assert calls[0] == calls[1] and len(calls[1]) < 400, len(calls[1])

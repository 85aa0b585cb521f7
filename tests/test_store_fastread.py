"""Reading a big session quickly: every fast path reads what the slow one reads.

The slow path is the one a hand-edited file takes: each record on its own
through tomllib, each checked by the general walk. The fast paths are a
stretch of records in one `json.loads`, recipe tables parsed once per shared
text (studio.store.recipe_text), the writer's own record shapes checked
without the walk, the file split a block at a time. Entries are compared by
repr, so 1 and 1.0 (equal to ==) still tell apart.
"""

from __future__ import annotations

import itertools
import os
import tracemalloc

import pytest

import studio.store.bulk as bulk
import studio.store.journal as journal
import studio.store.records as records
import studio.store.session as session_module
from studio.recipe import MAX_PROMPT_CHARS, Recipe
from studio.store.journal import Journal
from studio.store.entries import RecipeMemo
from studio.store.recipe_text import RecipeTexts, Templated
from studio.store.records import check_event, check_record
from studio.store.session import FILE_NAME, Session, SessionError, SessionStore, record_bytes
from studio.store.tomlio import fast_parse_records

WHEN = "2026-01-01T00:00:00.000Z"
PROMPTS = ["a lighthouse at dusk", 'quotes " and \\ back \t tab é ☃ \x7f 中文 🦊', "", "[not a table]",
           "x" * MAX_PROMPT_CHARS, "# not a comment"]


def _records(count: int, odd_prompt: bool = True) -> list[dict]:
    """Records as studio writes them, of every kind and many recipe shapes."""
    base = Recipe(prompt="p")
    shapes = [base, base.replace(steps=30), base.replace(cfg_scale=6.5, sampler="Euler"),
              base.replace(loras=(Recipe.from_dict({"prompt": "p", "loras": [{"name": "ink", "weight": 0.8}]}).loras)),
              base.replace(embeddings=("bad-hands",), embedding_hashes=("ab",))]
    out = []
    for i in range(1, count + 1):
        recipe = shapes[i % len(shapes) if i % 7 else 0].replace(
            prompt="a = b" if i == 2 and odd_prompt else PROMPTS[i % len(PROMPTS)], negative_prompt="blurry" if i % 3 else "", seed=i * 7919 % 100_000)
        queued = {"id": i, "kind": "queued", "time": WHEN, "recipe": recipe.to_dict(), "owner": "host:1"}
        if i % 11 == 0:
            queued["template"] = "a __colour__ fox"
        if i % 13 == 0:
            queued["sweep"] = {"id": "s1", "at": [0, 0, 0], "shape": [2, 1, 1], "axes": ["seed", "", ""],
                               "labels": ["1", "", ""]}
        out.append(queued)
        out.append({"id": i, "kind": "started", "time": WHEN, "owner": "host:1"})
        if i % 17 == 0:
            out.append({"id": i, "kind": "failed", "time": WHEN, "reason": "out of memory"})
            continue
        changes = {"device": "cpu", "dtype": "float32"}
        if i % 5 == 0:
            changes["seed"] = 42  # a done record may report the seed it used
        if i % 9 == 0:
            changes["steps"] = 31
        out.append({"id": i, "kind": "done", "time": WHEN, "images": [f"{i:04d}.png"], "duration": 1.5,
                    "device": "cpu", "model_hash": "abc", "recipe": changes})
        if i % 19 == 0:
            out.append({"id": i, "kind": "mark", "time": WHEN, "rating": 4, "favourite": True, "note": "é"})
        if i % 23 == 0:
            out.append({"id": i, "kind": "deleted", "time": WHEN})
    return out


def _write(tmp_path, recs: list[dict], extra: bytes = b"") -> Session:
    session = SessionStore(tmp_path).create("s")
    with open(session.file, "ab") as handle:
        handle.write(b"".join(map(record_bytes, recs)) + extra)
    return session


def _slow(monkeypatch):
    """Every record on its own through tomllib, checked by the general walk (and none in bulk)."""
    monkeypatch.setattr(session_module, "BulkFold", lambda states, memo: None)
    monkeypatch.setattr(journal, "fast_parse_records", lambda text, texts=None: None)
    monkeypatch.setattr(journal, "fast_parse", lambda text, root: None)
    monkeypatch.setattr(records, "_PLAIN", {})


def _read(path):
    session = Session(path, read_only=True)
    return [repr(entry) for entry in session.entries(include_deleted=True)], session.warnings


# Hand edits, appended after the writer's records: each read by tomllib (or refused) in both paths.
ODD = [
    # a comment inside a recipe table, and literal strings
    b"\n[[event]]\nid = 9001\nkind = 'queued'\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = 'literal'  # a comment\nseed = 5\n# end 9001\n",
    # a duplicated key in the recipe (tomllib refuses it)
    b"\n[[event]]\nid = 9002\nkind = \"queued\"\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = \"p\"\nnegative_prompt = \"\"\nsteps = 20\nsteps = 21\nseed = 1\n# end 9002\n",
    # the seed twice
    b"\n[[event]]\nid = 9003\nkind = \"queued\"\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = \"p\"\nnegative_prompt = \"\"\nseed = 1\nsteps = 20\nseed = 2\n# end 9003\n",
    # the key a cut-down table names its template by, written by hand
    b"\n[[event]]\nid = 9004\nkind = \"queued\"\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = \"p\"\nnegative_prompt = \"\"\nseed = 1\n\"@t\" = 0\n# end 9004\n",
    # a seed out of range, a prompt too long, a seed of the wrong type
    b"\n[[event]]\nid = 9005\nkind = \"queued\"\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = \"p\"\nnegative_prompt = \"\"\nseed = -3\n# end 9005\n",
    b"\n[[event]]\nid = 9006\nkind = \"queued\"\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = \"" + b"y" * (MAX_PROMPT_CHARS + 1) + b"\"\nnegative_prompt = \"\"\nseed = 3\n# end 9006\n",
    b"\n[[event]]\nid = 9007\nkind = \"queued\"\ntime = \"2026-01-01T00:00:00Z\"\n[event.recipe]\n"
    b"prompt = \"p\"\nnegative_prompt = \"\"\nseed = 3.0\n# end 9007\n",
]


@pytest.mark.parametrize("odd", range(len(ODD) + 1))
def test_a_session_reads_the_same_through_every_fast_path_as_through_tomllib(tmp_path, monkeypatch, odd):
    recs = _records(140)
    extra = ODD[odd] if odd < len(ODD) else b"".join(ODD)
    session = _write(tmp_path, recs, extra)
    fast = _read(session.path)
    assert len(fast[0]) > 100
    if odd == 0:
        assert any("literal" in entry for entry in fast[0])
    with monkeypatch.context() as patch:
        _slow(patch)
        slow = _read(session.path)
    assert fast == slow
    for chunk in (1, 7, 1000):
        monkeypatch.setattr(journal, "CHUNK", chunk)
        assert _read(session.path) == fast


def test_templated_tables_are_the_dicts_a_whole_parse_makes(tmp_path):
    session = _write(tmp_path, _records(60, odd_prompt=False))
    pieces = session.file.read_bytes().split(journal.SEP)[1:]
    text = journal.SEP.join(pieces).decode("utf-8")
    texts = RecipeTexts()
    plain, templated = fast_parse_records(text), fast_parse_records(text, texts)
    assert plain is not None and templated == plain
    for a, b in zip(plain, templated):
        if "recipe" in a:
            assert list(a["recipe"].items()) == list(b["recipe"].items())  # in the file's order too
            assert [type(v) for v in a["recipe"].values()] == [type(v) for v in b["recipe"].values()]
    shared = [ev["recipe"] for ev in templated if type(ev.get("recipe")) is Templated]
    assert len(shared) >= 30 and len(texts.templates) <= 6  # LoRA tables are parsed whole
    assert not any("loras" in t for t in texts.templates if t.get("loras"))


def test_a_bad_field_in_the_middle_of_a_long_stretch_is_reported_at_its_line(tmp_path, monkeypatch):
    recs = _records(400)
    bad_at = next(i for i in range(600, 700) if recs[i]["kind"] == "started")  # mid-way in a 1,000-record stretch
    recs[bad_at] = {**recs[bad_at], "owner": 5}
    monkeypatch.setattr(journal, "CHUNK", 1000)
    session = _write(tmp_path, recs)
    text = session.file.read_text(encoding="utf-8")
    offset = text.index(record_bytes(recs[bad_at]).decode("utf-8"))
    line = text[:offset].count("\n") + 2  # the record's blank line, then its [[event]]
    with pytest.raises(SessionError, match=rf"{FILE_NAME}:{line} \(entry {recs[bad_at]['id']}\): field"):
        Session(session.path)
    assert len(Session(session.path, read_only=True).warnings) == 1


def _mutations(ev: dict):
    values = [True, False, 0, 1, -1, 1.5, float("nan"), float("inf"), -0.5, "", "s", [], ["a"], [1], {}, {"a": 1},
              None]
    yield ev
    for key in list(ev) + ["owner", "template", "images", "duration", "rating", "nope", "sweep", "sheet"]:
        for value in values:
            yield {**ev, key: value}
        yield {k: v for k, v in ev.items() if k != key}


def test_the_writers_shapes_are_checked_as_the_general_walk_checks_them(monkeypatch):
    bases = [r for r in _records(30) if r["kind"] in ("queued", "started", "done")][:12]
    seen = 0
    for base in bases:
        for ev in _mutations(base):
            fast = check_record(dict(ev), "f", 3)
            with monkeypatch.context() as patch:
                patch.setattr(records, "_PLAIN", {})
                slow = check_record(dict(ev), "f", 3)
            assert fast == slow, ev
            seen += not fast
    assert seen > 50 and check_event([]) and check_record({"kind": ["x"]}, "f", 1)


def test_line_counts_and_torn_tails_at_every_cut(tmp_path, monkeypatch):
    recs = [r for r in _records(3) if len(r.get("recipe", {}).get("prompt", "")) < 100]
    session = _write(tmp_path, recs)
    whole = session.file.read_bytes()
    header_end = whole.index(b"# end header\n") + len(b"# end header\n")
    monkeypatch.setattr(journal, "BLOCK", 37)  # records across many blocks
    for cut in range(header_end, len(whole) + 1):
        session.file.write_bytes(whole[:cut])
        journal_ = Journal(session.file, check_record)
        fd = os.open(session.file, os.O_RDONLY)
        try:
            scan = journal_.read_all(fd)
            read = list(scan.events)
        finally:
            os.close(fd)
        assert scan.problems == [], cut
        data = whole[:cut]
        assert scan.lines == data[: scan.consumed].count(b"\n"), cut
        if scan.torn is not None:
            assert scan.torn[0] == scan.consumed and scan.torn[1] == data[: scan.torn[0]].count(b"\n") + 1, cut
        lines = [line for line, _ in read]
        assert all(data.split(b"\n")[line - 1] == b"[[event]]" for line in lines), cut
        whole_records = data[: scan.consumed].count(b"\n[[event]]\n")
        assert len(read) == whole_records, cut


def test_entries_read_through_a_template_share_it_until_shown(tmp_path):
    count = 5000
    base = Recipe(prompt="a lighthouse on a cliff at dusk")
    recs = []
    for i in range(1, count + 1):
        recs.append({"id": i, "kind": "queued", "time": WHEN, "recipe": base.replace(seed=i).to_dict()})
        recs.append({"id": i, "kind": "done", "time": WHEN, "images": [f"{i:04d}.png"], "duration": 1.5,
                     "device": "cpu", "recipe": {"device": "cpu", "dtype": "float32"}})
    session = _write(tmp_path, recs)
    tracemalloc.start()
    try:
        opened = Session(session.path)
        entries = opened.entries()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A Recipe's own values alone are some 1,600 bytes: entries that each held one would not fit.
    assert held / count < 1400, held / count
    templates = {id(state.kept[0]) for state in opened._states.values()}
    assert len(templates) == 1
    assert entries[10].recipe == base.replace(seed=11, device="cpu", dtype="float32")
    assert entries[10].recipe.prompt is entries[11].recipe.prompt
    assert [e.recipe.seed for e in itertools.islice(entries, 3)] == [1, 2, 3]


def test_a_session_studio_writes_keeps_a_fresh_snapshot_when_it_closes(tmp_path, monkeypatch):
    import studio.store.snapshot as snapshot
    from studio.models.library import ModelLibrary
    from studio.service import Studio

    monkeypatch.setattr(snapshot, "MIN_ENTRIES", 3)
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    session = _write(tmp_path, _records(8, odd_prompt=False))
    studio = Studio(Session(session.path), ModelLibrary(use_hf_cache=False), engine_factory=lambda listener: None)
    studio.shutdown()
    kept = snapshot.snapshot_path(session.file)
    assert kept.is_file()
    first = kept.stat().st_mtime_ns
    assert studio.session.save_snapshot() and kept.stat().st_mtime_ns == first  # nothing new: not written again
    studio.session.mark(3, rating=5)
    studio.shutdown()
    assert kept.stat().st_mtime_ns != first
    reads = []
    read_all = journal.Journal.read_all
    monkeypatch.setattr(journal.Journal, "read_all", lambda self, fd: reads.append(1) or read_all(self, fd))
    reopened = Session(session.path)
    assert reads == [] and reopened.get(3).rating == 5
    from_snapshot = [repr(e) for e in reopened.entries(include_deleted=True)]
    kept.unlink()
    with monkeypatch.context() as patch:
        _slow(patch)
        assert from_snapshot == _read(session.path)[0] and reads == [1]


# --- the bulk path (studio.store.bulk): the writer's queued/started/done triples folded at once


def _counting(monkeypatch) -> list[bulk.BulkFold]:
    """Every BulkFold a read makes, so a test can see how many entries it folded."""
    made: list[bulk.BulkFold] = []

    def counted(states, memo):
        made.append(bulk.BulkFold(states, memo))
        return made[-1]

    monkeypatch.setattr(session_module, "BulkFold", counted)
    return made


def _studio_session(tmp_path, count: int, **shape) -> Session:
    """A session written by studio itself (queue, start, finish), as the service writes one."""
    session = SessionStore(tmp_path).create("written")
    base = Recipe(prompt="a lighthouse at dusk", **shape)
    for i in range(count):
        recipe = base.replace(seed=1000 + i, prompt=("a lighthouse at dusk", "é 中文 🦊 [not a table] # a = b")[i % 2])
        entry = session.queue(recipe)
        session.start(entry.id)
        session.finish(entry.id, recipe.replace(device="cpu", dtype="float32"), [f"{entry.stem}.png"], 0.5 + i / 8)
    return session


def test_studio_s_own_records_are_read_in_bulk(tmp_path, monkeypatch):
    written = _studio_session(tmp_path, 60)
    made = _counting(monkeypatch)
    fast = _read(written.path)
    # every triple but the file's last (its done record is the file's last record: the torn check's)
    assert [m.folded for m in made] == [59]
    with monkeypatch.context() as patch:
        _slow(patch)
        assert _read(written.path) == fast
    reopened = Session(written.path)
    reopened.mark(3, rating=4)  # appends, and the fold, go on as ever
    assert Session(written.path).get(3).rating == 4 and made[-1].folded == 60  # the last triple too, now


def test_a_session_reads_the_same_in_bulk_through_mixed_records(tmp_path, monkeypatch):
    recs = _records(140)
    session = _write(tmp_path, recs, b"".join(ODD))
    made = _counting(monkeypatch)
    fast = _read(session.path)
    assert made[0].folded > 40  # the writer's plain triples (no sweep, no LoRAs, no failure)
    with monkeypatch.context() as patch:
        _slow(patch)
        assert _read(session.path) == fast
    # an id queued twice: the second triple is the general path's, which reports it
    twice = _write(tmp_path / "twice", recs[:3] + recs[:3] + recs[3:9])
    fast = _read(twice.path)
    with monkeypatch.context() as patch:
        _slow(patch)
        assert _read(twice.path) == fast
    assert any("queued twice" in warning for warning in fast[1])


def _plant(data: bytes, entry_id: int, old: bytes, new: bytes) -> bytes:
    """`data` with the first `old` in entry `entry_id`'s queued record made `new`."""
    start = data.index(b"\nid = %d\nkind = \"queued\"" % entry_id)
    at = data.index(old, start)
    return data[:at] + new + data[at + len(old) :]


def test_a_value_the_general_path_reads_otherwise_ends_a_run_and_the_next_run_goes_on(tmp_path, monkeypatch):
    written = _studio_session(tmp_path, 40)
    data = written.file.read_bytes()
    data = _plant(data, 12, b"a lighthouse at dusk", b"a lighthouse\x01at dusk")  # a raw control character
    data = _plant(data, 20, b"seed = 1019", b"seed = 01019")  # a leading zero
    data = _plant(data, 26, b"seed = 1025", b"seed = 9223372036854775000")  # past a recipe's bound
    data = _plant(data, 31, b'time = "', b'time = "\\u0032')  # an escape, in a time of 24 characters
    written.file.write_bytes(data)
    made = _counting(monkeypatch)
    fast = _read(written.path)
    assert made[0].folded == 40 - 1 - 4  # all but the planted and the file's last: each run went on after
    assert len(fast[1]) == 3 + 3 + 1 and len(fast[0]) == 37  # (a queued record refused: its other two are orphans)
    with monkeypatch.context() as patch:
        _slow(patch)
        assert _read(written.path) == fast


def _triple_text(tmp_path) -> tuple[bytes, bytes]:
    """The header and two triples of a session studio wrote (the second to mutate)."""
    written = _studio_session(tmp_path, 3)
    data = written.file.read_bytes()
    header, *pieces = data.split(journal.SEP)
    return header, journal.SEP.join(pieces[:6])


def _mutations_of(text: bytes, step: int):
    """`text` changed a byte at a time (dropped, or another put before it) at every `step`th byte, and a line at a time."""
    inserts = [b'"', b"\\", b"\t", b"\x01", b"\x7f", b" ", b"0", b"9", b"-", b"x", b"\n", b"#", b"[", b".", "é".encode()]
    for at in range(0, len(text), step):
        yield text[:at] + text[at + 1 :]
        for extra in inserts:
            yield text[:at] + extra + text[at:]
    lines = text.split(b"\n")
    for at in range(len(lines)):
        yield b"\n".join(lines[:at] + lines[at + 1 :])
        yield b"\n".join(lines[: at + 1] + lines[at:])


@pytest.mark.parametrize("step", [pytest.param(1, marks=pytest.mark.slow), 9])
def test_the_bulk_path_takes_a_mutated_triple_only_as_the_general_path_reads_it(tmp_path, monkeypatch, step):
    header, both = _triple_text(tmp_path)
    first, second = both.split(journal.SEP, 3)[:3], both.split(journal.SEP, 3)[3]
    plain = journal.SEP.join(first)
    sep = journal.SEP.decode()
    follower = b"id = 99\nkind = \"queued\"\ntime = \"t\"\n[event.recipe]\nprompt = \"p\"\n# end 99\n"
    taken = refused = 0
    seen: set[bytes] = set()
    for mutated in _mutations_of(second, step):
        if mutated in seen:
            continue
        seen.add(mutated)
        try:
            alone = (mutated + journal.SEP + follower).decode("utf-8")
        except UnicodeDecodeError:
            continue
        for primed in (True, False):  # through the shape of the triple before it, and line by line
            fold = bulk.BulkFold({}, RecipeMemo())
            text, pos, records = alone, 0, 0
            if primed:  # one run from the plain triple: it takes the mutated one too, or ends before it
                text = plain.decode("utf-8") + sep + alone
                pos = len(plain.decode("utf-8")) + len(sep)
                end = fold.take(text, 0, 2)
                records, folded_to, _ = fold.commit()
                assert end == folded_to and (records, end) in ((3, pos - len(sep)), (6, end))
                records -= 3
            if not records:
                end = fold.take(text, pos, 2)
                if end < 0:
                    refused += 1
                    continue
                records, folded_to, _ = fold.commit()
                assert (records, folded_to) == (3, end)
            taken += 1
            assert text.startswith(sep, end)
            folded = list(fold.states.values())[-1]
            session = tmp_path / f"m{taken}"
            session.mkdir()
            (session / FILE_NAME).write_bytes(header + journal.SEP + mutated + journal.SEP + follower)
            with monkeypatch.context() as patch:
                _slow(patch)
                slow = Session(session, read_only=True)
            assert slow.warnings == [], mutated
            assert [repr(folded.snapshot())] == [repr(e) for e in slow.entries()][:-1], mutated
    assert taken >= 2 * 3 and refused > 2000 // step  # (an unmutated copy, and changed values that still read)


def test_a_torn_tail_reads_the_same_in_bulk_at_every_cut(tmp_path, monkeypatch):
    written = _studio_session(tmp_path, 4)
    whole = written.file.read_bytes()
    start = whole.rindex(journal.SEP, 0, whole.rindex(journal.SEP)) - 200  # into the last two triples
    for cut in range(start, len(whole) + 1, 3):
        written.file.write_bytes(whole[:cut])
        fast = _read(written.path)
        with monkeypatch.context() as patch:
            _slow(patch)
            assert _read(written.path) == fast, cut


def test_a_big_fold_is_frozen_out_of_the_collector_s_passes_and_a_small_one_is_not(tmp_path, monkeypatch):
    import gc

    import studio.store.collector as collector

    written = _studio_session(tmp_path, 12)
    monkeypatch.setattr(collector, "BIG", 10)
    frozen = gc.get_freeze_count()
    try:
        session = Session(written.path, read_only=True)
        assert gc.get_freeze_count() > frozen and gc.isenabled()  # the fold is in the permanent generation
        assert len(session.entries()) == 12
        gc.unfreeze()
        monkeypatch.setattr(collector, "BIG", 13)
        Session(written.path, read_only=True)
        assert gc.get_freeze_count() == 0 and gc.isenabled()
    finally:
        gc.unfreeze()

"""Fuzz the session loader: whatever the bytes, only SessionError, and never a write."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.recipe import LoraRef, Recipe
from studio.store.session import FILE_NAME, Session, SessionError, SessionStore


def _valid_file() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        session = SessionStore(Path(tmp)).create("seed")
        first = session.queue(Recipe(prompt='a "cat", 50% = fog\nline two', seed=3))
        session.start(first.id)
        session.finish(first.id, first.recipe.replace(device="cpu"), ["0001.png"], 1.5)
        second = session.queue(Recipe(prompt="dog", loras=(LoraRef("detail", 0.5, "ab12"),)))
        session.mark(first.id, favourite=True, rating=5, note="ünïcode ✓")
        session.cancel(second.id, "user")
        session.delete(second.id)
        return session.file.read_bytes()


VALID = _valid_file()
LINES = VALID.split(b"\n")

_garbage = st.binary(max_size=64)
_tokens = st.sampled_from(
    [b"[[event]]", b"[event.recipe]", b"# end 1", b"# end header", b"\n", b"=", b'"', b"'''",
     b"id = 1", b'kind = "mark"', b"rating = 99", b"[[[[[[[[", b"\xff\xfe", b"schema = 2",
     b"steps = -1", b"loras = 5", b'time = "x"', b"\x00", b"1979-05-27T07:32:00Z", b"inf"]
)


@st.composite
def mutated(draw) -> bytes:
    data = VALID
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "delete", "token", "lines", "garbage"]))
        at = draw(st.integers(0, len(data)))
        if kind == "cut":
            data = data[:at]
        elif kind == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + draw(_garbage) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        elif kind == "token":
            data = data[:at] + draw(_tokens) + data[at:]
        elif kind == "lines":
            lines = data.split(b"\n")
            picks = draw(st.lists(st.integers(0, len(lines) - 1), max_size=len(lines)))
            data = b"\n".join(lines[i] for i in picks)
        else:
            data = draw(st.binary(max_size=400))
    return data


@settings(
    max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@pytest.mark.slow
@given(data=mutated())
def test_loader_raises_only_session_error_and_never_writes(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fuzz"
        folder.mkdir()
        path = folder / FILE_NAME
        path.write_bytes(data)
        for read_only in (False, True):
            try:
                session = Session(folder, read_only=read_only)
            except SessionError as exc:
                assert "\n" not in str(exc)
                assert not read_only or "session file" in str(exc)
                continue
            for entry in session.entries(include_deleted=True):
                assert session.get(entry.id) == entry
            session.unfinished()
        assert path.read_bytes() == data
        assert sorted(p.name for p in folder.iterdir()) == [FILE_NAME]
        SessionStore(Path(tmp)).list()


def test_fuzz_seed_file_is_valid():
    session_warnings = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ok"
        folder.mkdir()
        (folder / FILE_NAME).write_bytes(VALID)
        session = Session(folder)
        session_warnings = session.warnings
        assert [e.id for e in session.entries(include_deleted=True)] == [1, 2]
    assert session_warnings == []


_scalars = st.one_of(
    st.text(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.lists(st.text(), max_size=3),
)
_keys = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)


@settings(max_examples=300, deadline=None, database=None)
@given(
    top=st.dictionaries(_keys, _scalars, max_size=5),
    sub=st.dictionaries(_keys, _scalars, max_size=5),
    rows=st.lists(st.dictionaries(_keys, _scalars, min_size=1, max_size=3), max_size=3),
)
@pytest.mark.slow
def test_written_records_read_back_the_same_by_fast_reader_and_tomllib(top, sub, rows):
    import tomllib

    from studio.store.tomlio import dump_table, fast_parse

    event = {k: v for k, v in top.items() if k not in ("sub",)}
    event["sub"] = {k: v for k, v in sub.items() if k != "rows"}
    if rows:
        event["sub"]["rows"] = rows
    text = "\n".join(dump_table("event", event, array=True)) + "\n# end 1\n"
    expected = tomllib.loads(text)["event"][0]
    fast = fast_parse(text.split("\n", 1)[1], "event")
    assert fast is None or fast == expected
    assert expected == _normalise(event)


def _normalise(value):
    """What TOML gives back: lists for tuples, strings with lone surrogates replaced."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value

"""SIGKILL a session writer at 100 random moments: no finished record is ever lost."""

from __future__ import annotations

import os
import random
import signal
import time
import tomllib
from pathlib import Path

import pytest

from studio.recipe import Recipe
from studio.store.session import FILE_NAME, Session, SessionStore

KILLS = 100

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _writer(folder: Path, report: int, rounds: int) -> None:
    """Append records forever, reporting each one after it is on disk."""
    session = Session(folder)
    prompt = "a lighthouse, " * rounds  # vary record sizes between writers
    while True:
        entry = session.queue(Recipe(prompt=prompt, seed=entry_seed(session)))
        os.write(report, f"queued {entry.id}\n".encode())
        session.finish(entry.id, entry.recipe.replace(device="cpu"), [f"{entry.stem}.png"], 0.5)
        os.write(report, f"done {entry.id}\n".encode())
        session.mark(entry.id, rating=entry.id % 6, note="n" * (entry.id % 50))
        os.write(report, f"mark {entry.id}\n".encode())


def entry_seed(session: Session) -> int:
    return len(session)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_finished_record(tmp_path):
    rng = random.Random(1234)
    session = SessionStore(tmp_path).create("kill")
    reported: dict[str, set[int]] = {"queued": set(), "done": set(), "mark": set()}
    started = time.monotonic()
    for round_ in range(KILLS):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the writer: never returns into pytest
            code = 1
            try:
                os.close(read_end)
                _writer(session.path, write_end, round_ % 7 + 1)
            finally:
                os._exit(code)
        os.close(write_end)
        time.sleep(rng.uniform(0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe.read().decode().splitlines():
                kind, entry_id = line.split()
                reported[kind].add(int(entry_id))
    elapsed = time.monotonic() - started

    final = Session(session.path)  # strict: any problem other than a torn tail raises
    entries = {e.id: e for e in final.entries()}
    assert reported["queued"] and reported["queued"] <= set(entries)
    assert all(entries[i].status == "done" for i in reported["done"])
    assert all(entries[i].rating == i % 6 for i in reported["mark"])
    assert sorted(entries) == list(range(1, len(entries) + 1))  # ids never collide
    # Once the next writer has run, the file is whole TOML again.
    final.mark(1, note="after the kills")
    events = tomllib.loads((session.path / FILE_NAME).read_text())["event"]
    assert events[-1]["note"] == "after the kills"
    torn = list(session.path.glob(f"{FILE_NAME}.torn-*"))
    print(f"{KILLS} kills in {elapsed:.1f} s: {len(entries)} entries, {len(torn)} torn tails set aside")

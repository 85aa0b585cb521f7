"""SIGKILL the review index mid-update: it stays consistent (or is rebuilt), and no session file is touched."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.recipe import Recipe
from studio.review.index import ReviewIndex
from studio.store.journal import record_bytes
from studio.store.session import SessionStore, now_iso

ROOT = Path(__file__).resolve().parent.parent
SESSIONS, ENTRIES, KILLS = 120, 30, 6

CHILD = """
import sys
from pathlib import Path
from studio.review.index import ReviewIndex
index = ReviewIndex(Path(sys.argv[1]), path=Path(sys.argv[2]), notice=lambda text: None)
print("go", flush=True)
index.update()
print("done", flush=True)
"""


def build(root: Path) -> int:
    store = SessionStore(root)
    for number in range(SESSIONS):
        session = store.create(f"s{number:03d}")
        chunks = []
        for entry_id in range(1, ENTRIES + 1):
            recipe = Recipe(prompt=f"a kite number {entry_id} in session {number}", seed=entry_id).to_dict()
            when = now_iso()
            chunks.append(record_bytes({"id": entry_id, "kind": "queued", "time": when, "recipe": recipe}))
            chunks.append(record_bytes({"id": entry_id, "kind": "done", "time": when, "images": ["x.png"]}))
        with open(session.file, "ab") as handle:
            handle.write(b"".join(chunks))
    return SESSIONS * ENTRIES


def digests(root: Path) -> dict[str, str]:
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.glob("*/session.toml")}


def consistent(path: Path) -> int:
    """Every session the index lists holds exactly its entries (they commit together); how many are listed."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT name, entries FROM sessions").fetchall()
        for name, count in rows:
            assert db.execute("SELECT count(*) FROM entries WHERE session = ?", (name,)).fetchone()[0] == count
        orphans = db.execute("SELECT count(*) FROM entries WHERE session NOT IN (SELECT name FROM sessions)")
        assert orphans.fetchone()[0] == 0
        fts = db.execute("SELECT count(*) FROM entries_text WHERE entries_text MATCH 'kite'").fetchone()[0]
        assert fts == sum(count for _, count in rows)  # the text index moved with its rows
        return len(rows)
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_mid_update_leaves_a_consistent_index_and_untouched_sessions(tmp_path):
    rng = random.Random(16)
    root, path = tmp_path / "sessions", tmp_path / "index.sqlite"
    total = build(root)
    before = digests(root)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()  # how long a whole build takes here, so the kills land inside one
    ReviewIndex(root, path=tmp_path / "scratch.sqlite", notice=lambda text: None).update()
    took = time.perf_counter() - start
    listed: list[int] = []
    scale = 1.0  # a loaded machine runs the child slower than this build: wait longer when a kill came early
    while len(listed) < KILLS or not any(0 < n < SESSIONS for n in listed):
        assert len(listed) < 3 * KILLS, f"no kill landed mid-build: {listed}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(path)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.1, 0.7) * took * scale)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert digests(root) == before  # the record is never written by the index
        listed.append(consistent(path) if path.exists() else 0)
        if listed[-1] == SESSIONS:  # the build finished before the kill: start again, kill sooner
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            scale /= 2
        elif listed[-1] == (listed[-2] if len(listed) > 1 else 0):  # no commit before the kill: wait longer
            scale *= 1.5
    assert any(0 < n < SESSIONS for n in listed), f"no kill landed mid-build: {listed}"
    index = ReviewIndex(root, path=path, notice=lambda text: None)
    index.update()  # picks up where the killed ones stopped
    assert index.count("kite") == total and index.update() == 0
    assert consistent(path) == SESSIONS and digests(root) == before


@pytest.mark.slow
def test_an_index_cut_short_on_disk_is_rebuilt(tmp_path):
    root, path = tmp_path / "sessions", tmp_path / "index.sqlite"
    total = build(root)
    index = ReviewIndex(root, path=path)
    index.update()
    index.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # a disk that lost the end of the file
    notices: list[str] = []
    index = ReviewIndex(root, path=path, notice=notices.append)
    assert index.count("kite") == total  # rebuilt on first use, with one notice
    assert len(notices) == 1 and "rebuilding" in notices[0]

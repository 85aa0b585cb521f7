import os
import stat

import pytest

from studio.atomic import atomic_writer, write_text_atomically


def test_written_file_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import studio.atomic

        importlib.reload(studio.atomic)
        studio.atomic.write_text_atomically(tmp_path / "a.txt", "hi")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    write_text_atomically(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]

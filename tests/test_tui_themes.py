"""Theme files: the flat ones (every shipped theme) are read without tomllib, and read the same."""

from __future__ import annotations

import tomllib

import pytest

from studio.tui import themes
from studio.tui.themes import PROJECT_THEMES, _flat, load_themes

CASES = [
    'name = "darkroom"\ndark = true\nprimary = "#C8553D"\n',
    "# only a comment\n\n   \n",
    'name="a#b" # a comment with "quotes" and \\ backslashes\r\ndark=false\r\n',
    'name = "\u00e9t\u00e9 \u2603"\n',
    'primary = "#fff"\t\t# tab before the comment\n',
    # what TOML refuses, or reads otherwise: _flat must not accept any of it
    'name = "a"\nname = "b"\n',
    'name = "a\\u0041"\n',
    'name = "a\x01"\n',
    "name = 'single'\n",
    'name = "unclosed\n',
    "dark = True\n",
    "dark = 1\n",
    "[table]\nname = \"x\"\n",
    'Name = "x"\n',
    'name = "x" trailing\n',
    'name = "x"\r\rdark = true\n',
    "# a control \x07 in a comment\n",
    "\ufeffname = \"bom\"\n",
]


@pytest.mark.parametrize("text", CASES)
def test_a_flat_file_reads_as_tomllib_reads_it_or_not_at_all(text):
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        expected = None
    flat = _flat(text)
    assert flat is None or flat == expected
    if expected is None:
        assert flat is None


def test_every_shipped_theme_is_flat_and_loads(monkeypatch):
    files = sorted(PROJECT_THEMES.glob("*.toml"))
    assert files
    for path in files:
        assert _flat(path.read_text()) == tomllib.loads(path.read_text()), path.name

    def refuse(text, what, **caps):
        raise AssertionError(f"{what} went to tomllib")

    monkeypatch.setattr(themes, "loads_toml", refuse)
    loaded, warnings = load_themes([PROJECT_THEMES])
    assert warnings == [] and {t.name for t in loaded} == {p.stem for p in files}


def test_a_file_that_is_not_flat_still_loads_through_tomllib(tmp_path):
    (tmp_path / "inline.toml").write_text('name = "inline"\nprimary = "#123456"  \ndark = true\nsecondary = \'#654321\'\n')
    (tmp_path / "broken.toml").write_text('name = "broken\n')
    loaded, warnings = load_themes([tmp_path])
    assert [(t.name, t.secondary) for t in loaded] == [("inline", "#654321")]
    assert len(warnings) == 1 and warnings[0].startswith("theme broken.toml:")

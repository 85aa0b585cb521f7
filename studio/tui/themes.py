"""Theme files: `themes/*.toml` in the project, plus the user's own folder.

Each file holds a Textual theme's colours (name, primary, background, ...).
A bad file is skipped with a warning, never a crash.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from studio.bounded import loads_toml, read_regular_text

PROJECT_THEMES = Path(__file__).resolve().parents[2] / "themes"  # a checkout or editable install
INSTALLED_THEMES = Path(sys.prefix) / "share" / "studio" / "themes"  # a wheel install
_FIELDS = (
    "name", "primary", "secondary", "warning", "error", "success", "accent",
    "foreground", "background", "surface", "panel", "boost", "dark",
)


# A line of a flat theme file: `key = "text"`, `key = true` or `false`, a comment, or nothing.
_FLAT_LINE = re.compile(r'[ \t]*(?:([a-z]+)[ \t]*=[ \t]*(?:"([^"\\\x00-\x1f\x7f]*)"|(true|false))[ \t]*)?(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?')


def _flat(text: str) -> dict[str, Any] | None:
    """A theme file of flat lines (as the shipped ones are) read without tomllib, whose import
    is some 10 M instructions before the window's first frame; None for anything else, which
    `loads_toml` reads (the same table for every file this accepts)."""
    data: dict[str, Any] = {}
    for line in text.split("\n"):
        match = _FLAT_LINE.fullmatch(line.removesuffix("\r"))
        if match is None:
            return None
        key, text_value, flag = match.groups()
        if key is not None:
            if key in data:
                return None  # TOML refuses a key twice: let it say so
            data[key] = text_value if flag is None else flag == "true"
    return data


def theme_dirs() -> list[Path]:
    from platformdirs import user_config_dir

    shipped = PROJECT_THEMES if PROJECT_THEMES.is_dir() else INSTALLED_THEMES
    return [shipped, Path(user_config_dir("studio")) / "themes"]


def load_themes(dirs: list[Path] | None = None) -> tuple[list[Any], list[str]]:
    """(themes, warnings) from every `*.toml` in `dirs`."""
    from textual.theme import Theme

    themes, warnings = [], []
    for folder in dirs if dirs is not None else theme_dirs():
        try:
            files = sorted(folder.glob("*.toml"))
        except OSError:
            continue
        for path in files:
            try:
                text = read_regular_text(path)
                data = _flat(text)
                if data is None:
                    data = loads_toml(text, path.name)
                unknown = sorted(set(data) - set(_FIELDS))
                if unknown:
                    raise ValueError(f"unknown key {unknown[0]!r}")
                data.setdefault("name", path.stem)
                themes.append(Theme(**data))
            except (OSError, UnicodeDecodeError, TypeError, ValueError) as exc:  # ValueError: tomllib's TOMLDecodeError too
                warnings.append(f"theme {path.name}: {exc}")
    return themes, warnings

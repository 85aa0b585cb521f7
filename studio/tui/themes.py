"""Theme files: `themes/*.toml` in the project, plus the user's own folder.

Each file holds a Textual theme's colours (name, primary, background, ...).
A bad file is skipped with a warning, never a crash.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from studio.bounded import read_toml_file

PROJECT_THEMES = Path(__file__).resolve().parents[2] / "themes"  # a checkout or editable install
INSTALLED_THEMES = Path(sys.prefix) / "share" / "studio" / "themes"  # a wheel install
_FIELDS = (
    "name", "primary", "secondary", "warning", "error", "success", "accent",
    "foreground", "background", "surface", "panel", "boost", "dark",
)


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
                data = read_toml_file(path)
                unknown = sorted(set(data) - set(_FIELDS))
                if unknown:
                    raise ValueError(f"unknown key {unknown[0]!r}")
                data.setdefault("name", path.stem)
                themes.append(Theme(**data))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
                warnings.append(f"theme {path.name}: {exc}")
    return themes, warnings

"""The window's theme: chosen before the first frame without a second stylesheet parse, saved when changed.

A mixin of StudioApp (which sets `config` and `_theme_ready`).
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import App

DEFAULT_THEME = "darkroom"


class ThemeSetup:
    config: Any
    _theme_ready: bool

    def _register_themes(self) -> list[str]:
        from studio.tui.themes import load_themes

        themes, warnings = load_themes()
        for theme in themes:
            self.register_theme(theme)
        wanted = self.config.theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self._preset_theme(wanted)
        elif wanted != DEFAULT_THEME:
            warnings.append(f"theme {wanted!r} not found; using {self.theme}")
        return warnings

    def _preset_theme(self, name: str) -> None:
        """Choose the theme before the app runs, without the theme watcher.

        The watcher re-parses every stylesheet (tens of milliseconds before the
        first frame); before the app runs nothing is parsed yet, so handing the
        stylesheet this theme's variables is enough. What else the watcher does
        (the theme and dark/light classes, the ANSI colour filter) is done here.
        """
        self.set_reactive(App.theme, name)  # type: ignore[attr-defined]
        dark = self.current_theme.dark
        self.update_classes({f"-theme-{name}": True, "-dark-mode": dark, "-light-mode": not dark}, update=False)
        self._refresh_truecolor_filter(self.ansi_theme)
        self.stylesheet.set_variables(self.get_css_variables())  # read by the first parse

    def _theme_changed(self, theme: Any) -> None:
        if self._theme_ready and self.config.theme != theme.name:
            self.config.theme = theme.name
            self._save_config()

    @work(thread=True, group="config")
    def _save_config(self) -> None:
        from studio.config import save_config

        try:
            save_config(self.config)
        except OSError as exc:
            self.call_from_thread(self.notify, f"cannot save settings: {exc}", severity="error")

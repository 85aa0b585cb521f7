"""Settings: file, environment and --sessions-dir, in that order of weight."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from studio.config import (
    Config,
    add_sessions_dir_argument,
    load_config,
    save_config,
    sessions_dir_from,
)


def test_defaults_without_a_file(tmp_path):
    config = load_config(tmp_path / "missing.toml")
    assert config == Config() and config.warning == ""
    assert config.sessions_dir == Path("sessions")


def test_save_then_load_round_trips(tmp_path):
    path = tmp_path / "conf" / "config.toml"
    config = Config(sessions_dir=tmp_path / "s", model_dirs=[tmp_path / "m"], theme="nord",
                    cache_models=2, vae_tiling=True)
    assert save_config(config, path) == path
    assert load_config(path) == config
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp left


def test_studio_config_env_locates_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('theme = "gruvbox"\n')
    monkeypatch.setenv("STUDIO_CONFIG", str(path))
    assert load_config().theme == "gruvbox"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("theme = ", "config.toml"),
        ("cache_models = -1", "cache_models must be"),
        ("graphics = 'holograms'", "graphics must be one of"),
        ("colour = 'red'", "unknown setting 'colour'"),
        ("vae_tiling = 'yes'", "vae_tiling must be true or false"),
    ],
)
def test_bad_file_warns_in_one_line_and_uses_defaults(tmp_path, text, expected):
    path = tmp_path / "config.toml"
    path.write_text(text)
    config = load_config(path)
    assert config == Config()
    assert expected in config.warning and "\n" not in config.warning
    assert path.read_text() == text


def test_precedence_flag_over_env_over_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(f'sessions_dir = "{tmp_path / "from-file"}"\n')
    monkeypatch.setenv("STUDIO_CONFIG", str(path))
    parser = argparse.ArgumentParser()
    add_sessions_dir_argument(parser)
    assert sessions_dir_from(parser.parse_args([])) == tmp_path / "from-file"
    monkeypatch.setenv("STUDIO_SESSIONS_DIR", str(tmp_path / "from-env"))
    assert sessions_dir_from(parser.parse_args([])) == tmp_path / "from-env"
    args = parser.parse_args(["--sessions-dir", str(tmp_path / "from-flag")])
    assert sessions_dir_from(args) == tmp_path / "from-flag"


def test_text_encoders_and_no_t5_are_settings():
    from studio.config import ConfigError, config_from_dict

    config = config_from_dict({"text_encoders": ["t5xxl_fp8_e4m3fn", "clip_l"], "no_t5": True})
    assert config.text_encoders == ["t5xxl_fp8_e4m3fn", "clip_l"] and config.no_t5
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="text_encoders must be a list"):
        config_from_dict({"text_encoders": "clip_l"})

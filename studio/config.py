"""User settings from one TOML file, with environment and command-line overrides.

Where the file is: `$STUDIO_CONFIG`, else `config.toml` in the platform's user
config folder. `$STUDIO_SESSIONS_DIR` overrides `sessions_dir`, and
`--sessions-dir` overrides both. A file that cannot be read gives a one-line
warning and the defaults; studio never refuses to start over its settings.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.bounded import read_toml_file, Unbounded
from studio.atomic import write_text_atomically

ENV_CONFIG = "STUDIO_CONFIG"
ENV_SESSIONS_DIR = "STUDIO_SESSIONS_DIR"
GRAPHICS = ("auto", "kitty", "sixel", "halfcell", "halfblock", "unicode", "none")


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line."""


@dataclass
class Config:
    sessions_dir: Path = Path("sessions")
    model_dirs: list[Path] = field(default_factory=list)
    wildcard_dirs: list[Path] = field(default_factory=list)  # searched before A1111's and ComfyUI's usual ones
    graphics: str = "auto"
    theme: str = ""
    cache_models: int = 1
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    sequential_offload: bool = False
    safety_checker: bool = False  # opt-in: load a model folder's safety checker
    spandrel_extra_arches: bool = False  # opt-in: spandrel's non-commercial upscaler architectures
    text_encoders: list[str] = field(default_factory=list)  # preferred CLIP/T5 files for transformer files
    no_t5: bool = False  # SD3: run without T5 unless a job says otherwise
    preview: str = "x0"  # live previews: x0, latent, taesd, taesd:NAME or none (studio/engine/preview_choice.py)
    # Where this config was read from (and where save_config writes); not stored.
    path: Path | None = field(default=None, compare=False, repr=False)
    # Why the file was not used, if it was not; the caller shows it once.
    warning: str = field(default="", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions_dir": str(self.sessions_dir),
            "model_dirs": [str(p) for p in self.model_dirs],
            "wildcard_dirs": [str(p) for p in self.wildcard_dirs],
            "graphics": self.graphics,
            "theme": self.theme,
            "cache_models": self.cache_models,
            "attention_slicing": self.attention_slicing,
            "vae_tiling": self.vae_tiling,
            "cpu_offload": self.cpu_offload,
            "sequential_offload": self.sequential_offload,
            "safety_checker": self.safety_checker,
            "spandrel_extra_arches": self.spandrel_extra_arches,
            "text_encoders": list(self.text_encoders),
            "no_t5": self.no_t5,
            "preview": self.preview,
        }


_STORED = [f.name for f in dataclasses.fields(Config) if f.name not in ("path", "warning")]


def default_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("studio")) / "config.toml"


def config_from_dict(data: dict[str, Any], label: str = "config") -> Config:
    """Build a Config from TOML data; raises ConfigError naming the bad field."""
    unknown = sorted(set(data) - set(_STORED))
    if unknown:
        raise ConfigError(f"{label}: unknown setting {unknown[0]!r}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        values[key] = _check(key, value, label)
    return Config(**values)


def _check(key: str, value: Any, label: str) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{label}: {key} must be {expected} (got {value!r})")

    if key == "sessions_dir":
        if not isinstance(value, str) or not value:
            raise wrong("a folder path")
        return Path(value).expanduser()
    if key in ("model_dirs", "wildcard_dirs"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of folder paths")
        return [Path(v).expanduser() for v in value]
    if key == "text_encoders":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise wrong("a list of text encoder names or paths")
        return list(value)
    if key == "graphics":
        if value not in GRAPHICS:
            raise wrong(f"one of {', '.join(GRAPHICS)}")
        return value
    if key == "theme":
        if not isinstance(value, str):
            raise wrong("a theme name")
        return value
    if key == "preview":
        from studio.engine.preview_choice import parse_preview

        try:
            parse_preview(value if isinstance(value, str) else "?")
        except ValueError:
            raise wrong("x0, latent, taesd, taesd:NAME or none") from None
        return value
    if key == "cache_models":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 16:
            raise wrong("a whole number 0–16")
        return value
    if not isinstance(value, bool):
        raise wrong("true or false")
    return value


def load_config(path: Path | None = None) -> Config:
    """The user's settings; defaults (with `.warning` set) if the file is bad.

    A missing file is not an error. `$STUDIO_SESSIONS_DIR` overrides the file.
    """
    path = Path(path) if path is not None else default_path()
    config = Config()
    try:
        config = config_from_dict(read_toml_file(path), str(path))
    except FileNotFoundError:
        pass
    except (ConfigError, Unbounded) as exc:
        config.warning = f"{exc}; using default settings"
    except (OSError, UnicodeDecodeError) as exc:
        config.warning = f"{path}: cannot read ({exc}); using default settings"
    except ValueError as exc:  # tomllib.TOMLDecodeError: not TOML (tomllib is imported only for a file)
        config.warning = f"{path}: {exc}; using default settings"
    config.path = path
    env = os.environ.get(ENV_SESSIONS_DIR)
    if env:
        config.sessions_dir = Path(env).expanduser()
    return config


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write the settings atomically (temp file, fsync, rename); returns the path.

    The environment override is not written back: what is saved is the config's
    own `sessions_dir`, so set it deliberately.
    """
    import tomli_w

    path = Path(path or config.path or default_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, "# studio settings\n" + tomli_w.dumps(config.to_dict()))
    config.path = path
    return path


def add_sessions_dir_argument(parser: Any) -> None:
    parser.add_argument(
        "--sessions-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where sessions live (default: config file, ${ENV_SESSIONS_DIR}, or ./sessions)",
    )


def sessions_dir_from(args: Any, config: Config | None = None) -> Path:
    """`--sessions-dir` if given, else the config (which already applied the env var)."""
    given = getattr(args, "sessions_dir", None)
    if given:
        return Path(given).expanduser()
    if config is None:
        config = load_config()
        if config.warning:
            print(f"warning: {config.warning}", file=sys.stderr)
    return config.sessions_dir

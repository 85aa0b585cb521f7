"""Per-model recommended settings: a model folder may carry a `studio.toml`.

Example (the built-in model ships one):
    steps = 20
    cfg = 7.0
    sampler = "DPM++ 2M Karras"
    width = 64
    height = 64
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.bounded import read_toml_file

_KEYS = {"steps": "steps", "cfg": "cfg_scale", "sampler": "sampler", "width": "width", "height": "height"}


def model_defaults(model_path: Path | None) -> dict[str, Any]:
    """Recipe fields the model recommends; {} when it says nothing or says it badly."""
    if model_path is None or not model_path.is_dir():
        return {}
    path = model_path / "studio.toml"
    try:
        data = read_toml_file(path, max_chars=1 << 16)  # a downloaded model's file: bounded, regular only
    except (OSError, ValueError):  # missing, a FIFO, not TOML, nested or sized past the caps
        return {}
    return {field: data[key] for key, field in _KEYS.items() if key in data}

"""What every reader shares: values from untrusted metadata into Recipe fields, with notes.

A reader returns a `Reading`: Recipe fields (plus `_source` when the metadata
names its tool more precisely than the chunk does) and notes on what it could
not carry over. Values that do not fit become notes, never exceptions.
"""

from __future__ import annotations

import math
import re
from typing import Any

from studio.recipe import MAX_SEED
from studio.samplers import DEFAULT_SAMPLER

Reading = tuple[dict[str, Any], list[str]]

_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def number(fields: dict[str, Any], key: str, value: Any, kind: type, notes: list[str]) -> None:
    """Set `fields[key]` to `value` as an int or float; a value that is not one becomes a note."""
    if value is None or value == "":
        return
    try:
        if isinstance(value, bool):
            raise TypeError
        if kind is int and not isinstance(value, int):
            text = str(value).strip()
            result = int(text) if re.fullmatch(r"[+-]?\d+", text) else int(float(text))
        else:
            result = kind(value)
    except (TypeError, ValueError, OverflowError):
        notes.append(f"{key}: could not read {value!r}")
        return
    if key == "seed" and not 0 <= result <= MAX_SEED - 1024:
        notes.append(f"seed {result} is out of range; used {result % 2**32}")
        result %= 2**32
    fields[key] = result


def size(fields: dict[str, Any], text: str, notes: list[str]) -> None:
    """Set width and height from `WxH`, snapped to multiples of 8."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not match:
        notes.append(f"size: could not read {text!r}")
        return
    width, height = int(match.group(1)), int(match.group(2))
    snapped = [max(8, min(8192, int(v / 8 + 0.5) * 8)) for v in (width, height)]
    if snapped != [width, height]:
        notes.append(f"size {width}x{height} rounded to {snapped[0]}x{snapped[1]}")
    fields["width"], fields["height"] = snapped


def sampler(fields: dict[str, Any], name: str | None, original: str, notes: list[str]) -> None:
    """Set the sampler a reader matched; None (no match) leaves the default and says so."""
    if name is None:
        notes.append(f"sampler {original!r} is not available; used {DEFAULT_SAMPLER}")
        return
    fields["sampler"] = name


def lora(name: str, weight: Any, notes: list[str], digest: str = "") -> dict[str, Any] | None:
    """A LoRA entry for `fields["loras"]`; None (and a note) when the weight is not a number."""
    try:
        value = math.nan if isinstance(weight, bool) else float(weight)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not math.isfinite(value):
        notes.append(f"LoRA {name}: could not read weight {weight!r}; dropped")
        return None
    return {"name": name, "weight": value, "hash": digest}


def stem(name: str) -> str:
    """A model's name without its folders and file suffix, as A1111 names checkpoints."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in _MODEL_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base

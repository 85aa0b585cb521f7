"""Pickled weights (.ckpt, .pt, .pth, .bin): refused unless the user allows them.

Unpickling runs whatever code the file names, so a downloaded .ckpt can do
anything the user can. Even when allowed, studio reads it with torch's
restricted unpickler (`weights_only=True`), which builds tensors and plain
containers and refuses every other callable.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

from studio.errors import first_line

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class PickleRefused(PermissionError):
    """A pickled weights file was not loaded; the message explains why and what to do."""


def is_pickle(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


# Studio's own words, never torch's: torch's refusal advises re-running with its
# restricted unpickler turned off, which is advice to run the payload.
ALLOW_PICKLE_HINT = (
    "--allow-pickle loads it with torch's restricted weights-only unpickler,"
    " which builds tensors and refuses anything else"
)


def refusal(path: Path) -> str:
    return (
        f"{path.name} is a pickle: loading one can run any code inside it, so studio refuses pickles."
        f" Prefer a .safetensors version of the same weights; if you trust this file, {ALLOW_PICKLE_HINT}"
        " (the session records that you allowed it)"
    )


def load_pickle_state_dict(path: str | Path, *, allow_pickle: bool) -> dict[str, Any]:
    """The flat tensor dict in a pickled checkpoint, read with `weights_only=True`."""
    path = Path(path)
    if not allow_pickle:
        raise PickleRefused(refusal(path))
    import torch

    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # Legacy (pre-zip) torch files cannot be memory-mapped.
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
            raise PickleRefused(
                f"{path.name} is a pickle that asks to run code{_what_it_asks(str(exc))}, not plain weights:"
                " studio refused it even with --allow-pickle, whose weights-only unpickler loads tensors only"
            ) from None
        first = first_line(exc)
        raise PickleRefused(f"{path.name}: cannot read as a torch checkpoint ({first[:200]})") from None
    return flatten_state_dict(data, path.name)


def _what_it_asks(torch_message: str) -> str:
    """The callable or opcode torch's unpickler stopped at, from its message (and nothing else of it)."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", torch_message)
    if found:
        return f" ({found.group(1)})"
    found = re.search(r"Unsupported operand (\d+)", torch_message)
    return f" (pickle opcode {found.group(1)})" if found else ""


def flatten_state_dict(data: Any, name: str = "checkpoint") -> dict[str, Any]:
    import torch

    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise PickleRefused(f"{name}: holds a {type(data).__name__}, not a dict of tensors")
    # A1111 embeddings (.pt) nest their vectors: {"string_to_param": {"*": tensor}, ...}.
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, torch.Tensor):
            flat[str(key)] = value
        elif isinstance(value, dict):
            for sub, tensor in value.items():
                if isinstance(tensor, torch.Tensor):
                    flat[f"{key}.{sub}"] = tensor
    return flat

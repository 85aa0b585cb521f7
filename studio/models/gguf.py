"""GGUF-quantised transformers (city96's Flux quantisations and the like), through diffusers' GGUF support.

A `.gguf` file holds BFL-named tensors, each in F32/F16/BF16 or a llama.cpp block
quantisation (Q8_0, Q5_K, Q4_K…). diffusers keeps quantised weights as they are and
dequantises each layer's weight as it runs (GGUFQuantizationConfig), so a Q8_0 Flux
transformer takes about half the memory of its bf16 one. Reading the file needs the
optional `gguf` package (`pip install studio[gguf]`); without it studio says so in one line.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

INSTALL_HINT = "GGUF files need the gguf package: pip install 'studio[gguf]' (or pip install gguf)"


class GGUFUnavailable(ImportError):
    """The gguf package is not installed; the message says how to get it."""


class GGUFError(ValueError):
    """A .gguf file studio cannot read; the message is one line."""


def _reader(path: Path) -> Any:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise GGUFUnavailable(INSTALL_HINT) from None
    try:
        return GGUFReader(str(path))
    except Exception as exc:  # a truncated or foreign file: numpy and struct errors of every kind
        raise GGUFError(f"{path.name}: not a readable GGUF file ({type(exc).__name__}: {str(exc)[:120]})") from None


def gguf_tensors(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape in torch order, quantisation type name) for every tensor; reads no weights."""
    reader = _reader(path)
    return {
        t.name: (tuple(int(n) for n in reversed(t.shape.tolist())), t.tensor_type.name) for t in reader.tensors
    }


def gguf_metadata(path: Path) -> dict[str, str]:
    """The string-valued metadata (general.architecture, general.name…)."""
    reader = _reader(path)
    out = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        try:
            value = field.contents()
        except Exception:
            continue
        if isinstance(value, (str, int, float)):
            out[name] = str(value)
    return out


def gguf_architecture(path: Path) -> str:
    """'Flux dev'/'Flux schnell' for a Flux transformer GGUF, else ''; GGUFUnavailable without the package."""
    try:
        names = gguf_tensors(path)
    except GGUFError:
        return ""
    keys = [k.removeprefix("model.diffusion_model.") for k in names]
    if not any(k.startswith("double_blocks.") for k in keys):
        return ""
    return "Flux dev" if "guidance_in.in_layer.weight" in keys else "Flux schnell"


def quantisation_summary(path: Path) -> tuple[int, dict[str, int]]:
    """(parameters, {quantisation type: parameters}) of a GGUF file."""
    counts: Counter[str] = Counter()
    for shape, qtype in gguf_tensors(path).values():
        counts[qtype] += math.prod(shape)
    return sum(counts.values()), dict(counts)


def read_gguf_state(path: Path) -> dict[str, Any]:
    """The file's tensors as diffusers reads them: quantised ones as GGUFParameter, F16/F32 as tensors."""
    _reader(path)  # the one-line errors first
    from diffusers.models.model_loading_utils import load_gguf_checkpoint

    try:
        return load_gguf_checkpoint(str(path))
    except ValueError as exc:  # an unsupported quantisation type: diffusers' message is many lines
        raise GGUFError(f"{path.name}: {str(exc).splitlines()[0]}") from None


def gguf_quantization(torch_dtype: Any) -> dict[str, Any]:
    """from_single_file keywords that keep GGUF weights quantised, computing in `torch_dtype`."""
    from diffusers import GGUFQuantizationConfig

    return {"quantization_config": GGUFQuantizationConfig(compute_dtype=torch_dtype)}

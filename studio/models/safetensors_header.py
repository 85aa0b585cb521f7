"""Read and check a .safetensors header without loading a single tensor.

The format is an 8-byte little-endian header length, a JSON header, then one
flat data buffer. We read it ourselves so that a hostile or damaged file is
caught before anything allocates memory for it: the header size is capped and
every tensor's dtype, shape and byte range are checked against the file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024

# Bits per element; sub-byte float formats pack elements into whole bytes.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


class HeaderError(ValueError):
    """The file is not a readable safetensors file; the message is one line."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data buffer
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    file_size: int = 0


def read_header(path: str | os.PathLike[str], max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsHeader:
    """The checked header of `path`; raises HeaderError on anything malformed."""
    path = Path(path)
    name = path.name
    try:
        file_size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise HeaderError(f"{name}: not a safetensors file (only {file_size} bytes)")
            length = int.from_bytes(prefix, "little")
            if length > max_header_bytes:
                raise HeaderError(
                    f"{name}: header claims {length} bytes, over the {max_header_bytes}-byte cap"
                    " (corrupt, or not a safetensors file)"
                )
            if 8 + length > file_size:
                raise HeaderError(
                    f"{name}: truncated: header needs {8 + length} bytes, file has {file_size}"
                )
            raw = handle.read(length)
    except OSError as exc:
        raise HeaderError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"{name}: header is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise HeaderError(f"{name}: header is not a JSON object")
    metadata = _check_metadata(name, header.pop("__metadata__", {}))
    tensors = {key: _check_tensor(name, key, value) for key, value in header.items()}
    _check_layout(name, tensors, file_size - 8 - length)
    return SafetensorsHeader(tensors, metadata, length, file_size)


def _check_metadata(name: str, metadata: object) -> dict[str, str]:
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise HeaderError(f"{name}: __metadata__ must map strings to strings")
    return metadata


def _check_tensor(name: str, key: str, value: object) -> TensorInfo:
    if not isinstance(value, dict):
        raise HeaderError(f"{name}: tensor {key!r} entry is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise HeaderError(f"{name}: tensor {key!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise HeaderError(f"{name}: tensor {key!r} has a bad shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise HeaderError(f"{name}: tensor {key!r} has bad data_offsets {offsets!r}")
    info = TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])
    bits = info.numel * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != info.end - info.begin:
        raise HeaderError(
            f"{name}: tensor {key!r} is {info.end - info.begin} bytes"
            f" but {dtype}{list(shape)} needs {bits / 8:g}"
        )
    return info


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(name: str, tensors: dict[str, TensorInfo], data_size: int) -> None:
    """Tensors must tile the data buffer exactly: no gaps, overlaps or overrun."""
    position = 0
    for key, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            what = "overlaps the one before" if info.begin < position else "leaves a gap"
            raise HeaderError(f"{name}: tensor {key!r} {what} (offset {info.begin}, expected {position})")
        position = info.end
    if position > data_size:
        raise HeaderError(
            f"{name}: truncated: tensors need {position} data bytes, file has {data_size}"
        )
    if position < data_size:
        raise HeaderError(f"{name}: {data_size - position} stray bytes after the last tensor")

"""Read and check a .safetensors header without loading a single tensor.

The format is an 8-byte little-endian header length, a JSON header, then one
flat data buffer. We read it ourselves so that a hostile or damaged file is
caught before anything allocates memory for it: the header size is capped and
every tensor's dtype, shape and byte range are checked against the file.

The header is untrusted JSON, so before it is parsed its depth, its numbers'
lengths and its tensor count are checked (`studio.bounded`), and no product of
a shape's dimensions grows past what the file could hold.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.bounded import NotRegular, Unbounded, check_regular, loads_json
from studio.models.file_memo import FileMemo

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own cap
# The largest real files (a whole SDXL or Flux checkpoint, a LyCORIS full LoRA) hold a
# few thousand tensors; 100,000 is past them all and keeps the check under a second.
MAX_TENSORS = 100_000
# Strings in the whole header (names, keys, metadata; an escaped quote counts too):
# 100,000 tensors need 500,000, and kohya's metadata a few thousand more.
MAX_STRINGS = 1_000_000
MAX_DIMS = 64  # torch's own limit on a tensor's rank
MAX_NUMBER_CHARS = 20  # a u64: 18446744073709551615
MAX_DEPTH = 4  # {tensor: {shape: [...]}} nests three deep

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


HEADERS = FileMemo()  # a checkpoint's header is asked for a dozen times per generate


def read_header(path: str | os.PathLike[str], max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsHeader:
    """The checked header of `path`; raises HeaderError on anything malformed.

    Read once while the file is unchanged (`HEADERS`); each caller gets its own dicts."""
    try:
        kept = HEADERS.get(path, lambda: _read_header(Path(path), max_header_bytes), max_header_bytes)
    except OSError:  # not there, or not to be stat'ed: the read says so in one line (HeaderError)
        kept = _read_header(Path(path), max_header_bytes)
    return SafetensorsHeader(dict(kept.tensors), dict(kept.metadata), kept.header_bytes, kept.file_size)


def _read_header(path: Path, max_header_bytes: int) -> SafetensorsHeader:
    name = path.name
    try:
        file_size = check_regular(path).st_size  # a FIFO would block the open below forever
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
    except NotRegular as exc:
        raise HeaderError(str(exc)) from None
    except OSError as exc:
        raise HeaderError(f"{name}: cannot read: {exc.strerror or exc}") from None
    # Counted before parsing, so a million tiny tensors or metadata entries cost a byte scan, not a gigabyte.
    if raw.count(b'"data_offsets"') > MAX_TENSORS:
        raise HeaderError(f"{name}: header lists over {MAX_TENSORS:,} tensors (the cap)")
    if raw.count(b'"') > 2 * MAX_STRINGS:
        raise HeaderError(f"{name}: header holds over {MAX_STRINGS:,} strings (the cap)")
    try:
        header = loads_json(
            raw.decode("utf-8"), "header", max_depth=MAX_DEPTH, max_chars=max_header_bytes,
            max_number=MAX_NUMBER_CHARS,
        )
    except Unbounded as exc:
        raise HeaderError(f"{name}: {exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError(f"{name}: header is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise HeaderError(f"{name}: header is not a JSON object")
    metadata = _check_metadata(name, header.pop("__metadata__", {}))
    if len(header) > MAX_TENSORS:
        raise HeaderError(f"{name}: header lists over {MAX_TENSORS:,} tensors (the cap)")
    tensors = {key: _check_tensor(name, key, value) for key, value in header.items()}
    _check_layout(name, tensors, file_size - 8 - length)
    return SafetensorsHeader(tensors, metadata, length, file_size)


def _check_metadata(name: str, metadata: object) -> dict[str, str]:
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise HeaderError(f"{name}: __metadata__ must map strings to strings")
    return metadata


def _short(value: object, limit: int = 80) -> str:
    """A value's repr for a one-line error, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_tensor(name: str, key: str, value: object) -> TensorInfo:
    label = f"{name}: tensor {_short(key)}"
    if not isinstance(value, dict):
        raise HeaderError(f"{label} entry is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise HeaderError(f"{label} has unknown dtype {_short(dtype)}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_count(d) for d in shape):
        raise HeaderError(f"{label} has a bad shape {_short(shape)}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise HeaderError(f"{label} has bad data_offsets {_short(offsets)}")
    info = TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])
    size = info.end - info.begin
    # The product stops growing once it passes what the byte range holds: huge dimensions
    # would otherwise make each multiplication slower than the last.
    numel = _bounded_product(shape, limit=size * 8)
    bits = None if numel is None else numel * DTYPE_BITS[dtype]
    if bits is None or bits % 8 or bits // 8 != size:
        needs = f"over {size}" if bits is None else f"{bits / 8:g}"
        raise HeaderError(f"{label} is {size} bytes but {dtype}{_short(shape)} needs {needs}")
    return info


def _bounded_product(dims: list[int], limit: int) -> int | None:
    """The product of `dims`, or None once it passes `limit`."""
    if 0 in dims:
        return 0
    product = 1
    for dim in dims:
        product *= dim
        if product > limit:
            return None
    return product


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

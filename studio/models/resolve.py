"""Turn what the user typed (a name, a path or a hash) into a ModelRef on disk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from studio.builtin import BUILTIN_DIR


class ModelNotFound(LookupError):
    """No local model matches; the message says where studio looked."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    path: Path
    format: str  # "diffusers" (a folder) or "single_file"
    hash: str  # short content hash, as A1111 writes it (10 hex digits for models)
    kind: str = "checkpoint"  # checkpoint, LoRA, embedding or VAE


def resolve(name: str, search_dirs: tuple[Path, ...] = (), *, kind: str = "checkpoint") -> ModelRef:
    """Find `name`: a path, a built-in model, or a model in `search_dirs`, the
    configured folders or the HF cache (by name, file stem or hash prefix)."""
    direct = [Path(name).expanduser()]
    if kind == "checkpoint":
        direct.append(BUILTIN_DIR / name)
    direct += [Path(d).expanduser() / name for d in search_dirs]
    for path in direct:
        if (path / "model_index.json").is_file():
            return _ref(_display_name(name, path), path, kind)
        if path.is_file():
            return _ref(path.stem if _looks_like_path(name) else name, path, kind)

    from studio.models.discovery import default_dirs, find, scan

    dirs = [Path(d).expanduser() for d in search_dirs] + default_dirs()
    kinds = {"checkpoint": ("checkpoint", "unknown")}.get(kind, (kind,))
    entry = find(name, scan(dirs), kinds)
    if entry:
        return _ref(entry.name, entry.path, kind)
    looked = ", ".join(str(p) for p in [*direct, *dirs]) + ", the Hugging Face cache"
    raise ModelNotFound(f"{kind} {name!r} not found (looked in: {looked})")


def _ref(name: str, path: Path, kind: str) -> ModelRef:
    from studio.models.hashing import HashCache, lora_hash

    path = path.resolve()
    if path.is_dir():
        return ModelRef(name, path, "diffusers", folder_hash(path), kind)
    cache = HashCache()
    if kind == "LoRA":
        digest = lora_hash(path, cache=cache)
    elif kind == "embedding":
        digest = cache.sha256(path)[:12]  # A1111's `TI hashes`
    else:
        digest = cache.sha256(path)[:10]  # AutoV2: `Model hash`, `VAE hash`
    return ModelRef(name, path, "single_file", digest, kind)


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.startswith(".") or "." in Path(name).name


def _display_name(name: str, path: Path) -> str:
    return path.name if ("/" in name or name.startswith(".")) else name


def folder_hash(path: Path) -> str:
    """A stable hash of a diffusers folder: its configs and weights, by relative path.

    Built from each file's cached SHA-256, so a big folder is read once, not per run.
    """
    from studio.models.hashing import HashCache

    cache = HashCache()
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix not in (".json", ".safetensors", ".txt", ".model"):
            continue
        digest.update(str(file.relative_to(path).as_posix()).encode() + b"\0")
        digest.update(cache.sha256(file).encode())
    return digest.hexdigest()[:10]

"""What a resolved model is: a ModelRef (a file or folder on disk, with its hash).

Finding one from what the user typed is the library's job (`ModelLibrary.resolve`);
this module only turns a path into a ref, so it depends on hashing and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.models.hashing import HashCache, folder_hash, lora_hash

CHECKPOINT_KIND = "checkpoint"


class ModelNotFound(LookupError):
    """No local model matches; the message says where studio looked."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    path: Path
    format: str  # "diffusers" (a folder) or "single_file"
    hash: str  # short content hash, as A1111 writes it (10 hex digits for models)
    kind: str = CHECKPOINT_KIND  # checkpoint, LoRA, embedding or VAE


def model_ref(name: str, path: Path, kind: str, cache: HashCache) -> ModelRef:
    """A ref to `path`, hashed the way A1111 records its kind."""
    path = path.resolve()
    if path.is_dir():
        return ModelRef(name, path, "diffusers", folder_hash(path, cache), kind)
    if kind == "LoRA":
        digest = lora_hash(path, cache=cache)
    elif kind == "embedding":
        digest = cache.sha256(path)[:12]  # A1111's `TI hashes`
    else:
        digest = cache.sha256(path)[:10]  # AutoV2: `Model hash`, `VAE hash`
    return ModelRef(name, path, "single_file", digest, kind)


def looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.startswith(".") or "." in Path(name).name


def name_for(typed: str, path: Path) -> str:
    """The name a ref found at `path` gets: what the user typed, unless they typed a path."""
    if path.is_dir():
        return path.name if ("/" in typed or typed.startswith(".")) else typed
    return path.stem if looks_like_path(typed) else typed

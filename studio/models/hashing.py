"""Civitai's AutoV2 hash (the first 10 hex digits of the file's SHA-256), hashed once.

Hashing a 6 GB checkpoint takes a while, so results are cached by resolved
path, size and modification time: a file that changes is hashed again. The
cache is shared by threads (the engine hashes a new model beside its load):
two asking for the same file at once read it once, the second waits for the first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Callable

from studio.bounded import read_json_file
from studio.cachedir import cache_dir
from studio.atomic import write_text_atomically

CACHE_VERSION = 1
CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def sha256_file(path: Path, progress: Progress | None = None, skip: int = 0) -> str:
    """SHA-256 of the file from byte `skip` on."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = skip
    with path.open("rb") as handle:
        handle.seek(skip)
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


class HashCache:
    """Full SHA-256 digests keyed by (resolved path, size, mtime_ns), in one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "hashes.json"
        self._entries: dict[str, dict[str, object]] | None = None
        self._lock = threading.RLock()  # guards the entries and the file
        self._pending: dict[tuple[str, str, int, int], threading.Event] = {}  # digests being computed

    def _load(self) -> dict[str, dict[str, object]]:
        if self._entries is None:
            try:
                data = read_json_file(self.path)
                ok = isinstance(data, dict) and data.get("version") == CACHE_VERSION
                self._entries = data["files"] if ok and isinstance(data.get("files"), dict) else {}
            except (OSError, ValueError, UnicodeDecodeError):
                self._entries = {}  # a missing or damaged cache only costs a rehash
        return self._entries

    def sha256(self, path: str | Path, progress: Progress | None = None) -> str:
        """SHA-256 of the whole file."""
        return self._digest(path, "sha256", 0, progress)

    def addnet(self, path: str | Path, progress: Progress | None = None) -> str:
        """SHA-256 of a safetensors file's data after its header (Civitai's AutoV3)."""
        path = Path(path)
        with path.open("rb") as handle:
            skip = 8 + int.from_bytes(handle.read(8), "little")
        return self._digest(path, "addnet", skip, progress)

    def cached(self, path: str | Path, field: str = "sha256") -> str | None:
        """The cached digest if the file is unchanged, without hashing."""
        try:
            path = Path(path).resolve()
            stat = path.stat()
        except OSError:
            return None
        with self._lock:
            entry = self._load().get(str(path))
        if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            value = entry.get(field)
            return value if isinstance(value, str) else None
        return None

    def _digest(self, path: str | Path, field: str, skip: int, progress: Progress | None) -> str:
        while True:
            resolved = Path(path).resolve()
            stat = resolved.stat()
            key = (str(resolved), field, stat.st_size, stat.st_mtime_ns)
            with self._lock:  # the check and the claim at once, so no digest is computed twice
                cached = self.cached(path, field)
                if cached:
                    return cached
                waiting = self._pending.get(key)
                if waiting is None:
                    self._pending[key] = threading.Event()
            if waiting is None:
                break
            waiting.wait()  # another thread is hashing this file: take its digest (or hash, if it failed)
        try:
            digest = sha256_file(resolved, progress, skip)
            with self._lock:
                entry = self._load().get(str(resolved))
                if not (isinstance(entry, dict) and entry.get("size") == stat.st_size
                        and entry.get("mtime_ns") == stat.st_mtime_ns):
                    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                entry[field] = digest
                self._load()[str(resolved)] = entry
                self._save()
        finally:
            with self._lock:
                self._pending.pop(key).set()
        return digest

    def _save(self) -> None:
        # Another studio process may have hashed other files meanwhile: keep theirs too.
        mine, self._entries = self._entries or {}, None
        merged = {**self._load(), **mine}
        self._entries = merged
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": CACHE_VERSION, "files": merged}, indent=1)
        write_text_atomically(self.path, data)


def autov2(path: str | Path, progress: Progress | None = None, cache: HashCache | None = None) -> str:
    """A1111/Civitai 'AutoV2': the first 10 hex digits of the file's SHA-256."""
    return (cache or HashCache()).sha256(path, progress)[:10]


HASHED_SUFFIXES = (".json", ".safetensors", ".txt", ".model")  # a folder's files that make its hash


def _folder_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in HASHED_SUFFIXES)


def identity(path: str | Path) -> tuple:
    """What the hash of `path` depends on, without reading it: (path, size, mtime_ns) of each file.

    Equal identities mean equal hashes (the cache trusts the same triple), so a
    pipeline cache can key on this before the hash is known.
    """
    path = Path(path).resolve()
    files = _folder_files(path) if path.is_dir() else [path]
    stats = [(str(file), file.stat()) for file in files]
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def folder_hash(path: Path, cache: HashCache | None = None) -> str:
    """A stable hash of a diffusers folder: its configs and weights, by relative path.

    Built from each file's cached SHA-256, so a big folder is read once, not per run.
    """
    cache = cache or HashCache()
    digest = hashlib.sha256()
    for file in _folder_files(path):
        digest.update(str(file.relative_to(path).as_posix()).encode() + b"\0")
        digest.update(cache.sha256(file).encode())
    return digest.hexdigest()[:10]


def lora_hash(path: str | Path, progress: Progress | None = None, cache: HashCache | None = None) -> str:
    """The hash A1111 writes in `Lora hashes`: AutoV3 (data after the header), 12 digits.

    A pickled LoRA has no header to skip, so A1111 (and studio) uses the whole-file hash.
    """
    cache = cache or HashCache()
    if Path(path).suffix.lower() == ".safetensors":
        return cache.addnet(path, progress)[:12]
    return cache.sha256(path, progress)[:12]

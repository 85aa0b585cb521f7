"""The model library: the folders studio looks in, walked once and kept.

Built once from the user's settings (`ModelLibrary.from_config`) and handed to
whoever needs models: the CLI, the TUI and the engine's worker. It never reads
the config itself, so what it searches is what it was given.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable

from studio.builtin import BUILTIN_DIR
from studio.config import Config
from studio.models import discovery
from studio.models.architectures import architecture_defaults, own_scheduler, samplers_for, scheduler_config_for
from studio.models.cascade import cascade_defaults
from studio.models.discovery import ModelEntry
from studio.models.hashing import HashCache
from studio.models.inspect import CHECKPOINT, UNKNOWN
from studio.models.resolve import ModelNotFound, ModelRef, looks_like_path, model_ref, name_for
from studio.presets import model_defaults
from studio.samplers import DEFAULT_SAMPLER


class ModelLibrary:
    """Models in `dirs` (the built-in folder first) and the Hugging Face hub cache."""

    def __init__(
        self,
        dirs: Iterable[Path] = (),
        *,
        hf_cache: Path | None = None,
        use_hf_cache: bool = True,
        tokenizer_dirs: Iterable[Path] = (),
        hashes: HashCache | None = None,
    ) -> None:
        self.dirs: tuple[Path, ...] = _unique([BUILTIN_DIR, *dirs])
        self.tokenizer_dirs: tuple[Path, ...] = _unique(tokenizer_dirs)
        self.hf_cache: Path = Path(hf_cache).expanduser() if hf_cache else discovery.hf_hub_cache()
        self.use_hf_cache = use_hf_cache
        self.hashes = hashes or HashCache()
        self._local: list[ModelEntry] | None = None  # what the last walk of `dirs` found
        self._hub: list[ModelEntry] | None = None  # and of the hub cache
        self._lock = threading.Lock()  # the worker and the UI share one library

    @classmethod
    def from_config(
        cls, config: Config, *, extra_dirs: Iterable[Path] = (), tokenizer_dir: Path | None = None
    ) -> ModelLibrary:
        """`extra_dirs`, the configured model folders, then `models/` beside the sessions folder."""
        dirs = [*extra_dirs, *config.model_dirs, Path(config.sessions_dir).expanduser().parent / "models"]
        return cls(dirs, tokenizer_dirs=[tokenizer_dir] if tokenizer_dir else ())

    def scan(self, *, hf_cache: bool = True, refresh: bool = False) -> list[ModelEntry]:
        """Every model found, checkpoints first; walks the folders once, then answers from memory."""
        with_hub = hf_cache and self.use_hf_cache
        with self._lock:
            if refresh or self._local is None:
                self._local = discovery.scan_folders(self.dirs)
            entries = list(self._local)
            if with_hub:
                if refresh or self._hub is None:
                    self._hub = discovery.scan_hf_cache(self.hf_cache)
                local = {entry.path.resolve() for entry in entries}
                entries += [entry for entry in self._hub if entry.path.resolve() not in local]
        return discovery.sort_entries(entries)

    def find(self, name: str, kinds: tuple[str, ...] = ()) -> ModelEntry | None:
        """A scanned entry by name, file name, stem or hash prefix (of files hashed before); hashes nothing."""
        with_hub = not kinds or CHECKPOINT in kinds  # the hub cache holds only pipelines
        return discovery.find(name, self.scan(hf_cache=with_hub), self.hashes, kinds)

    def resolve(self, name: str, kind: str = CHECKPOINT) -> ModelRef:
        """`name` as a path, a file or folder in one of `dirs`, or a scanned model, hashed.

        A miss in a scan made earlier walks the folders again before giving up:
        the user may have just dropped the file in.
        """
        walked_before = self._local is not None  # else the lookup below walks for the first time
        found = self._locate(name, kind)
        if found is None and walked_before:
            self.scan(hf_cache=self._wants_hub(kind), refresh=True)
            found = self._locate(name, kind)
        if found is None:
            raise ModelNotFound(f"{kind} {name!r} not found (looked in: {self.looked_in(name, kind)})")
        found_name, path = found
        return model_ref(found_name, path, kind, self.hashes)

    def defaults(self, model: str) -> dict[str, Any]:
        """The recipe fields `model` recommends (its folder's studio.toml); {} if none.

        Hashes nothing. A path or a folder in `dirs` is read at once; a name known only
        from a scan walks the folders if no scan is kept yet (once, as `scan` does).
        """
        found = self._locate(model, CHECKPOINT)
        if not found:
            return {}
        return {**architecture_defaults(found[1]), **cascade_defaults(found[1]), **model_defaults(found[1])}

    def locate(self, name: str, kind: str = CHECKPOINT) -> Path | None:
        """The file or folder `name` means, without hashing it; None if there is none."""
        found = self._locate(name, kind)
        return found[1] if found else None

    def samplers(self, model: str) -> tuple[str, ...] | None:
        """The sampler names `model` can use (flow matching: a few); None: every A1111 sampler. Hashes nothing.

        A model with its own scheduler (Stable Cascade) offers the default name alone: it uses none."""
        found = self._locate(model, CHECKPOINT)
        if found is None:
            return None
        config = scheduler_config_for(found[1])
        return (DEFAULT_SAMPLER,) if own_scheduler(config) else samplers_for(config)

    def own_scheduler(self, model: str) -> str:
        """The scheduler `model` always samples with, by name (Stable Cascade's); "" where the sampler applies."""
        found = self._locate(model, CHECKPOINT)
        return own_scheduler(scheduler_config_for(found[1])) if found else ""

    def tokenizer_folder(self, model: str) -> Path | None:
        """The CLIP tokenizer files `model`'s first text encoder uses, for counting tokens; hashes nothing.

        A diffusers folder's own `tokenizer/`; for a single file, the first of
        `tokenizer_dirs` that holds a vocabulary; else None (the count is hidden).
        """
        found = self._locate(model, CHECKPOINT)
        candidates = [found[1] / "tokenizer"] if found and found[1].is_dir() else list(self.tokenizer_dirs)
        for folder in candidates:
            if (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file():
                return folder
        return None

    def looked_in(self, name: str, kind: str = CHECKPOINT) -> str:
        """The places a lookup of `name` searches, each once, for messages."""
        places = [str(Path(name).expanduser())] if looks_like_path(name) else []
        places += [str(folder) for folder in self.dirs]
        if self._wants_hub(kind):
            places.append(f"the Hugging Face cache ({self.hf_cache})")
        return ", ".join(dict.fromkeys(places))

    def _wants_hub(self, kind: str) -> bool:
        return kind == CHECKPOINT and self.use_hf_cache

    def _locate(self, name: str, kind: str) -> tuple[str, Path] | None:
        """(name to record, path) of a model, without hashing it."""
        for path in (Path(name).expanduser(), *(folder / name for folder in self.dirs)):
            if (path / "model_index.json").is_file() or path.is_file():
                return name_for(name, path), path
        entry = self.find(name, (CHECKPOINT, UNKNOWN) if kind == CHECKPOINT else (kind,))
        return (entry.name, entry.path) if entry else None


def _unique(folders: Iterable[Path]) -> tuple[Path, ...]:
    """The folders with ~ expanded, in order, each place once (however it was spelled)."""
    kept: dict[Path, Path] = {}
    for folder in folders:
        folder = Path(folder).expanduser()
        kept.setdefault(folder.resolve(), folder)
    return tuple(kept.values())

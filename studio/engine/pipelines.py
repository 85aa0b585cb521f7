"""A small LRU cache of loaded pipelines, owned by the worker thread."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.models import ModelRef
from studio.models.hashing import identity
from studio.recipe import Recipe


@dataclass
class LoadedPipeline:
    pipe: Any
    ref: ModelRef
    base_scheduler_config: Any  # the model's own config; every sampler starts from it
    projection: Any = None  # LatentProjection, made on first preview
    projection_tried: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


def cache_key(path: Path | str, recipe: Recipe, device: str, dtype: str) -> tuple:
    """Everything that changes the loaded weights or their placement.

    The model by its files' identity, not its hash: equal identities mean equal
    hashes, and a new model's hash is computed beside its load (engine/model_hash.py).
    """
    return (
        identity(path),
        device,
        dtype,
        recipe.vae,
        recipe.attention_slicing,
        recipe.vae_tiling,
        recipe.cpu_offload,
        recipe.sequential_offload,
        recipe.allow_pickle,
        recipe.safety_checker,
        recipe.text_encoders,
        recipe.t5,
    )


class PipelineCache:
    """At most `size` pipelines stay loaded; the least recently used goes first."""

    def __init__(self, loader: Callable[..., Any], size: int = 1) -> None:
        if size < 1:
            raise ValueError("the pipeline cache holds at least one pipeline")
        self._loader = loader
        self._size = size
        self._entries: OrderedDict[tuple, LoadedPipeline] = OrderedDict()
        self.loads = 0  # how many times a pipeline was loaded, for tests and benches

    def __contains__(self, key: tuple) -> bool:
        return key in self._entries

    def get(self, key: tuple, ref: ModelRef, recipe: Recipe, device: str, dtype: str) -> LoadedPipeline:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        while len(self._entries) >= self._size:
            self._evict_oldest()
        pipe = self._loader(ref, device, dtype, recipe)
        self.loads += 1
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)  # we report progress ourselves
        loaded = LoadedPipeline(pipe, ref, dict(pipe.scheduler.config))
        self._entries[key] = loaded
        return loaded

    def clear(self) -> None:
        """Drop every pipeline (at shutdown). Only accelerator memory is collected for: the
        process's RAM is the process's, and a full `gc.collect()` over torch's and diffusers'
        objects costs half a CPU second at every `studio generate` exit."""
        devices = {key[1] for key in self._entries}
        self._entries.clear()
        if any(not device.startswith("cpu") for device in devices):
            free_accelerator_memory()

    def _evict_oldest(self) -> None:
        _, loaded = self._entries.popitem(last=False)
        del loaded
        free_accelerator_memory()


def free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

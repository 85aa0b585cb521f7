"""What `studio generate` does not pay for: work done twice, or done where nothing needs it."""

from __future__ import annotations

from pathlib import Path

from studio.engine import pipelines
from studio.engine.pipelines import PipelineCache
from studio.models.resolve import ModelRef
from studio.recipe import Recipe


class _Pipe:
    scheduler = type("S", (), {"config": {}})()


def _cache_with(device: str) -> PipelineCache:
    cache = PipelineCache(lambda ref, device, dtype, recipe: _Pipe())
    ref = ModelRef("m", Path("m"), "single_file", "")
    cache.get(("m", device, "float32"), ref, Recipe(prompt="x"), device, "float32")
    return cache


def test_shutdown_collects_only_for_accelerator_memory(monkeypatch) -> None:
    freed: list[str] = []
    monkeypatch.setattr(pipelines, "free_accelerator_memory", lambda: freed.append("freed"))
    cpu = _cache_with("cpu")
    cpu.clear()
    assert freed == [] and "m" not in [key[0] for key in cpu._entries]  # a CPU pipeline: no gc pass at exit
    cuda = _cache_with("cuda:0")
    cuda.clear()
    assert freed == ["freed"] and not cuda._entries  # CUDA memory is still handed back

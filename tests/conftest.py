"""Shared test setup: offline, single-threaded, tiny seeded models.

Sockets are blocked for the whole session (pytest-socket, see pyproject), so an
accidental hub download fails loudly instead of hanging or passing by luck.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before anything imports huggingface_hub, diffusers or studio's config.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """No test reads or writes the real user's config, caches or sessions."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("STUDIO_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf-hub"))  # the user's hub models must not leak in
    monkeypatch.delenv("STUDIO_SESSIONS_DIR", raising=False)


@pytest.fixture(autouse=True)
def _background_imports_done():
    """A CLI run inside the test process starts importing diffusers on a thread (studio.engine.warmup)
    and may return before it is done; the next test must not import diffusers beside that thread."""
    yield
    import sys

    warmup = sys.modules.get("studio.engine.warmup")
    if warmup is not None:
        warmup.wait_for_background(timeout=300)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # Two cores shared with other work: oversubscribed OpenMP spins and crawls.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny seeded diffusers pipeline folder (built once per test session)."""
    from tests.tiny_pipeline import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip)

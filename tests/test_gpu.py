"""CUDA paths; skipped cleanly on machines without a GPU."""

import queue

import pytest

from studio.engine import LocalEngine, events as ev
from studio.recipe import Recipe

pytestmark = pytest.mark.gpu


def test_auto_device_is_cuda_in_half_precision():
    from studio.engine.device import resolve_device

    device, dtype = resolve_device()
    assert device == "cuda" and dtype in ("bfloat16", "float16")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_engine_generates_on_cuda_reproducibly(dtype, tiny_model_dir, tmp_path):
    import numpy as np
    from PIL import Image

    inbox: queue.Queue = queue.Queue()
    engine = LocalEngine(inbox.put)
    recipe = Recipe(prompt="a dot", model=str(tiny_model_dir), steps=4, width=64, height=64, seed=3,
                    device="cuda", dtype=dtype)
    paths = []
    for stem in ("a", "b"):
        job = engine.submit(recipe, tmp_path, stem)
        while True:
            event = inbox.get(timeout=120)
            assert not isinstance(event, ev.Failed), event.reason
            if isinstance(event, ev.Finished) and event.job_id == job:
                assert event.recipe.device == "cuda" and event.recipe.dtype == dtype
                paths.append(event.paths[0])
                break
    engine.shutdown()
    a, b = (np.asarray(Image.open(p)) for p in paths)
    assert np.array_equal(a, b)

"""A model's hash is read once, beside its load, and the pipeline cache keys on the files' identity."""

from __future__ import annotations

import os
import threading
import time

import pytest

from studio.engine import LocalEngine, events as ev
from studio.models import hashing
from studio.models.hashing import HashCache, folder_hash, identity
from studio.models.library import ModelLibrary
from tests.test_engine import engine_factory, plain_save, recipe_for, Recorder  # noqa: F401 (fixture)


def test_two_threads_asking_for_one_files_hash_read_it_once(tmp_path, monkeypatch):
    model = tmp_path / "m.safetensors"
    model.write_bytes(os.urandom(1 << 16))
    reads = []
    real = hashing.sha256_file

    def slow(path, progress=None, skip=0):
        reads.append(path)
        time.sleep(0.3)  # long enough that the second thread asks while the first reads
        return real(path, progress, skip)

    monkeypatch.setattr(hashing, "sha256_file", slow)
    cache = HashCache(tmp_path / "hashes.json")
    digests = []
    threads = [threading.Thread(target=lambda: digests.append(cache.sha256(model))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1
    assert digests == [real(model)] * 3
    assert HashCache(tmp_path / "hashes.json").cached(model) == real(model)  # and it was saved


def test_a_failed_hash_lets_the_waiting_thread_try_itself(tmp_path, monkeypatch):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    real, calls = hashing.sha256_file, []

    def flaky(path, progress=None, skip=0):
        calls.append(path)
        if len(calls) == 1:
            time.sleep(0.3)
            raise OSError("read error")
        return real(path, progress, skip)

    monkeypatch.setattr(hashing, "sha256_file", flaky)
    cache = HashCache(tmp_path / "hashes.json")
    failed = []
    first = threading.Thread(target=lambda: failed.append(pytest.raises(OSError, cache.sha256, model)))
    first.start()
    time.sleep(0.1)
    assert cache.sha256(model) == real(model)
    first.join()
    assert len(calls) == 2 and failed


def test_identity_changes_with_the_files_and_only_then(tmp_path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"one")
    folder = tmp_path / "pipe"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    weights = folder / "unet" / "w.safetensors"
    weights.write_bytes(b"a")
    before = identity(model), identity(folder)
    assert before == (identity(model), identity(folder))
    (folder / "notes.md").write_text("not part of the hash")
    assert identity(folder) == before[1]
    model.write_bytes(b"two!")
    weights.write_bytes(b"bb")
    assert identity(model) != before[0] and identity(folder) != before[1]


def _library_hashing_only_after(event: threading.Event, failure: str, tmp_path, monkeypatch) -> ModelLibrary:
    """A library with an empty hash cache whose file hashing waits for `event`, failing with `failure` after 20 s."""
    real = hashing.sha256_file

    def once_it_is_set(path, progress=None, skip=0):
        if not event.wait(20):
            raise OSError(failure)
        return real(path, progress, skip)

    monkeypatch.setattr(hashing, "sha256_file", once_it_is_set)
    return ModelLibrary(use_hf_cache=False, hashes=HashCache(tmp_path / "hashes.json"))


def test_a_new_models_hash_is_read_beside_its_load_not_before(engine_factory, tiny_model_dir, tmp_path, monkeypatch):
    """The hash waits until the load has begun: were it on the load's path, the job would fail."""
    from studio.models.loading import load_pipeline_for_recipe

    loading = threading.Event()
    library = _library_hashing_only_after(loading, "hashed before the load began", tmp_path, monkeypatch)

    def loader(ref, device, dtype, recipe):
        assert ref.path == tiny_model_dir.resolve()
        loading.set()
        return load_pipeline_for_recipe(ref, device, dtype, recipe, library)

    engine, rec = engine_factory(loader=loader, library=library)
    job = engine.submit(recipe_for(tiny_model_dir, steps=1), tmp_path)
    done = rec.until(ev.Finished, job, timeout=120)
    expected = folder_hash(tiny_model_dir, HashCache(tmp_path / "fresh.json"))
    assert done.recipe.model_hash == expected
    again = engine.submit(recipe_for(tiny_model_dir, steps=1), tmp_path)
    assert rec.until(ev.Finished, again, timeout=120).recipe.model_hash == expected
    assert engine.pipeline_loads == 1  # the same files: the cached pipeline


def test_a_changed_model_is_loaded_again(engine_factory, tiny_model_dir, tmp_path):
    import shutil

    model = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, model)
    engine, rec = engine_factory()
    first = engine.submit(recipe_for(model, steps=1), tmp_path)
    hash_before = rec.until(ev.Finished, first, timeout=120).recipe.model_hash
    (model / "model_index.json").write_text((model / "model_index.json").read_text() + "\n")
    second = engine.submit(recipe_for(model, steps=1), tmp_path)
    assert rec.until(ev.Finished, second, timeout=120).recipe.model_hash != hash_before
    assert engine.pipeline_loads == 2


def test_a_new_models_hash_is_waited_for_only_when_the_image_is_saved(tiny_model_dir, tmp_path, monkeypatch):
    """Sampling starts while the hash is still being read: were the hash waited for before it, the job would fail."""
    sampling = threading.Event()
    library = _library_hashing_only_after(sampling, "the hash held up the sampling", tmp_path, monkeypatch)
    rec = Recorder()

    def listener(event):
        if isinstance(event, ev.Progress):
            sampling.set()
        rec(event)

    engine = LocalEngine(listener, saver=plain_save, library=library)
    try:
        job = engine.submit(recipe_for(tiny_model_dir, steps=2), tmp_path)
        started = rec.until(ev.Started, job, timeout=120)
        done = rec.until(ev.Finished, job, timeout=120)
    finally:
        engine.shutdown()
    assert started.recipe.model_hash == ""  # not known yet when sampling began
    assert done.recipe.model_hash == folder_hash(tiny_model_dir, HashCache(tmp_path / "fresh.json"))

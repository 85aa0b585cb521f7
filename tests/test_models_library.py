"""Discovery (plain, A1111, ComfyUI, HF cache), AutoV2 hashing with its cache, resolve()."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from studio.cli import main
from studio.models import ModelNotFound, resolve
from studio.models.discovery import scan
from studio.models.hashing import HashCache, autov2, lora_hash
from tests import models_fixtures as mf


def test_autov2_is_sha256_prefix_and_cached_by_size_and_mtime(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"x" * (3 << 20))
    calls = []
    cache = HashCache(tmp_path / "cache" / "hashes.json")
    digest = autov2(path, progress=lambda done, total: calls.append((done, total)), cache=cache)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    assert calls[-1] == (3 << 20, 3 << 20) and len(calls) == 3  # one call per MB

    calls.clear()
    fresh = HashCache(tmp_path / "cache" / "hashes.json")  # read back from disk
    assert autov2(path, progress=lambda *a: calls.append(a), cache=fresh) == digest
    assert calls == []

    path.write_bytes(b"y" * (3 << 20))
    os.utime(path, ns=(1, 1))  # same size, different mtime: hashed again
    assert autov2(path, cache=fresh) == hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def test_damaged_hash_cache_is_ignored(tmp_path):
    cache_file = tmp_path / "hashes.json"
    cache_file.write_text("{not json")
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    assert HashCache(cache_file).sha256(path) == hashlib.sha256(b"abc").hexdigest()
    assert json.loads(cache_file.read_text())["version"] == 1


def test_lora_hash_skips_the_header(tmp_path):
    path = mf.write_header_only(tmp_path / "l.safetensors", mf.kohya_lora_spec(rank=2))
    raw = path.read_bytes()
    data = raw[8 + int.from_bytes(raw[:8], "little"):]
    assert lora_hash(path) == hashlib.sha256(data).hexdigest()[:12]


def _a1111(root):
    models = root / "models"
    for sub in ("Stable-diffusion", "Lora", "VAE"):
        (models / sub).mkdir(parents=True)
    (root / "embeddings").mkdir()
    (root / "repositories" / "code").mkdir(parents=True)
    mf.write_header_only(models / "Stable-diffusion" / "dreamy.safetensors", mf.sd1_spec())
    mf.write_header_only(models / "Lora" / "mychar.safetensors", mf.kohya_lora_spec(), mf.kohya_lora_metadata())
    mf.write_header_only(models / "VAE" / "clear.safetensors", mf.vae_spec())
    mf.write_header_only(root / "embeddings" / "badhands.safetensors", mf.embedding_spec())
    (models / "Stable-diffusion" / "old.ckpt").write_bytes(b"not opened")
    (root / "repositories" / "code" / "ignored.ckpt").write_bytes(b"x")


def test_scan_a1111_comfyui_and_hf_cache(tmp_path, monkeypatch):
    _a1111(tmp_path / "a1111")
    comfy = tmp_path / "ComfyUI" / "models"
    for sub in ("checkpoints", "loras", "vae", "embeddings"):
        (comfy / sub).mkdir(parents=True)
    mf.write_header_only(comfy / "checkpoints" / "xl.safetensors", mf.sdxl_spec())
    # A LoRA filed among checkpoints is still a LoRA: the header decides.
    mf.write_header_only(comfy / "checkpoints" / "misfiled.safetensors", mf.peft_lora_spec())
    hub = tmp_path / "hub"
    snap = hub / "models--org--tiny-pipe" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))

    entries = {e.name: e for e in scan([tmp_path / "a1111", tmp_path / "ComfyUI"])}
    got = {name: (e.kind, e.architecture) for name, e in entries.items()}
    assert got == {
        "dreamy": ("checkpoint", "SD1.x"),
        "old": ("checkpoint", "pickle (not opened)"),
        "mychar": ("LoRA", "SD1.x LoRA (kohya)"),
        "clear": ("VAE", "SD/SDXL VAE (4-channel)"),
        "badhands": ("embedding", "SD1.x textual inversion"),
        "xl": ("checkpoint", "SDXL base"),
        "misfiled": ("LoRA", "SD1.x LoRA (PEFT)"),
        "org/tiny-pipe": ("checkpoint", "SD1.x"),
    }
    assert entries["dreamy"].dtype == "F16" and entries["dreamy"].size > 0


def test_cli_models_lists_with_hashes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    _a1111(tmp_path / "a1111")
    assert main(["models", "--dir", str(tmp_path / "a1111")]) == 0
    out = capsys.readouterr().out
    lora = tmp_path / "a1111" / "models" / "Lora" / "mychar.safetensors"
    line = next(line for line in out.splitlines() if line.startswith("mychar"))
    assert "LoRA" in line and hashlib.sha256(lora.read_bytes()).hexdigest()[:10] in line
    assert main(["models", "--dir", str(tmp_path / "a1111"), "--kind", "VAE", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["clear"]


def test_resolve_by_name_stem_and_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    _a1111(tmp_path / "a1111")
    root = (tmp_path / "a1111",)
    ref = resolve("dreamy", root)
    assert (ref.format, ref.path.name, len(ref.hash)) == ("single_file", "dreamy.safetensors", 10)
    assert resolve(ref.hash[:8], root).path == ref.path
    assert resolve(str(ref.path)).name == "dreamy"
    lora = resolve("mychar", root, kind="LoRA")
    assert lora.kind == "LoRA" and len(lora.hash) == 12
    with pytest.raises(ModelNotFound, match="not found"):
        resolve("mychar", root)  # a LoRA is not a checkpoint


def test_prepare_extras_resolves_and_hashes(tmp_path, monkeypatch):
    from studio.models.extras import prepare_extras
    from studio.recipe import LoraRef, Recipe

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    _a1111(tmp_path / "a1111")
    root = (tmp_path / "a1111",)
    recipe = Recipe(prompt="<lora:mychar:0.7> a cat, badhands", vae="clear", loras=(LoraRef("mychar", 1.0),))
    extras = prepare_extras(recipe, root)
    lora_file = tmp_path / "a1111" / "models" / "Lora" / "mychar.safetensors"
    assert extras.prompt == "a cat, badhands"
    assert [(ref.path, weight) for ref, weight in extras.loras] == [(lora_file.resolve(), 0.7)]
    assert extras.recipe.loras == (LoraRef("mychar", 0.7, lora_hash(lora_file)),)
    assert extras.recipe.embeddings == ("badhands",) and len(extras.embedding_hashes["badhands"]) == 12
    assert extras.recipe.vae_hash == extras.vae.hash and len(extras.vae.hash) == 10
    assert extras.recipe.prompt == recipe.prompt  # kept as typed, like A1111
    with pytest.raises(ModelNotFound, match="LoRA 'nope'"):
        prepare_extras(Recipe(prompt="<lora:nope>"), root)


def test_model_library_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, studio.models, studio.models.inspect, studio.models.discovery, studio.models.loading,"
        " studio.models.extras, studio.models.hashing, studio.cli.models, studio.cli.inspect\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

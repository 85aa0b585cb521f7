"""The model library: discovery (plain, A1111, ComfyUI, HF cache), AutoV2 hashing with its cache,
resolving names, and the library walking its folders once."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from studio.builtin import BUILTIN_DIR
from studio.cli import main
from studio.config import Config
from studio.models import ModelLibrary, ModelNotFound
from studio.models import discovery
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


def test_scan_a1111_comfyui_and_hf_cache(tmp_path):
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

    library = ModelLibrary([tmp_path / "a1111", tmp_path / "ComfyUI"], hf_cache=hub)
    entries = {e.name: e for e in library.scan() if e.source != str(BUILTIN_DIR)}
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


def test_cli_models_lists_with_hashes(tmp_path, capsys):
    _a1111(tmp_path / "a1111")
    assert main(["models", "--dir", str(tmp_path / "a1111")]) == 0
    out = capsys.readouterr().out
    lora = tmp_path / "a1111" / "models" / "Lora" / "mychar.safetensors"
    line = next(line for line in out.splitlines() if line.startswith("mychar"))
    assert "LoRA" in line and hashlib.sha256(lora.read_bytes()).hexdigest()[:10] in line
    assert main(["models", "--dir", str(tmp_path / "a1111"), "--kind", "VAE", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["clear"]


def test_resolve_by_name_stem_and_hash(tmp_path):
    _a1111(tmp_path / "a1111")
    library = ModelLibrary([tmp_path / "a1111"], hf_cache=tmp_path / "no-hub")
    ref = library.resolve("dreamy")
    assert (ref.format, ref.path.name, len(ref.hash)) == ("single_file", "dreamy.safetensors", 10)
    assert library.resolve(ref.hash[:8]).path == ref.path
    assert library.resolve(str(ref.path)).name == "dreamy"
    lora = library.resolve("mychar", kind="LoRA")
    assert lora.kind == "LoRA" and len(lora.hash) == 12
    with pytest.raises(ModelNotFound, match="not found"):
        library.resolve("mychar")  # a LoRA is not a checkpoint
    builtin = library.resolve("studio-tiny")
    assert (builtin.name, builtin.format, builtin.path) == ("studio-tiny", "diffusers", (BUILTIN_DIR / "studio-tiny"))


def test_prepare_extras_resolves_and_hashes(tmp_path):
    from studio.models.extras import prepare_extras
    from studio.recipe import LoraRef, Recipe

    _a1111(tmp_path / "a1111")
    library = ModelLibrary([tmp_path / "a1111"], hf_cache=tmp_path / "no-hub")
    recipe = Recipe(prompt="<lora:mychar:0.7> a cat, badhands", vae="clear", loras=(LoraRef("mychar", 1.0),))
    extras = prepare_extras(recipe, library)
    lora_file = tmp_path / "a1111" / "models" / "Lora" / "mychar.safetensors"
    assert extras.prompt == "a cat, badhands"
    assert [(ref.path, weight) for ref, weight in extras.loras] == [(lora_file.resolve(), 0.7)]
    assert extras.recipe.loras == (LoraRef("mychar", 0.7, lora_hash(lora_file)),)
    assert extras.recipe.embeddings == ("badhands",) and len(extras.embedding_hashes["badhands"]) == 12
    assert extras.recipe.vae_hash == extras.vae.hash and len(extras.vae.hash) == 10
    assert extras.recipe.prompt == recipe.prompt  # kept as typed, like A1111
    with pytest.raises(ModelNotFound, match="LoRA 'nope'"):
        prepare_extras(Recipe(prompt="<lora:nope>"), library)


# --- the library: built from what it is given, walked once --------------------------------


def _count_walks(monkeypatch) -> dict[str, int]:
    """How often the library walks a model folder and the HF cache."""
    walks = {"folders": 0, "hub": 0}
    candidates, hub_models = discovery._candidates, discovery.hf_cache_models

    def counted_candidates(root):
        walks["folders"] += 1
        return candidates(root)

    def counted_hub(cache):
        walks["hub"] += 1
        return hub_models(cache)

    monkeypatch.setattr(discovery, "_candidates", counted_candidates)
    monkeypatch.setattr(discovery, "hf_cache_models", counted_hub)
    return walks


def test_folders_are_walked_once_across_many_resolves(tmp_path, monkeypatch):
    from studio.models.extras import prepare_extras
    from studio.recipe import Recipe

    _a1111(tmp_path / "a1111")
    walks = _count_walks(monkeypatch)
    library = ModelLibrary([tmp_path / "a1111", tmp_path / "elsewhere"], hf_cache=tmp_path / "no-hub")
    assert walks == {"folders": 0, "hub": 0}  # building a library walks nothing
    for _ in range(5):
        library.resolve("dreamy")
        library.resolve("mychar", kind="LoRA")
        prepare_extras(Recipe(prompt="<lora:mychar> a cat, badhands", vae="clear"), library)
        library.scan()
        library.defaults("dreamy")
    assert walks == {"folders": len(library.dirs), "hub": 1}
    library.scan(refresh=True)
    assert walks == {"folders": 2 * len(library.dirs), "hub": 2}


def test_a_miss_rescans_once_and_finds_a_file_dropped_in_later(tmp_path, monkeypatch):
    _a1111(tmp_path / "a1111")
    library = ModelLibrary([tmp_path / "a1111"], hf_cache=tmp_path / "no-hub")
    assert library.resolve("dreamy").name == "dreamy"
    walks = _count_walks(monkeypatch)
    later = tmp_path / "a1111" / "models" / "Stable-diffusion" / "sub" / "later.safetensors"
    later.parent.mkdir()
    mf.write_header_only(later, mf.sd2_spec())
    ref = library.resolve("later")
    assert (ref.name, ref.path) == ("later", later.resolve())
    assert walks["folders"] == len(library.dirs)  # one rescan
    assert library.resolve("later").path == ref.path
    assert walks["folders"] == len(library.dirs)  # now in the kept scan: no walk

    with pytest.raises(ModelNotFound):
        library.resolve("never-there")
    assert walks["folders"] == 2 * len(library.dirs)  # a real miss rescans once, then gives up

    fresh = ModelLibrary([tmp_path / "a1111"], hf_cache=tmp_path / "no-hub")
    walks["folders"] = 0
    with pytest.raises(ModelNotFound):
        fresh.resolve("never-there")
    assert walks["folders"] == len(fresh.dirs)  # a scan made just now is not made again


def test_not_found_lists_each_place_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "x").mkdir()
    # One folder, spelled four ways: configured, with `..`, with `~`, and as sessions/../models.
    config = Config(sessions_dir=tmp_path / "sessions", model_dirs=[tmp_path / "models", tmp_path / "x" / ".." / "models"])
    library = ModelLibrary.from_config(config, extra_dirs=[Path("~/models"), BUILTIN_DIR])
    assert library.dirs == (BUILTIN_DIR, tmp_path / "models")
    with pytest.raises(ModelNotFound) as info:
        library.resolve("ghost")
    looked = str(info.value).split("(looked in: ", 1)[1].removesuffix(")").split(", ")
    assert looked == [str(BUILTIN_DIR), str(tmp_path / "models"), f"the Hugging Face cache ({library.hf_cache})"]
    with pytest.raises(ModelNotFound) as info:
        library.resolve("ghost.safetensors", kind="VAE")  # the hub cache holds no VAEs: not named
    looked = str(info.value).split("(looked in: ", 1)[1].removesuffix(")").split(", ")
    assert looked == ["ghost.safetensors", str(BUILTIN_DIR), str(tmp_path / "models")]


def test_from_config_takes_the_config_and_reads_no_file(tmp_path, monkeypatch):
    import studio.config

    def no_reading(*args, **kwargs):
        raise AssertionError("the model library read the user's config itself")

    monkeypatch.setattr(studio.config, "load_config", no_reading)
    _a1111(tmp_path / "a1111")
    config = Config(sessions_dir=tmp_path / "s" / "sessions", model_dirs=[tmp_path / "a1111"])
    library = ModelLibrary.from_config(config, extra_dirs=[tmp_path / "extra"], tokenizer_dir=tmp_path / "tok")
    assert library.dirs == (BUILTIN_DIR, tmp_path / "extra", tmp_path / "a1111", tmp_path / "s" / "models")
    assert library.tokenizer_dirs == (tmp_path / "tok",)
    assert library.resolve("dreamy").name == "dreamy"
    assert library.scan() and library.defaults("studio-tiny")["steps"] == 20


def test_no_load_config_or_studio_variables_in_the_model_library():
    import studio.models

    package = Path(studio.models.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "load_config" not in text, source.name
        assert "STUDIO_TOKENIZER_DIR" not in text, source.name
        for line in text.splitlines():
            # A function-level studio.models import would be hiding a cycle.
            indented = line.startswith(" ") and line.strip().startswith(("from studio.models", "import studio.models"))
            assert not indented, (source.name, line)


def test_model_modules_import_each_other_without_a_cycle():
    import ast

    import studio.models

    package = Path(studio.models.__file__).parent
    graph: dict[str, set[str]] = {}
    for source in package.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("studio.models"):
                names = [node.module] if node.module != "studio.models" else [f"studio.models.{a.name}" for a in node.names]
                imported.update(name.split(".")[2] for name in names if name.count(".") >= 2)
        graph[source.stem] = imported - {source.stem}
    graph.pop("__init__")

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m, set())] == []
    assert "resolve" in graph["library"] and "discovery" in graph["library"]


class _NoHashing(HashCache):
    def _digest(self, path, field, skip, progress):
        raise AssertionError(f"hashed {path}")


def test_defaults_hash_nothing(tmp_path):
    _a1111(tmp_path / "a1111")
    pipe = tmp_path / "mine" / "mypipe"
    pipe.mkdir(parents=True)
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (pipe / "studio.toml").write_text('steps = 12\ncfg = 4.5\nsampler = "Euler a"\n')
    hub = tmp_path / "hub"
    snap = hub / "models--org--hub-pipe" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (snap / "studio.toml").write_text("width = 768\nheight = 768\n")
    library = ModelLibrary([tmp_path / "a1111", tmp_path / "mine"], hf_cache=hub, hashes=_NoHashing(tmp_path / "h.json"))

    assert library.defaults("studio-tiny") == {
        "steps": 20, "cfg_scale": 7.0, "sampler": "DPM++ 2M Karras", "width": 64, "height": 64,
    }
    assert library.defaults("mypipe") == {"steps": 12, "cfg_scale": 4.5, "sampler": "Euler a"}
    assert library.defaults(str(pipe)) == library.defaults("mypipe")
    assert library.defaults("org/hub-pipe") == {"width": 768, "height": 768}
    assert library.defaults("dreamy") == {}  # a single file carries no studio.toml
    assert library.defaults("ghost") == {}
    with pytest.raises(AssertionError, match="hashed"):
        library.resolve("dreamy")  # the spy does catch hashing


def test_model_library_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, studio.models, studio.models.inspect, studio.models.discovery, studio.models.loading,"
        " studio.models.extras, studio.models.hashing, studio.models.library, studio.models.tokenizers,"
        " studio.cli.models, studio.cli.inspect\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tokenizer_folder_is_the_models_own_or_the_configured_one(tiny_model_dir, tmp_path):
    from studio.builtin import BUILTIN_DIR, DEFAULT_MODEL
    from studio.models.library import ModelLibrary

    single = tmp_path / "one.safetensors"
    single.write_bytes(b"")  # located by path only; nothing reads it
    words = tmp_path / "words"
    words.mkdir()
    library = ModelLibrary(use_hf_cache=False)
    assert library.tokenizer_folder(str(tiny_model_dir)) == tiny_model_dir / "tokenizer"
    assert library.tokenizer_folder(DEFAULT_MODEL) == BUILTIN_DIR / DEFAULT_MODEL / "tokenizer"
    assert library.tokenizer_folder(str(single)) is None  # nothing to count with: no count, not a wrong one
    (words / "vocab.json").write_text("{}")
    assert ModelLibrary(use_hf_cache=False, tokenizer_dirs=[words]).tokenizer_folder(str(single)) == words

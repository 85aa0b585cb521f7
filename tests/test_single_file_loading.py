"""Single-file checkpoints load offline against local configs, LoRAs/embeddings/VAE apply,
and pickles never run code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.models.loading import (
    CONFIGS_DIR,
    LoadError,
    apply_loras,
    explain_oom,
    load_embeddings,
    load_pipeline,
    load_vae,
    unload_loras,
)
from studio.builtin import BUILTIN_DIR
from studio.models import ModelLibrary
from studio.models.pickles import PickleRefused
from studio.models.resolve import ModelRef
from studio.models.tokenizers import TokenizerMissing, bpe_from_simple_vocab
from tests import models_fixtures as mf

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tiny_single(tiny_model_dir, tmp_path_factory):
    return mf.build_tiny_single_file(tiny_model_dir, tmp_path_factory.mktemp("single"))


def _ref(path: Path) -> ModelRef:
    return ModelRef(path.stem, path, "single_file", "0000000000")


def _image(pipe, prompt="a red cat", steps=2):
    import torch

    pipe.set_progress_bar_config(disable=True)
    return pipe(
        prompt, num_inference_steps=steps, height=64, width=64,
        generator=torch.Generator().manual_seed(1), output_type="np",
    ).images[0]


def test_single_file_matches_the_diffusers_folder(tiny_single, tiny_model_dir):
    import numpy as np

    checkpoint, config, tokenizer = tiny_single
    pipe = load_pipeline(_ref(checkpoint), "cpu", "float32", config_dir=config, tokenizer_dir=tokenizer)
    folder = load_pipeline(ModelRef("tiny", tiny_model_dir, "diffusers", ""), "cpu", "float32")
    for name in ("unet", "vae", "text_encoder"):
        mine, theirs = getattr(pipe, name).state_dict(), getattr(folder, name).state_dict()
        assert mine.keys() == theirs.keys()
        assert all((mine[k] == theirs[k]).all() for k in mine), name
    assert np.array_equal(_image(pipe), _image(folder))


def test_sdxl_single_file_matches_the_diffusers_folder(tmp_path_factory):
    import numpy as np
    from diffusers import StableDiffusionXLPipeline

    folder = mf.build_tiny_sdxl_pipeline(tmp_path_factory.mktemp("xl") / "tiny-sdxl")
    checkpoint, config, tokenizer = mf.build_tiny_single_file(folder, tmp_path_factory.mktemp("xl-single"))
    pipe = load_pipeline(_ref(checkpoint), "cpu", "float32", config_dir=config, tokenizer_dir=tokenizer)
    assert isinstance(pipe, StableDiffusionXLPipeline) and pipe.tokenizer_2.pad_token == "!"
    reference = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        mine, theirs = getattr(pipe, name).state_dict(), getattr(reference, name).state_dict()
        assert mine.keys() == theirs.keys()
        assert all((mine[k] == theirs[k]).all() for k in mine), name
    assert np.allclose(_image(pipe), _image(reference), atol=1e-5)


def test_sdxl_single_file_with_both_real_bpe_tokenizers(tmp_path_factory):
    """An SDXL single file whose two tokenizers share a real-format CLIP BPE (learnt here):
    both load from the one vocab.json/merges.txt pair, merge words, keep their own padding,
    and tokenize and draw like the diffusers folder."""
    import numpy as np
    from diffusers import StableDiffusionXLPipeline

    from studio.models.tokenizers import bytes_to_unicode
    from tests.test_tokenizers import CORPUS, learn_bpe

    merges = learn_bpe(CORPUS, 200)
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(a + b for a, b in merges), "<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    folder = mf.build_tiny_sdxl_pipeline(tmp_path_factory.mktemp("xl-bpe") / "tiny-sdxl", bpe=(vocab, merges))
    checkpoint, config, tokenizer = mf.build_tiny_single_file(folder, tmp_path_factory.mktemp("xl-bpe-single"))
    assert len((tokenizer / "merges.txt").read_text().splitlines()) == 201  # the version line, then the pairs
    library = ModelLibrary(tokenizer_dirs=[tokenizer], hf_cache=tmp_path_factory.mktemp("no-hub"))
    pipe = load_pipeline(_ref(checkpoint), "cpu", "float32", config_dir=config, tokenizer_dirs=library.tokenizer_dirs)
    reference = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    assert isinstance(pipe, StableDiffusionXLPipeline)
    assert pipe.tokenizer.pad_token == "<|endoftext|>" and pipe.tokenizer_2.pad_token == "!"
    prompt = "the quick brown fox"
    for name in ("tokenizer", "tokenizer_2"):
        ids = getattr(pipe, name)(prompt).input_ids
        assert ids == getattr(reference, name)(prompt).input_ids, name
        assert len(ids) < len(prompt.replace(" ", "")) + 2, name  # merged into words, not letters
    assert np.allclose(_image(pipe, prompt), _image(reference, prompt), atol=1e-5)


def test_single_file_with_real_merges_through_the_library(tmp_path_factory):
    """A single file of studio-tiny, whose merges.txt is real BPE: the recipe's loader finds the
    tokenizer in the library's folder and tokenizes like the diffusers folder does."""
    import numpy as np

    from studio.models.loading import load_pipeline_for_recipe
    from studio.recipe import Recipe

    folder = BUILTIN_DIR / "studio-tiny"
    assert len((folder / "tokenizer" / "merges.txt").read_text().splitlines()) > 50
    checkpoint, config, tokenizer = mf.build_tiny_single_file(folder, tmp_path_factory.mktemp("tiny-single"))
    library = ModelLibrary(tokenizer_dirs=[tokenizer], hf_cache=tmp_path_factory.mktemp("no-hub"))
    pipe = load_pipeline_for_recipe(_ref(checkpoint), "cpu", "float32", Recipe(prompt="x"), library, config_dir=config)
    reference = load_pipeline(library.resolve("studio-tiny"), "cpu", "float32")
    prompt = "a red circle on a blue background"
    ids = pipe.tokenizer(prompt).input_ids
    assert ids == reference.tokenizer(prompt).input_ids and len(ids) < len(prompt)  # merged, not letters
    assert np.array_equal(_image(pipe, prompt), _image(reference, prompt))


def test_missing_tokenizer_is_named(tiny_single, monkeypatch, tmp_path):
    checkpoint, config, _ = tiny_single
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr("studio.models.tokenizers.studio_tokenizer_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.models.tokenizers._packaged_bpe", lambda: None)
    with pytest.raises(TokenizerMissing, match=r"vocab\.json and merges\.txt.*--tokenizer DIR") as info:
        load_pipeline(_ref(checkpoint), "cpu", "float32", config_dir=config)
    assert "\n" not in str(info.value)


def test_shipped_configs_describe_the_real_models():
    """Built empty (no memory), the shipped configs give the published parameter counts."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def count(model):
        return sum(p.numel() for p in model.parameters())

    expected = {"sd1": (859_520_964, 123_060_480), "sd2": (865_910_724, 340_387_840), "sdxl": (2_567_463_684, 123_060_480)}
    with init_empty_weights():
        for arch, (unet_params, text_params) in expected.items():
            folder = CONFIGS_DIR / arch
            assert count(UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))) == unet_params
            assert count(AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))) == 83_653_863
            assert count(CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))) == text_params
            assert json.loads((folder / "model_index.json").read_text())["_class_name"]
        big = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(CONFIGS_DIR / "sdxl" / "text_encoder_2"))
        assert count(big) == 694_659_840


def test_bpe_derived_from_clip_simple_vocab(tmp_path):
    import gzip

    merges = ["t h", "th e</w>", "a n"]
    path = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    path.write_bytes(gzip.compress(("#version: 0.2\n" + "\n".join(merges) + "\n").encode()))
    vocab, read = bpe_from_simple_vocab(path)
    assert read == [tuple(m.split()) for m in merges]
    assert vocab["!"] == 0 and vocab["!</w>"] == 256 and vocab["the</w>"] == 513
    assert vocab["<|endoftext|>"] == len(vocab) - 1 == 512 + len(merges) + 1


def test_non_checkpoints_and_unsupported_architectures_are_named(tmp_path):
    lora = mf.write_header_only(tmp_path / "style.safetensors", mf.kohya_lora_spec())
    with pytest.raises(LoadError, match="is a LoRA"):
        load_pipeline(_ref(lora), "cpu", "float32")
    flux = mf.write_header_only(tmp_path / "flux.safetensors", mf.flux_spec())
    with pytest.raises(LoadError, match="flux needs a CLIP-L text encoder: put one in .* or name it with --text-encoder"):
        load_pipeline(_ref(flux), "cpu", "float32")  # a transformer file alone: ComfyUI keeps the rest beside it


def test_pickled_checkpoint_needs_allow_pickle(tiny_single, tmp_path):
    import torch
    from safetensors.torch import load_file

    checkpoint, config, tokenizer = tiny_single
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(checkpoint)}, ckpt)
    with pytest.raises(PickleRefused, match="--allow-pickle"):
        load_pipeline(_ref(ckpt), "cpu", "float32", config_dir=config, tokenizer_dir=tokenizer)
    pipe = load_pipeline(_ref(ckpt), "cpu", "float32", allow_pickle=True, config_dir=config, tokenizer_dir=tokenizer)
    assert type(pipe).__name__ == "StableDiffusionPipeline"


@pytest.mark.parametrize("allow", [False, True])
def test_pickle_payload_never_runs_when_loading(tiny_single, tmp_path, allow):
    import pickle

    class CreatesFile:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": {"w": CreatesFile()}}))
    checkpoint, config, tokenizer = tiny_single
    with pytest.raises(PickleRefused):
        load_pipeline(_ref(evil), "cpu", "float32", allow_pickle=allow, config_dir=config, tokenizer_dir=tokenizer)
    lora_ref = ModelRef("evil", evil, "single_file", "", "LoRA")
    pipe = load_pipeline(_ref(checkpoint), "cpu", "float32", config_dir=config, tokenizer_dir=tokenizer)
    with pytest.raises(PickleRefused):
        apply_loras(pipe, [(lora_ref, 1.0)], allow_pickle=allow)
    with pytest.raises(PickleRefused):
        load_embeddings(pipe, [lora_ref], allow_pickle=allow)
    with pytest.raises(PickleRefused):
        load_vae(evil, pipe, None, allow_pickle=allow)
    assert not (tmp_path / "pwned").exists()


def _tiny_kohya_lora(path: Path, rank: int = 2, seed: int = 0) -> Path:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    state = {}
    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_"
    for module in ("attn1_to_q", "attn1_to_k", "attn1_to_v", "attn1_to_out_0", "attn2_to_q"):
        state[f"{base}{module}.lora_down.weight"] = torch.randn(rank, 16) * 0.5
        state[f"{base}{module}.lora_up.weight"] = torch.randn(16, rank) * 0.5
        state[f"{base}{module}.alpha"] = torch.tensor(float(rank))
    save_file(state, path, metadata={"ss_network_dim": str(rank), "ss_base_model_version": "sd_v1"})
    return path


def test_lora_embedding_vae_and_memory_options(tiny_single, tmp_path):
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file

    checkpoint, config, tokenizer = tiny_single
    pipe = load_pipeline(
        _ref(checkpoint), "cpu", "float32", config_dir=config, tokenizer_dir=tokenizer,
        vae=checkpoint, attention_slicing=True, vae_tiling=True,  # the checkpoint's own VAE, as an override
    )
    assert pipe.vae.use_tiling
    base = _image(pipe)

    lora = ModelRef("tinylora", _tiny_kohya_lora(tmp_path / "tinylora.safetensors"), "single_file", "", "LoRA")
    assert apply_loras(pipe, [(lora, 1.0)])
    with_lora = _image(pipe)
    assert not np.allclose(base, with_lora)
    apply_loras(pipe, [(lora, 0.0)])
    assert np.allclose(base, _image(pipe), atol=1e-6)
    unload_loras(pipe)
    assert np.allclose(base, _image(pipe), atol=1e-6)

    torch.manual_seed(3)
    emb_path = tmp_path / "tinyemb.safetensors"
    save_file({"emb_params": torch.randn(2, 16)}, emb_path)
    assert load_embeddings(pipe, [ModelRef("tinyemb", emb_path, "single_file", "", "embedding")]) == ["tinyemb"]
    assert not np.allclose(_image(pipe, "a red cat"), _image(pipe, "a red cat tinyemb"))

    vae_only = {k: v for k, v in load_file(checkpoint).items() if k.startswith("first_stage_model.")}
    vae_file = tmp_path / "vae.safetensors"
    save_file({k.removeprefix("first_stage_model."): v for k, v in vae_only.items()}, vae_file)
    vae = load_vae(vae_file, pipe, torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), pipe.vae.state_dict().values()))


def test_explain_oom_suggests_memory_options():
    text = explain_oom(RuntimeError("CUDA out of memory"))
    assert "attention slicing" in text and "VAE tiling" in text and "CPU offload" in text


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_works(), reason="`unshare -n` is not permitted here")
def test_single_file_loads_with_no_network_at_all(tiny_single):
    checkpoint, config, tokenizer = tiny_single
    code = (
        "import sys, socket, torch\n"
        "torch.set_num_threads(1)\n"
        "from pathlib import Path\n"
        "from studio.models.loading import load_pipeline\n"
        "from studio.models.resolve import ModelRef\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 443), timeout=2); sys.exit('network is reachable')\n"
        "except OSError:\n"
        "    pass\n"
        f"ref = ModelRef('tiny', Path({str(checkpoint)!r}), 'single_file', '')\n"
        f"pipe = load_pipeline(ref, 'cpu', 'float32', config_dir=Path({str(config)!r}),"
        f" tokenizer_dir=Path({str(tokenizer)!r}))\n"
        "pipe.set_progress_bar_config(disable=True)\n"
        "image = pipe('a cat', num_inference_steps=1, height=64, width=64).images[0]\n"
        "print('OK', type(pipe).__name__, image.size)\n"
    )
    # No offline switches: without a network, any attempt to reach the hub would fail.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=240, env=env, cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK StableDiffusionPipeline (64, 64)" in result.stdout


def test_hf_cache_entry_resolves_and_loads_offline(tiny_model_dir, tmp_path):
    import shutil

    hub = tmp_path / "hub"
    repo = hub / "models--someone--tiny-sd"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    ref = ModelLibrary([tmp_path / "empty"], hf_cache=hub).resolve("someone/tiny-sd")
    assert (ref.name, ref.format, ref.path) == ("someone/tiny-sd", "diffusers", snapshot.resolve())
    assert type(load_pipeline(ref, "cpu", "float32")).__name__ == "StableDiffusionPipeline"


def test_sd2_prediction_type_from_the_original_yaml(tmp_path):
    from studio.models.loading import sd2_prediction_type

    checkpoint = tmp_path / "v2.safetensors"
    assert sd2_prediction_type(checkpoint) == "v_prediction"  # 2.x 768 models, the common case
    (tmp_path / "v2.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert sd2_prediction_type(checkpoint) == "v_prediction"
    (tmp_path / "v2.yaml").write_text("model:\n  params:\n    linear_start: 0.00085\n")
    assert sd2_prediction_type(checkpoint) == "epsilon"


@pytest.mark.slow
def test_full_size_sd1_layout_loads_with_the_shipped_config(tmp_path):
    """Every tensor name and shape of a real SD1.x file (zeros, a sparse file) fits the shipped config."""
    import math

    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CONFIGS_DIR / "sd1"
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder"))
        state = {**mf.unet_to_ldm(unet.state_dict(), 2), **mf.vae_to_ldm(vae.state_dict(), 4),
                 **mf.text_encoder_to_ldm(text.state_dict())}
    spec = {k: ("F16", tuple(v.shape)) for k, v in state.items()}
    path = mf.write_header_only(tmp_path / "sd15-zeros.safetensors", spec)
    assert sum(math.prod(shape) for _, shape in spec.values()) == 859_520_964 + 83_653_863 + 123_060_480
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2}))
    (tmp_path / "tok" / "merges.txt").write_text("#version: 0.2\n")
    pipe = load_pipeline(_ref(path), "cpu", "float16", tokenizer_dir=tmp_path / "tok")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert sum(p.numel() for p in pipe.unet.parameters()) == 859_520_964

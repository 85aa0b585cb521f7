"""A full-size SD1.5-architecture model with random weights, built once into a cache folder.

860 M UNet parameters, CLIP ViT-L/14 text encoder, the SD VAE: random (seeded
normal, not zeros, so nothing compresses or short-cuts), stored in fp16 as a
diffusers folder and as an original-layout single file (2.1 GB each). The
tokenizer is a real-format CLIP BPE: `bpe_simple_vocab_16e6.txt.gz` from an
installed open_clip or clip package when there is one, else a synthetic one
with the same shape (49,408 tokens: 512 byte symbols, 48,894 merges, two specials).

    python bench/sd15_fixture.py [--cache /tmp/studio-bench-cache]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CACHE = Path("/tmp/studio-bench-cache")


def paths(cache: Path) -> dict[str, Path]:
    return {"folder": cache / "sd15-random", "single": cache / "sd15-random.safetensors", "bpe": cache / "clip-bpe"}


def write_bpe(out: Path) -> str:
    """vocab.json + merges.txt of the CLIP BPE; returns where it came from."""
    from studio.models import tokenizers

    out.mkdir(parents=True, exist_ok=True)
    try:  # the real one, if an open_clip or clip package is installed
        vocab, merges = tokenizers.find_clip_bpe((), model_dirs=(), hf_cache=None)
        source = "real CLIP BPE found on this machine"
    except tokenizers.TokenizerMissing:
        from studio.models.tokenizers import bytes_to_unicode

        base = list(bytes_to_unicode().values())
        vocab_list = base + [b + "</w>" for b in base]
        merges = []
        for left in base:
            for right in vocab_list:
                if len(vocab_list) >= 49408 - 2:
                    break
                merges.append((left, right))
                vocab_list.append(left + right)
        vocab_list += ["<|startoftext|>", "<|endoftext|>"]
        vocab = {token: i for i, token in enumerate(vocab_list)}
        source = "synthetic real-format BPE (no open_clip/clip package here)"
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    (out / "SOURCE").write_text(source + "\n")
    return source


def build(cache: Path = DEFAULT_CACHE) -> dict[str, Path]:
    where = paths(cache)
    if all(p.exists() for p in where.values()) and (where["folder"] / "model_index.json").exists():
        return where
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.schedulers import PNDMScheduler
    from safetensors.torch import load_file, save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.models_fixtures import text_encoder_to_ldm, unet_to_ldm, vae_to_ldm

    cache.mkdir(parents=True, exist_ok=True)
    print("building the random SD1.5 (once)…", file=sys.stderr)
    print(write_bpe(where["bpe"]), file=sys.stderr)
    from studio.models import tokenizers

    bpe = tokenizers.find_clip_bpe((where["bpe"],))
    configs = ROOT / "studio" / "models" / "configs" / "sd1"
    torch.manual_seed(0)

    def cfg(part: str) -> dict:
        return json.loads((configs / part / "config.json").read_text())

    def randomize(module):  # every weight random, biases too: nothing is a constant
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(0, 0.02)
        return module.to(torch.float16)

    unet = randomize(UNet2DConditionModel.from_config(cfg("unet")))
    vae = randomize(AutoencoderKL.from_config(cfg("vae")))
    text = randomize(CLIPTextModel(CLIPTextConfig(**{k: v for k, v in cfg("text_encoder").items() if not k.startswith("_")})))
    tokenizer = tokenizers.clip_tokenizer(configs / "tokenizer", *bpe)
    scheduler = PNDMScheduler.from_pretrained(configs, subfolder="scheduler")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    tmp = where["folder"].with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    state = {}
    state.update(unet_to_ldm(load_file(tmp / "unet" / "diffusion_pytorch_model.safetensors"), cfg("unet")["layers_per_block"]))
    state.update(vae_to_ldm(load_file(tmp / "vae" / "diffusion_pytorch_model.safetensors"), len(cfg("vae")["block_out_channels"])))
    state.update(text_encoder_to_ldm(load_file(tmp / "text_encoder" / "model.safetensors")))
    save_file({k: v.contiguous() for k, v in state.items()}, str(where["single"]) + ".tmp")
    Path(str(where["single"]) + ".tmp").rename(where["single"])
    tmp.rename(where["folder"])
    print(f"UNet parameters: {sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M", file=sys.stderr)
    return where


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    for name, path in build(parser.parse_args().cache).items():
        print(name, path)

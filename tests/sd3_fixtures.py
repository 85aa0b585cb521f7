"""A tiny SD3 as Stability ships its single files, made from a tiny diffusers SD3 folder.

The MMDiT goes under its original names (the inverse of diffusers'
`convert_sd3_transformer_checkpoint_to_diffusers`, written here from its renames), the VAE
in the LDM layout, CLIP-L and CLIP-G inside as the `_incl_clips` files hold them, and T5
beside it in a ComfyUI tree, as `t5xxl_fp16.safetensors`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.arch_pipelines import build_tiny_sd3, tiny_t5_tokenizer
from tests.comfy_fixtures import SHIPPED, shrunk_config
from tests.models_fixtures import vae_to_ldm, write_bpe_files

_TOP = {
    "pos_embed.proj": "x_embedder.proj",
    "time_text_embed.timestep_embedder.linear_1": "t_embedder.mlp.0",
    "time_text_embed.timestep_embedder.linear_2": "t_embedder.mlp.2",
    "time_text_embed.text_embedder.linear_1": "y_embedder.mlp.0",
    "time_text_embed.text_embedder.linear_2": "y_embedder.mlp.2",
    "context_embedder": "context_embedder",
    "proj_out": "final_layer.linear",
}
_BLOCK = {
    "attn.norm_q": "x_block.attn.ln_q", "attn.norm_k": "x_block.attn.ln_k",
    "attn.norm_added_q": "context_block.attn.ln_q", "attn.norm_added_k": "context_block.attn.ln_k",
    "attn.to_out.0": "x_block.attn.proj", "attn.to_add_out": "context_block.attn.proj",
    "attn2.norm_q": "x_block.attn2.ln_q", "attn2.norm_k": "x_block.attn2.ln_k", "attn2.to_out.0": "x_block.attn2.proj",
    "norm1.linear": "x_block.adaLN_modulation.1", "norm1_context.linear": "context_block.adaLN_modulation.1",
    "ff.net.0.proj": "x_block.mlp.fc1", "ff.net.2": "x_block.mlp.fc2",
    "ff_context.net.0.proj": "context_block.mlp.fc1", "ff_context.net.2": "context_block.mlp.fc2",
}
_FUSED = {  # diffusers' separate projections -> the original fused qkv
    ("attn.to_q", "attn.to_k", "attn.to_v"): "x_block.attn.qkv",
    ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"): "context_block.attn.qkv",
    ("attn2.to_q", "attn2.to_k", "attn2.to_v"): "x_block.attn2.qkv",
}


def _swap(tensor):
    import torch

    first, second = tensor.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def sd3_to_original(state: dict, num_layers: int) -> dict:
    import torch

    out, fused = {}, {}
    for key, value in state.items():
        if key == "pos_embed.pos_embed":
            out["pos_embed"] = value
            continue
        if key.startswith("norm_out.linear."):
            out["final_layer.adaLN_modulation.1." + key.rsplit(".", 1)[1]] = _swap(value)
            continue
        if not key.startswith("transformer_blocks."):
            hit = next(old for old in _TOP if key.startswith(old + "."))
            out[_TOP[hit] + key[len(hit):]] = value
            continue
        _, index, rest = key.split(".", 2)
        stem, kind = rest.rsplit(".", 1)
        block = f"joint_blocks.{index}."
        group = next((names for names in _FUSED if stem in names), None)
        if group:
            fused.setdefault(block + _FUSED[group] + "." + kind, {})[group.index(stem)] = value
            continue
        if stem == "norm1_context.linear" and int(index) == num_layers - 1:
            value = _swap(value)  # the last block's context AdaLN is (shift, scale) in the original
        out[block + _BLOCK[stem] + "." + kind] = value
    for key, pieces in fused.items():
        out[key] = torch.cat([pieces[i] for i in sorted(pieces)], dim=0)
    return {"model.diffusion_model." + k: v.contiguous() for k, v in out.items()}


def _hf_clip(state: dict, prefix: str) -> dict:
    return {prefix + (k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v
            for k, v in state.items()}


def build_sd3_file(root: Path, *, seed: int = 0) -> dict[str, Path]:
    """sd3-tiny_incl_clips.safetensors in ComfyUI/models/checkpoints, T5 in models/text_encoders."""
    import json

    from safetensors.torch import load_file, save_file

    reference = build_tiny_sd3(root / "reference-sd3", seed=seed, t5=True, as_released=True)
    comfy = root / "ComfyUI"
    models = comfy / "models"
    for sub in ("checkpoints", "text_encoders", "vae"):
        (models / sub).mkdir(parents=True, exist_ok=True)
    config = json.loads((reference / "transformer" / "config.json").read_text())
    state = sd3_to_original(load_file(reference / "transformer" / "diffusion_pytorch_model.safetensors"),
                            config["num_layers"])
    vae_config = json.loads((reference / "vae" / "config.json").read_text())
    state.update(vae_to_ldm(load_file(reference / "vae" / "diffusion_pytorch_model.safetensors"),
                            len(vae_config["block_out_channels"])))
    clip_l = load_file(reference / "text_encoder" / "model.safetensors")
    del clip_l["text_projection.weight"]  # SD3's CLIP-L has none (the identity)
    state.update(_hf_clip(clip_l, "text_encoders.clip_l.transformer."))
    state.update(_hf_clip(load_file(reference / "text_encoder_2" / "model.safetensors"), "text_encoders.clip_g.transformer."))
    checkpoint = models / "checkpoints" / "sd3-tiny_incl_clips.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, checkpoint)
    shutil.copy(reference / "text_encoder_3" / "model.safetensors", models / "text_encoders" / "t5xxl_fp16.safetensors")
    write_bpe_files(reference / "tokenizer", comfy / "comfy" / "sd1_tokenizer")
    tiny_t5_tokenizer().save_pretrained(comfy / "comfy" / "t5_tokenizer")
    shrunk = shrunk_config(reference, SHIPPED / "sd3-medium", root / "config-sd3",
                           parts=("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "scheduler"),
                           tokenizers=("tokenizer", "tokenizer_2", "tokenizer_3"))
    return {"comfy": comfy, "checkpoint": checkpoint, "config": shrunk, "reference": reference,
            "clip_tokenizer": comfy / "comfy" / "sd1_tokenizer"}

"""A tiny Flux in ComfyUI's layout, made from a tiny diffusers Flux folder; nothing from a hub.

The transformer is written under Black Forest Labs' key names (the inverse of diffusers'
`convert_flux_transformer_checkpoint_to_diffusers`, written here from its renames), CLIP-L
and T5 as Hugging Face-layout single files, the VAE in the original LDM layout, and
ComfyUI's tokenizer folders beside them. The config folders are studio's shipped ones
with every width taken from the tiny models: the same files, shrunk.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.arch_pipelines import build_tiny_flux, tiny_t5_tokenizer
from tests.models_fixtures import vae_to_ldm, write_bpe_files

SHIPPED = Path(__file__).resolve().parent.parent / "studio" / "models" / "configs"

# diffusers name -> BFL name, for the weights that are only renamed.
_RENAMES = {
    "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
    "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
    "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
    "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
    "context_embedder": "txt_in",
    "x_embedder": "img_in",
    "proj_out": "final_layer.linear",
}
_DOUBLE = {
    "norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin",
    "attn.norm_q.weight": "img_attn.norm.query_norm.scale", "attn.norm_k.weight": "img_attn.norm.key_norm.scale",
    "attn.norm_added_q.weight": "txt_attn.norm.query_norm.scale",
    "attn.norm_added_k.weight": "txt_attn.norm.key_norm.scale",
    "ff.net.0.proj": "img_mlp.0", "ff.net.2": "img_mlp.2",
    "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2",
    "attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj",
}
_SINGLE = {
    "norm.linear": "modulation.lin", "attn.norm_q.weight": "norm.query_norm.scale",
    "attn.norm_k.weight": "norm.key_norm.scale", "proj_out": "linear2",
}


def flux_to_bfl(state: dict, prefix: str = "model.diffusion_model.") -> dict:
    """A diffusers FluxTransformer2DModel state dict under BFL's names (fused q/k/v, (shift, scale) AdaLN)."""
    import torch

    out = {}
    fused: dict[str, dict[str, object]] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("transformer_blocks", "single_transformer_blocks"):
            index, name = parts[1], ".".join(parts[2:])
            double = parts[0] == "transformer_blocks"
            block = f"{'double' if double else 'single'}_blocks.{index}."
            stem, _, kind = name.rpartition(".")
            parts_of = {"attn.to_q": 0, "attn.to_k": 1, "attn.to_v": 2}
            if double and stem in parts_of:
                fused.setdefault(f"{block}img_attn.qkv.{kind}", {})[parts_of[stem]] = value
                continue
            if double and stem in ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"):
                order = ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj").index(stem)
                fused.setdefault(f"{block}txt_attn.qkv.{kind}", {})[order] = value
                continue
            if not double and stem in (*parts_of, "proj_mlp"):
                fused.setdefault(f"{block}linear1.{kind}", {})[{**parts_of, "proj_mlp": 3}[stem]] = value
                continue
            table = _DOUBLE if double else _SINGLE
            hit = next(old for old in table if name == old or name.startswith(old + "."))
            out[block + table[hit] + name[len(hit):]] = value
        elif key.startswith("norm_out.linear."):
            scale, shift = value.chunk(2, dim=0)
            out["final_layer.adaLN_modulation.1." + parts[-1]] = torch.cat([shift, scale], dim=0)
        else:
            hit = next(old for old in _RENAMES if key.startswith(old + "."))
            out[_RENAMES[hit] + key[len(hit):]] = value
    for key, pieces in fused.items():
        out[key] = torch.cat([pieces[i] for i in sorted(pieces)], dim=0)
    return {prefix + k: v.contiguous() for k, v in out.items()}


def shrunk_config(
    reference: Path, shipped: Path, out: Path,
    parts: tuple[str, ...] = ("transformer", "vae", "text_encoder", "text_encoder_2", "scheduler"),
    tokenizers: tuple[str, ...] = ("tokenizer", "tokenizer_2"),
) -> Path:
    """`shipped` (a studio config folder) with each component's config from the tiny `reference` folder,
    and each tokenizer's length and padding token as the tiny reference's."""
    shutil.copytree(shipped, out)
    for part in parts:
        name = "scheduler_config.json" if part == "scheduler" else "config.json"
        shutil.copy(reference / part / name, out / part / name)
    for part in tokenizers:
        tiny = json.loads((reference / part / "tokenizer_config.json").read_text())
        settings = json.loads((out / part / "tokenizer_config.json").read_text())
        settings.update({k: tiny[k] for k in ("model_max_length", "pad_token") if k in tiny})
        (out / part / "tokenizer_config.json").write_text(json.dumps(settings))
    return out


def build_comfy_flux(root: Path, *, dev: bool = True, seed: int = 0, gguf: bool = False) -> dict[str, Path]:
    """A ComfyUI tree holding a tiny Flux; returns its paths, the config and the reference folder."""
    from safetensors.torch import load_file, save_file

    variant = "dev" if dev else "schnell"
    reference = build_tiny_flux(root / f"reference-{variant}", dev=dev, seed=seed)
    comfy = root / "ComfyUI"
    models = comfy / "models"
    for sub in ("diffusion_models", "text_encoders", "vae", "unet", "checkpoints"):
        (models / sub).mkdir(parents=True, exist_ok=True)
    bfl = flux_to_bfl(load_file(reference / "transformer" / "diffusion_pytorch_model.safetensors"))
    transformer = models / "diffusion_models" / f"flux-tiny-{variant}.safetensors"
    save_file(bfl, transformer)
    clip = load_file(reference / "text_encoder" / "model.safetensors")  # ComfyUI's clip_l keeps "text_model."
    save_file({(k if k.startswith("text_model.") else "text_model." + k): v for k, v in clip.items()},
              models / "text_encoders" / "clip_l.safetensors")
    shutil.copy(reference / "text_encoder_2" / "model.safetensors", models / "text_encoders" / "t5xxl_fp16.safetensors")
    vae_config = json.loads((reference / "vae" / "config.json").read_text())
    vae = vae_to_ldm(load_file(reference / "vae" / "diffusion_pytorch_model.safetensors"),
                     len(vae_config["block_out_channels"]))
    save_file({k.removeprefix("first_stage_model."): v.contiguous() for k, v in vae.items()},
              models / "vae" / "ae.safetensors")
    write_bpe_files(reference / "tokenizer", comfy / "comfy" / "sd1_tokenizer")
    tiny_t5_tokenizer().save_pretrained(comfy / "comfy" / "t5_tokenizer")
    config = shrunk_config(reference, SHIPPED / f"flux-{variant}", root / f"config-{variant}")
    return {"comfy": comfy, "transformer": transformer, "config": config, "reference": reference,
            "clip_tokenizer": comfy / "comfy" / "sd1_tokenizer"}


def write_gguf(state: dict, path: Path, *, quantise: bool = True) -> dict[str, str]:
    """`state` as a GGUF file, as city96's Flux quantisations are: 2-D weights whose rows hold whole
    32-value blocks in Q8_0 (when `quantise`), the rest in F16. Returns name -> type written."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch="flux")
    written = {}
    for name, tensor in state.items():
        name = name.removeprefix("model.diffusion_model.")
        data = tensor.float().numpy()
        if quantise and data.ndim == 2 and data.shape[1] % 32 == 0:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            qtype = gguf.GGMLQuantizationType.F16
            writer.add_tensor(name, data.astype(np.float16), raw_dtype=qtype)
        written[name] = qtype.name
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written

"""Flux transformer weights from Black Forest Labs' key names to diffusers' FluxTransformer2DModel.

ComfyUI, Forge and the GGUF quantisers keep Flux transformers under BFL's original
names (`double_blocks.N.img_attn.qkv.weight`, often prefixed `model.diffusion_model.`).
diffusers' own converter assumes the full-size model (a 3072-wide inner dimension);
this one reads the widths from the tensors, so any size converts, and it only splits,
renames and reorders rows: a GGUF-quantised tensor (rows of quantised blocks) stays
quantised. The renames follow diffusers' `convert_flux_transformer_checkpoint_to_diffusers`,
and a test checks this against it.
"""

from __future__ import annotations

from typing import Any, MutableMapping

PREFIXES = ("model.diffusion_model.", "diffusion_model.")

# BFL name (after the block prefix) -> diffusers name, for weights that are only renamed.
_TOP = {
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "txt_in": "context_embedder",
    "img_in": "x_embedder",
    "final_layer.linear": "proj_out",
}
_DOUBLE = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
}
_DOUBLE_QKV = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
               "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
_SINGLE = {
    "modulation.lin": "norm.linear",
    "norm.query_norm.scale": "attn.norm_q.weight",
    "norm.key_norm.scale": "attn.norm_k.weight",
    "linear2": "proj_out",
}
_SINGLE_SPLIT = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")  # single_blocks.N.linear1


class FluxKeyError(ValueError):
    """A file that is not a Flux transformer in BFL's layout; the message is one line."""


def strip_prefix(state: MutableMapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def is_bfl_layout(keys) -> bool:
    return any(".img_attn.qkv." in k or k.endswith("img_in.weight") for k in keys)


def _rename(name: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


def _swap_halves(tensor: Any) -> Any:
    """BFL's final AdaLN gives (shift, scale); diffusers' AdaLayerNormContinuous takes (scale, shift)."""
    import torch

    shift, scale = tensor.chunk(2, dim=0)
    return torch.cat([scale, shift], dim=0)


def bfl_to_diffusers(state: MutableMapping[str, Any]) -> dict[str, Any]:
    """The diffusers state dict of a BFL-layout Flux transformer; FluxKeyError if it is not one."""
    import torch

    state = strip_prefix(state)
    if "img_in.weight" not in state:
        raise FluxKeyError("not a Flux transformer in Black Forest Labs' layout (no img_in.weight)")
    inner = state["img_in.weight"].shape[0]
    out: dict[str, Any] = {}
    for key, value in state.items():
        block, _, rest = key.partition(".")
        if block in ("double_blocks", "single_blocks"):
            index, _, name = rest.partition(".")
            base = ("transformer_blocks" if block == "double_blocks" else "single_transformer_blocks") + f".{index}."
            if block == "double_blocks":
                fused = next((n for n in _DOUBLE_QKV if name.startswith(n + ".")), None)
                if fused:
                    suffix = name[len(fused):]
                    for target, part in zip(_DOUBLE_QKV[fused], torch.chunk(value, 3, dim=0)):
                        out[base + target + suffix] = part
                    continue
                new = _rename(name, _DOUBLE)
            else:
                if name.startswith("linear1."):
                    suffix = name[len("linear1"):]
                    sizes = (inner, inner, inner, value.shape[0] - 3 * inner)
                    for target, part in zip(_SINGLE_SPLIT, torch.split(value, sizes, dim=0)):
                        out[base + target + suffix] = part
                    continue
                new = _rename(name, _SINGLE)
            if new is None:
                raise FluxKeyError(f"unexpected Flux transformer weight {key}")
            out[base + new] = value
        elif key.startswith("final_layer.adaLN_modulation.1."):
            out["norm_out.linear" + key[len("final_layer.adaLN_modulation.1"):]] = _swap_halves(value)
        else:
            new = _rename(key, _TOP)
            if new is None:
                raise FluxKeyError(f"unexpected Flux transformer weight {key}")
            out[new] = value
    return out


def transformer_shape(state: MutableMapping[str, Any]) -> dict[str, int | bool]:
    """The config values that differ between Flux sizes, read from BFL-layout weights."""
    state = strip_prefix(state)
    keys = state.keys()
    return {
        "num_layers": len({k.split(".")[1] for k in keys if k.startswith("double_blocks.")}),
        "num_single_layers": len({k.split(".")[1] for k in keys if k.startswith("single_blocks.")}),
        "guidance_embeds": "guidance_in.in_layer.weight" in keys,
    }

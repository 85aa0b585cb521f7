"""Builders for the model-library tests: headers with real key layouts, tiny weights.

Header-only files are written sparse (zeros after the header), so a test can
describe a checkpoint with real tensor names and shapes at no disk cost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from studio.models.safetensors_header import DTYPE_BITS

Spec = dict[str, tuple[str, tuple[int, ...]]]


def write_header_only(path: Path, tensors: Spec, metadata: dict[str, str] | None = None) -> Path:
    """A valid .safetensors file whose tensors are all zeros (a sparse file)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * DTYPE_BITS[dtype] // 8
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(len(raw).to_bytes(8, "little"))
        handle.write(raw)
        handle.truncate(8 + len(raw) + offset)
    return path


def _transformer(prefix: str, dim: int, context: int, dtype: str) -> Spec:
    block = f"{prefix}.transformer_blocks.0"
    return {
        f"{prefix}.proj_in.weight": (dtype, (dim, dim, 1, 1)),
        f"{block}.attn1.to_q.weight": (dtype, (dim, dim)),
        f"{block}.attn2.to_k.weight": (dtype, (dim, context)),
        f"{block}.attn2.to_v.weight": (dtype, (dim, context)),
        f"{block}.ff.net.2.weight": (dtype, (dim, dim * 4)),
    }


def sd1_spec(dtype: str = "F16", in_channels: int = 4) -> Spec:
    """A slice of an SD1.5 checkpoint, with its real names and shapes."""
    unet = "model.diffusion_model"
    te = "cond_stage_model.transformer.text_model"
    spec: Spec = {
        f"{unet}.input_blocks.0.0.weight": (dtype, (320, in_channels, 3, 3)),
        f"{unet}.time_embed.0.weight": (dtype, (1280, 320)),
        **_transformer(f"{unet}.input_blocks.1.1", 320, 768, dtype),
        **_transformer(f"{unet}.middle_block.1", 1280, 768, dtype),
        f"{unet}.out.2.weight": (dtype, (4, 320, 3, 3)),
        f"{te}.embeddings.token_embedding.weight": (dtype, (49408, 768)),
        f"{te}.embeddings.position_embedding.weight": (dtype, (77, 768)),
        f"{te}.encoder.layers.0.self_attn.q_proj.weight": (dtype, (768, 768)),
        "first_stage_model.decoder.conv_in.weight": (dtype, (512, 4, 3, 3)),
        "first_stage_model.encoder.conv_in.weight": (dtype, (128, 3, 3, 3)),
    }
    return spec


def sd2_spec(dtype: str = "F16") -> Spec:
    unet = "model.diffusion_model"
    return {
        f"{unet}.input_blocks.0.0.weight": (dtype, (320, 4, 3, 3)),
        **_transformer(f"{unet}.input_blocks.1.1", 320, 1024, dtype),
        "cond_stage_model.model.token_embedding.weight": (dtype, (49408, 1024)),
        "cond_stage_model.model.positional_embedding": (dtype, (77, 1024)),
        "first_stage_model.decoder.conv_in.weight": (dtype, (512, 4, 3, 3)),
    }


def sdxl_spec(dtype: str = "F16", refiner: bool = False) -> Spec:
    """A slice of an SDXL base (or refiner) checkpoint, with real names and shapes."""
    unet = "model.diffusion_model"
    context = 1280 if refiner else 2048
    spec: Spec = {
        f"{unet}.input_blocks.0.0.weight": (dtype, (384 if refiner else 320, 4, 3, 3)),
        f"{unet}.label_emb.0.0.weight": (dtype, (1536 if refiner else 1280, 2560 if refiner else 2816)),
        **_transformer(f"{unet}.input_blocks.4.1", 640, context, dtype),
        **_transformer(f"{unet}.middle_block.1", 1280, context, dtype),
    }
    big = "conditioner.embedders.0.model" if refiner else "conditioner.embedders.1.model"
    spec.update({
        f"{big}.token_embedding.weight": (dtype, (49408, 1280)),
        f"{big}.positional_embedding": (dtype, (77, 1280)),
        f"{big}.text_projection": (dtype, (1280, 1280)),
        f"{big}.transformer.resblocks.0.attn.in_proj_weight": (dtype, (3840, 1280)),
    })
    if not refiner:
        te = "conditioner.embedders.0.transformer.text_model"
        spec[f"{te}.embeddings.token_embedding.weight"] = (dtype, (49408, 768))
        spec[f"{te}.embeddings.position_embedding.weight"] = (dtype, (77, 768))
    spec["first_stage_model.decoder.conv_in.weight"] = (dtype, (512, 4, 3, 3))
    return spec


def flux_spec(dev: bool = True) -> Spec:
    spec: Spec = {
        "double_blocks.0.img_attn.qkv.weight": ("BF16", (9216, 3072)),
        "single_blocks.0.linear1.weight": ("BF16", (21504, 3072)),
        "img_in.weight": ("BF16", (3072, 64)),
    }
    if dev:
        spec["guidance_in.in_layer.weight"] = ("BF16", (3072, 256))
    return spec


def sd3_spec(blocks: int = 24) -> Spec:
    unet = "model.diffusion_model"
    return {f"{unet}.joint_blocks.{i}.x_block.attn.qkv.weight": ("F16", (4608, 1536)) for i in range(blocks)}


KOHYA_TAGS = {
    "10_mychar": {"1girl": 40, "solo": 38, "red scarf": 25, "smile": 12},
    "5_style": {"1girl": 10, "outdoors": 9, "smile": 3},
}


def kohya_lora_spec(rank: int = 16, sdxl: bool = False) -> Spec:
    """A kohya-ss LoRA: `lora_unet_*`/`lora_te_*` with lora_down/lora_up/alpha."""
    spec: Spec = {}
    context = 2048 if sdxl else 768
    modules = {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (320, context),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (320, 320),
        "lora_unet_mid_block_attentions_0_proj_in": (1280, 1280),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
    }
    if sdxl:
        modules["lora_te2_text_model_encoder_layers_0_self_attn_q_proj"] = (1280, 1280)
    for name, (out_dim, in_dim) in modules.items():
        spec[f"{name}.lora_down.weight"] = ("F16", (rank, in_dim))
        spec[f"{name}.lora_up.weight"] = ("F16", (out_dim, rank))
        spec[f"{name}.alpha"] = ("F16", ())
    return spec


def kohya_lora_metadata() -> dict[str, str]:
    return {
        "ss_output_name": "mychar_v2",
        "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
        "ss_base_model_version": "sd_v1",
        "ss_network_module": "networks.lora",
        "ss_network_dim": "16",
        "ss_network_alpha": "8",
        "ss_num_train_images": "340",
        "ss_tag_frequency": json.dumps(KOHYA_TAGS),
        "modelspec.title": "My Character",
        "modelspec.author": "A. Trainer",
        "modelspec.license": "CreativeML OpenRAIL-M",
        "modelspec.architecture": "stable-diffusion-v1/lora",
    }


def peft_lora_spec(rank: int = 4) -> Spec:
    base = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    return {
        f"{base}.lora_A.weight": ("F32", (rank, 768)),
        f"{base}.lora_B.weight": ("F32", (320, rank)),
    }


def vae_spec(latent: int = 4) -> Spec:
    return {
        "encoder.conv_in.weight": ("F32", (128, 3, 3, 3)),
        "encoder.down.0.block.0.conv1.weight": ("F32", (128, 128, 3, 3)),
        "decoder.conv_in.weight": ("F32", (512, latent, 3, 3)),
        "decoder.up.0.block.0.conv1.weight": ("F32", (128, 128, 3, 3)),
        "quant_conv.weight": ("F32", (2 * latent, 2 * latent, 1, 1)),
    }


def embedding_spec(vectors: int = 4, width: int = 768) -> Spec:
    return {"emb_params": ("F32", (vectors, width))}


def sdxl_embedding_spec(vectors: int = 2) -> Spec:
    return {"clip_g": ("F32", (vectors, 1280)), "clip_l": ("F32", (vectors, 768))}


# --- tiny single-file checkpoints in the original (LDM) key layout --------------------------
#
# diffusers converts LDM names to its own on load; these functions go the other way so the
# tests can write a checkpoint laid out like a real SD1.x .safetensors from a tiny pipeline.

_RESNET_TO_LDM = {
    "norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection",
}


def _resnet(rest: str) -> str:
    layer, _, tail = rest.partition(".")
    return f"{_RESNET_TO_LDM[layer]}.{tail}"


def unet_to_ldm(state: dict, layers_per_block: int) -> dict:
    per_level = layers_per_block + 1
    up_has_attention = {int(k.split(".")[1]) for k in state if k.startswith("up_blocks.") and ".attentions." in k}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("conv_in",):
            new = "input_blocks.0.0." + ".".join(parts[1:])
        elif parts[0] == "time_embedding":
            new = {"linear_1": "time_embed.0", "linear_2": "time_embed.2"}[parts[1]] + "." + parts[2]
        elif parts[0] == "add_embedding":  # SDXL's size/crop conditioning
            new = {"linear_1": "label_emb.0.0", "linear_2": "label_emb.0.2"}[parts[1]] + "." + parts[2]
        elif parts[0] == "conv_norm_out":
            new = "out.0." + parts[1]
        elif parts[0] == "conv_out":
            new = "out.2." + parts[1]
        elif parts[0] == "down_blocks":
            level, group, index = int(parts[1]), parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            if group == "resnets":
                new = f"input_blocks.{level * per_level + index + 1}.0.{_resnet(rest)}"
            elif group == "attentions":
                new = f"input_blocks.{level * per_level + index + 1}.1.{rest}"
            else:  # downsamplers.0.conv.*
                new = f"input_blocks.{(level + 1) * per_level}.0.op.{parts[-1]}"
        elif parts[0] == "mid_block":
            group, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
            if group == "resnets":
                new = f"middle_block.{2 * index}.{_resnet(rest)}"
            else:
                new = f"middle_block.1.{rest}"
        elif parts[0] == "up_blocks":
            level, group, index = int(parts[1]), parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            if group == "resnets":
                new = f"output_blocks.{level * per_level + index}.0.{_resnet(rest)}"
            elif group == "attentions":
                new = f"output_blocks.{level * per_level + index}.1.{rest}"
            else:  # upsamplers.0.conv.*
                slot = 2 if level in up_has_attention else 1
                new = f"output_blocks.{level * per_level + layers_per_block}.{slot}.conv.{parts[-1]}"
        else:
            raise KeyError(f"unexpected UNet key {key}")
        out["model.diffusion_model." + new] = value
    return out


_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}


def vae_to_ldm(state: dict, levels: int) -> dict:
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        side = parts[0]
        if side in ("quant_conv", "post_quant_conv"):
            new = key
        elif parts[1] in ("conv_in", "conv_out"):
            new = key
        elif parts[1] == "conv_norm_out":
            new = f"{side}.norm_out.{parts[2]}"
        elif parts[1] in ("down_blocks", "up_blocks"):
            level = int(parts[2]) if side == "encoder" else levels - 1 - int(parts[2])
            stage = "down" if side == "encoder" else "up"
            if parts[3] == "resnets":
                layer = "nin_shortcut" if parts[5] == "conv_shortcut" else parts[5]
                new = f"{side}.{stage}.{level}.block.{parts[4]}.{layer}.{parts[6]}"
            else:
                sampler = "downsample" if side == "encoder" else "upsample"
                new = f"{side}.{stage}.{level}.{sampler}.conv.{parts[-1]}"
        elif parts[1] == "mid_block":
            if parts[2] == "resnets":
                new = f"{side}.mid.block_{int(parts[3]) + 1}.{'.'.join(parts[4:])}"
            else:
                layer = _VAE_ATTENTION[parts[4]]
                new = f"{side}.mid.attn_1.{layer}.{parts[-1]}"
                if value.ndim == 2:  # LDM keeps these as 1x1 convolutions
                    value = value[:, :, None, None]
        else:
            raise KeyError(f"unexpected VAE key {key}")
        out["first_stage_model." + new] = value
    return out


def text_encoder_to_ldm(state: dict, prefix: str = "cond_stage_model.transformer.") -> dict:
    return {prefix + (k if k.startswith("text_model.") else "text_model." + k): v for k, v in state.items()}


_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
}


def open_clip_to_ldm(state: dict, prefix: str) -> dict:
    """A CLIPTextModelWithProjection in OpenCLIP's layout (fused q/k/v, transposed projection)."""
    import torch

    out = {}
    fused: dict[str, dict[str, object]] = {}
    for key, value in state.items():
        key = key if key.startswith(("text_model.", "text_projection")) else "text_model." + key
        if key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif key == "text_model.embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key == "text_model.embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key.startswith("text_model.final_layer_norm."):
            out["ln_final." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("text_model.encoder.layers."):
            layer, rest = key.removeprefix("text_model.encoder.layers.").split(".", 1)
            block = f"transformer.resblocks.{layer}"
            module, param = rest.rsplit(".", 1)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                fused.setdefault(f"{block}.attn.in_proj_{param}", {})[module[10]] = value
            else:
                out[f"{block}.{_OPEN_CLIP_LAYER[module]}.{param}"] = value
        elif key.endswith("position_ids"):
            continue
        else:
            raise KeyError(f"unexpected text encoder key {key}")
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return {prefix + k: v for k, v in out.items()}


def build_tiny_sdxl_pipeline(
    folder: Path, seed: int = 0, bpe: tuple[dict[str, int], list[tuple[str, str]]] | None = None
) -> Path:
    """A tiny seeded SDXL pipeline: two text encoders of different widths, size conditioning.

    `bpe` (vocab, merges) gives both tokenizers a real CLIP-format BPE; by default
    they have letters only and no merges.
    """
    import string

    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    if bpe is None:
        tokens = ["<|startoftext|>", "<|endoftext|>", "!"]
        for char in string.ascii_lowercase + ",.":
            tokens += [char, char + "</w>"]
        vocab, merges = {token: i for i, token in enumerate(tokens)}, []
    else:
        vocab, merges = bpe
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]

    def text_config(width: int) -> CLIPTextConfig:
        return CLIPTextConfig(
            vocab_size=len(vocab), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=16, projection_dim=width,
            bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
        )

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16 + 32, attention_head_dim=4, norm_num_groups=8, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=8 * 6 + 32,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8, sample_size=16,
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config(16)),
        text_encoder_2=CLIPTextModelWithProjection(text_config(32)),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16),
        tokenizer_2=CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16, pad_token="!"),
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_single_file(diffusers_dir: Path, out_dir: Path) -> tuple[Path, Path, Path]:
    """(checkpoint, config folder, tokenizer folder) for a tiny SD1-layout single file.

    The config folder is the diffusers folder without weights or tokenizer vocabulary,
    as studio ships for real models; the vocabulary sits in its own folder.
    """
    import shutil

    from safetensors.torch import load_file, save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    unet_config = json.loads((diffusers_dir / "unet" / "config.json").read_text())
    vae_config = json.loads((diffusers_dir / "vae" / "config.json").read_text())
    state: dict = {}
    state.update(unet_to_ldm(load_file(diffusers_dir / "unet" / "diffusion_pytorch_model.safetensors"),
                             unet_config["layers_per_block"]))
    state.update(vae_to_ldm(load_file(diffusers_dir / "vae" / "diffusion_pytorch_model.safetensors"),
                            len(vae_config["block_out_channels"])))
    text = load_file(diffusers_dir / "text_encoder" / "model.safetensors")
    sdxl = (diffusers_dir / "text_encoder_2").is_dir()
    if sdxl:
        state.update(text_encoder_to_ldm(text, "conditioner.embedders.0.transformer."))
        state.update(open_clip_to_ldm(load_file(diffusers_dir / "text_encoder_2" / "model.safetensors"),
                                      "conditioner.embedders.1.model."))
    else:
        state.update(text_encoder_to_ldm(text))
    checkpoint = out_dir / ("tiny-sdxl.safetensors" if sdxl else "tiny-sd1.safetensors")
    save_file({k: v.contiguous() for k, v in state.items()}, checkpoint)

    config = out_dir / "config"
    for file in diffusers_dir.rglob("*.json"):
        if file.name not in ("tokenizer.json", "vocab.json"):
            target = config / file.relative_to(diffusers_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(file, target)
    # The vocabulary lives apart, as the CLIP BPE files do for real single files: the
    # folder's own vocab.json and merges.txt (a `#version` line, then one pair a line).
    tokenizer = out_dir / "tokenizer-files"
    write_bpe_files(diffusers_dir / "tokenizer", tokenizer)
    return checkpoint, config, tokenizer


def write_bpe_files(tokenizer_dir: Path, out: Path) -> Path:
    """vocab.json and merges.txt as CLIP ships them, from a saved tokenizer folder.

    transformers may save only tokenizer.json; its BPE model holds the same vocabulary and merges.
    """
    out.mkdir(parents=True, exist_ok=True)
    if (tokenizer_dir / "vocab.json").is_file() and (tokenizer_dir / "merges.txt").is_file():
        vocab = json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8"))
        merges = (tokenizer_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [line.split(" ") for line in merges if line and not line.startswith("#version")]
    else:
        model = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]
        vocab = model["vocab"]
        merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = "".join(f"{left} {right}\n" for left, right in merges)
    (out / "merges.txt").write_text("#version: 0.2\n" + lines, encoding="utf-8")
    return out

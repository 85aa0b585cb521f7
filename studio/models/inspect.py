"""What is inside a weights file or a diffusers folder, from headers alone.

The architecture is read from tensor names and a few telling shapes, the way
A1111 and ComfyUI tell checkpoints apart; nothing is loaded or executed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from studio.bounded import NotRegular, check_regular, loads_json, read_json_config
from studio.models.components import encoder_of
from studio.models.gguf import GGUFError, GGUFUnavailable, gguf_metadata, gguf_tensors
from studio.models.cascade import stage_file
from studio.models.license import License, license_of
from studio.models.pickles import is_pickle, load_pickle_state_dict
from studio.models.safety import ships_safety_checker
from studio.models.safetensors_header import HeaderError, read_header
from studio.models.upscaler_arch import upscaler_architecture

# Kinds, as `studio models` lists them.
CHECKPOINT, LORA, EMBEDDING, VAE, UNKNOWN = "checkpoint", "LoRA", "embedding", "VAE", "unknown"
UPSCALER = "upscaler"  # found by folder (models/ESRGAN, models/upscale_models…); see upscaler_arch
TEXT_ENCODER = "text encoder"  # CLIP-L/G or T5 as its own file (ComfyUI's models/text_encoders)


@dataclass(frozen=True)
class Inspection:
    path: Path
    format: str  # "safetensors", "diffusers" or "pickle"
    kind: str
    architecture: str
    params: int
    dtypes: dict[str, int]  # dtype -> number of parameters stored in it
    tensors: int
    size: int  # bytes on disk
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    license: License = License("")
    safety_checker: bool = False  # a folder that ships one (studio loads it only when asked)

    @property
    def dtype(self) -> str:
        """The dtype holding most parameters ("" when there are none)."""
        return max(self.dtypes, key=self.dtypes.__getitem__) if self.dtypes else ""

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "format": self.format,
            "kind": self.kind,
            "architecture": self.architecture,
            "params": self.params,
            "dtypes": self.dtypes,
            "tensors": self.tensors,
            "size": self.size,
            "metadata": self.metadata,
            "tags": [list(t) for t in self.tags],
            "notes": self.notes,
            "license": {"id": self.license.id, "name": self.license.name, "link": self.license.link,
                        "flag": self.license.flag},
            "safety_checker": self.safety_checker,
        }


def inspect_file(path: str | Path, *, allow_pickle: bool = False) -> Inspection:
    """Inspect a .safetensors file, a diffusers folder, or (only if allowed) a pickle.

    Raises HeaderError for damaged files and PickleRefused for pickles.
    """
    path = Path(path)
    if path.is_dir():
        return inspect_diffusers_folder(path)
    if not path.exists():
        raise HeaderError(f"{path}: no such file")
    try:
        check_regular(path)  # a FIFO or a device is refused before anything opens it
    except NotRegular as exc:
        raise HeaderError(f"{path}: {str(exc).partition(': ')[2]}") from None
    except OSError as exc:
        raise HeaderError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".gguf":
        return _inspect_gguf(path)
    if is_pickle(path):
        state = load_pickle_state_dict(path, allow_pickle=allow_pickle)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        dtypes: Counter[str] = Counter()
        for v in state.values():
            dtypes[str(v.dtype).removeprefix("torch.")] += v.numel()
        return _build(path, "pickle", shapes, dict(dtypes), {})
    header = read_header(path)
    shapes = {k: t.shape for k, t in header.tensors.items()}
    dtypes = Counter()
    for t in header.tensors.values():
        dtypes[t.dtype] += t.numel
    return _build(path, "safetensors", shapes, dict(dtypes), header.metadata)


def _build(path: Path, fmt: str, shapes, dtypes, metadata) -> Inspection:
    kind, arch, notes = classify(shapes, metadata)
    if kind == UNKNOWN:
        upscaler, scale = upscaler_architecture(shapes, metadata)
        if upscaler:
            kind, arch = UPSCALER, f"{upscaler} {scale}x" if scale else upscaler
    return Inspection(
        path=path,
        format=fmt,
        kind=kind,
        architecture=arch,
        params=sum(math.prod(s) for s in shapes.values()),
        dtypes=dtypes,
        tensors=len(shapes),
        size=path.stat().st_size,
        metadata=dict(metadata),
        tags=training_tags(metadata),
        notes=notes,
        license=license_of(path, metadata),
    )


def training_tags(metadata: Mapping[str, str]) -> list[tuple[str, int]]:
    """kohya's `ss_tag_frequency` ({folder: {tag: count}}) as one ranked list."""
    raw = metadata.get("ss_tag_frequency")
    if not raw:
        return []
    try:
        folders = loads_json(raw, "ss_tag_frequency")
    except ValueError:  # not JSON, or nested or sized past the caps
        return []
    totals: Counter[str] = Counter()
    if isinstance(folders, dict):
        for tags in folders.values():
            if isinstance(tags, dict):
                for tag, count in tags.items():
                    if isinstance(count, int) and not isinstance(count, bool):
                        totals[str(tag).strip()] += count
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


# --- architecture from tensor names -------------------------------------------------

Shapes = Mapping[str, tuple[int, ...]]


def classify(shapes: Shapes, metadata: Mapping[str, str] = {}) -> tuple[str, str, list[str]]:
    """(kind, architecture, notes) for a state dict described by its shapes."""
    keys = shapes.keys()
    for test in (_lora, _embedding, _flux, _sd3, _cascade, _ldm, _vae, _text_encoder, _diffusers_component):
        found = test(shapes, keys, metadata)
        if found:
            return found
    return UNKNOWN, "unknown", []


def _any(keys, *needles: str) -> bool:
    return any(n in k for k in keys for n in needles)


def _starts(keys, *prefixes: str) -> bool:
    return any(k.startswith(prefixes) for k in keys)


def _first(shapes: Shapes, suffix: str) -> tuple[int, ...] | None:
    for key, shape in shapes.items():
        if key.endswith(suffix):
            return shape
    return None


def _context_dim(shapes: Shapes) -> int | None:
    """Width of the text features the UNet cross-attends to: 768 SD1, 1024 SD2, 2048 SDXL."""
    for key, shape in shapes.items():
        if ("attn2" in key and ("to_k" in key) and len(shape) == 2
                and not key.endswith(("lora_up.weight", "lora_B.weight", ".bias"))):
            return shape[1]
    return None


_SD_BY_CONTEXT = {768: "SD1.x", 1024: "SD2.x", 2048: "SDXL"}


def _ldm(shapes, keys, metadata):
    conv_in = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    if conv_in is None:
        return None
    notes: list[str] = []
    if _starts(keys, "conditioner.embedders.1.model."):
        arch = "SDXL base"
    elif _starts(keys, "conditioner.embedders.0.model."):
        arch = "SDXL refiner"
    elif _starts(keys, "cond_stage_model.model."):
        arch = "SD2.x"
    elif _starts(keys, "cond_stage_model.transformer."):
        arch = "SD1.x"
    else:
        arch = _SD_BY_CONTEXT.get(_context_dim(shapes) or 0, "Stable Diffusion (unknown)")
        notes.append("no text encoder in the file")
    if arch == "SD2.x":
        notes.append("v-prediction (768-v) or epsilon (512-base) cannot be told from the weights")
    in_channels = conv_in[1] if len(conv_in) > 1 else 0
    if in_channels == 9:
        arch += " inpainting"
    elif in_channels == 8:
        arch += " instruct-pix2pix"
    if not _starts(keys, "first_stage_model."):
        notes.append("no VAE in the file")
    return CHECKPOINT, arch, notes


def _cascade(shapes, keys, metadata):
    found = stage_file(shapes)  # studio/models/cascade.py
    if found is None:
        return None
    stage, arch, notes = found
    return (VAE if stage == "A" else CHECKPOINT), arch, notes


def _strip_to(keys, marker: str) -> str | None:
    """The prefix before `marker` in the first key that holds it."""
    for k in keys:
        i = k.find(marker)
        if i >= 0:
            return k[:i]
    return None


def _sd3(shapes, keys, metadata):
    prefix = _strip_to(keys, "joint_blocks.")
    if prefix is None or prefix.startswith(("lora", "transformer.")):
        return None
    depth = len({k[len(prefix):].split(".")[1] for k in keys if k.startswith(prefix + "joint_blocks.")})
    if _any(keys, "x_block.attn2."):
        arch = "SD3.5 Medium"
    elif depth >= 38:
        arch = "SD3.5 Large"
    else:
        arch = "SD3 Medium"
    return CHECKPOINT, arch, [f"{depth} joint blocks"]


def _flux(shapes, keys, metadata):
    prefix = _strip_to(keys, "double_blocks.")
    if prefix is None or "lora" in prefix:
        return None
    variant = "Flux dev" if (prefix + "guidance_in.in_layer.weight") in keys else "Flux schnell"
    return CHECKPOINT, variant, []


def _vae(shapes, keys, metadata):
    stripped = [k.removeprefix("first_stage_model.").removeprefix("vae.") for k in keys]
    if not stripped or not all(k.startswith(("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")) for k in stripped):
        return None
    if not any(k.startswith("decoder.") for k in stripped):
        return None
    latent = None
    for key, shape in shapes.items():
        if key.endswith("decoder.conv_in.weight") and len(shape) == 4:
            latent = shape[1]
    layout = "diffusers" if any(".down_blocks." in k for k in stripped) else "original"
    if latent == 16:
        arch = "SD3/Flux VAE (16-channel)"
    elif latent == 4:
        arch = "SD/SDXL VAE (4-channel)"
    else:
        arch = f"VAE ({latent}-channel)" if latent else "VAE"
    return VAE, arch, [f"{layout} key layout"]


def _lora_base(shapes, keys, metadata) -> str:
    version = metadata.get("ss_base_model_version", "")
    spec = metadata.get("modelspec.architecture", "")
    for hint, arch in (("sdxl", "SDXL"), ("sd_v2", "SD2.x"), ("sd_v1", "SD1.x"), ("flux", "Flux"),
                       ("sd3", "SD3"), ("stable-diffusion-xl", "SDXL"), ("stable-diffusion-v2", "SD2.x"),
                       ("stable-diffusion-v1", "SD1.x")):
        if hint in version or hint in spec:
            return arch
    if metadata.get("ss_v2") == "True":
        return "SD2.x"
    if _any(keys, "double_blocks", "single_blocks", "single_transformer_blocks"):
        return "Flux"
    if _any(keys, "joint_blocks", "transformer_blocks.0.attn.add_k_proj") and not _any(keys, "attn2"):
        return "SD3"
    if _any(keys, "lora_te2_", "text_encoder_2.", "te2."):
        return "SDXL"
    return _SD_BY_CONTEXT.get(_context_dim(shapes) or 0, "unknown base")


def _lora(shapes, keys, metadata):
    kohya = _starts(keys, "lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_transformer_")
    lycoris = _any(keys, ".hada_w1_a", ".lokr_w1", ".lokr_w2")
    if kohya and (_any(keys, ".lora_down.weight") or lycoris):
        form = "LyCORIS" if lycoris else "kohya"
    elif _any(keys, ".lora_A.weight", ".lora_A.default.weight"):
        form = "PEFT"
    elif _any(keys, ".lora_down.weight", ".lora.down.weight"):
        form = "diffusers"
    else:
        return None
    notes = []
    rank = None
    for key, shape in shapes.items():
        if key.endswith((".lora_down.weight", ".lora_A.weight")) and shape:
            rank = shape[0]
            break
    if rank is not None:
        notes.append(f"rank {rank}")
    dim, alpha = metadata.get("ss_network_dim"), metadata.get("ss_network_alpha")
    if dim or alpha:
        notes.append(f"network dim {dim or '?'}, alpha {alpha or '?'}")
    return LORA, f"{_lora_base(shapes, keys, metadata)} LoRA ({form})", notes


def _embedding(shapes, keys, metadata):
    if "clip_l" in keys and "clip_g" in keys:
        vectors = shapes["clip_l"][0] if shapes["clip_l"] else 0
        return EMBEDDING, "SDXL textual inversion", [f"{vectors} vectors"]
    shape = shapes.get("emb_params") or next(
        (s for k, s in shapes.items() if k.startswith("string_to_param.")), None
    )
    if shape is None or len(keys) > 4:
        return None
    width = shape[-1] if shape else 0
    vectors = shape[0] if len(shape) == 2 else 1
    arch = {768: "SD1.x", 1024: "SD2.x"}.get(width, f"{width}-wide")
    return EMBEDDING, f"{arch} textual inversion", [f"{vectors} vectors"]


def _text_encoder(shapes, keys, metadata):
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.")) for k in keys):
        return None
    encoder = encoder_of(dict(shapes))
    if encoder is None:
        return None
    layers = len({k.split(".")[3] for k in keys if ".encoder.layers." in k or k.startswith("encoder.block.")})
    return TEXT_ENCODER, f"{encoder.label} text encoder", [f"{layers} layers, {encoder.width} wide"]


def _diffusers_component(shapes, keys, metadata):
    if "conv_in.weight" in keys and _starts(keys, "down_blocks."):
        arch = _SD_BY_CONTEXT.get(_context_dim(shapes) or 0, "unknown")
        return CHECKPOINT, f"{arch} UNet (diffusers layout, UNet only)", ["a single component, not a whole model"]
    if _starts(keys, "text_model.encoder."):
        return UNKNOWN, "CLIP text encoder", ["a single component, not a whole model"]
    return None


def _inspect_gguf(path: Path) -> Inspection:
    """A GGUF file from its tensor table: the architecture by name, parameters per quantisation type."""
    try:
        tensors = gguf_tensors(path)
        metadata = gguf_metadata(path)
    except GGUFUnavailable as exc:
        return Inspection(path, "gguf", CHECKPOINT, "GGUF (not read)", 0, {}, 0, path.stat().st_size, notes=[str(exc)])
    except GGUFError as exc:
        raise HeaderError(str(exc)) from None
    shapes = {name: shape for name, (shape, _) in tensors.items()}
    dtypes: Counter[str] = Counter()
    for shape, qtype in tensors.values():
        dtypes[qtype] += math.prod(shape)
    kind, arch, notes = classify(shapes, metadata)
    notes.append("GGUF: quantised weights stay quantised in memory, dequantised layer by layer as they run")
    return Inspection(
        path, "gguf", kind, arch, sum(dtypes.values()), dict(dtypes), len(shapes), path.stat().st_size,
        metadata=metadata, notes=notes, license=license_of(path, {}),
    )


# --- diffusers folders --------------------------------------------------------------

_PIPELINES = {
    "StableDiffusionPipeline": "SD1.x",
    "StableDiffusionInpaintPipeline": "SD1.x inpainting",
    "StableDiffusionXLPipeline": "SDXL base",
    "StableDiffusionXLImg2ImgPipeline": "SDXL refiner",
    "StableDiffusionXLInpaintPipeline": "SDXL inpainting",
    "StableDiffusion3Pipeline": "SD3",
    "FluxPipeline": "Flux",
    "PixArtAlphaPipeline": "PixArt-α",
    "PixArtSigmaPipeline": "PixArt-Σ",
    "StableCascadePriorPipeline": "Stable Cascade prior (stage C)",
    "StableCascadeDecoderPipeline": "Stable Cascade decoder (stage B)",
    "StableCascadeCombinedPipeline": "Stable Cascade (stages C, B and A)",
}



def inspect_diffusers_folder(path: Path) -> Inspection:
    index = read_json_config(path / "model_index.json")
    if not index:
        raise HeaderError(f"{path}: not a diffusers folder (no readable model_index.json)")
    cls = str(index.get("_class_name", ""))
    arch = _PIPELINES.get(cls, cls or "unknown")
    notes = [f"pipeline {cls}"] if cls else []
    text = read_json_config(path / "text_encoder" / "config.json")
    unet = read_json_config(path / "unet" / "config.json")
    if arch.startswith("SD1.x") and text.get("hidden_size") == 1024:
        arch = arch.replace("SD1.x", "SD2.x")
    if arch.startswith("SDXL") and index.get("text_encoder") == [None, None]:
        arch = "SDXL refiner"
    if unet.get("in_channels") == 9 and "inpainting" not in arch:
        arch += " inpainting"
    if arch == "Flux":
        guidance = read_json_config(path / "transformer" / "config.json").get("guidance_embeds")
        arch = "Flux dev" if guidance else "Flux schnell"
    if arch == "SD3" and read_json_config(path / "transformer" / "config.json").get("num_layers", 0) >= 38:
        arch = "SD3.5 Large"
    params, tensors = 0, 0
    dtypes: Counter[str] = Counter()
    for file in sorted(path.rglob("*.safetensors")):
        try:
            header = read_header(file)
        except HeaderError as exc:
            notes.append(str(exc))
            continue
        for t in header.tensors.values():
            dtypes[t.dtype] += t.numel
            params += t.numel
            tensors += 1
    if any(path.rglob("*.bin")) and not tensors:
        notes.append("weights are pickled .bin files; studio loads only .safetensors")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    checker = ships_safety_checker(path)
    if checker:
        notes.append("ships a safety checker: studio does not load it unless asked (--safety-checker)")
    return Inspection(
        path, "diffusers", CHECKPOINT, arch, params, dict(dtypes), tensors, size, notes=notes,
        license=license_of(path), safety_checker=checker,
    )

"""SD3 and SD3.5 single files: Stability's original checkpoint layout, with or without the text encoders.

`sd3_medium.safetensors` holds the MMDiT (`model.diffusion_model.joint_blocks…`) and the VAE;
the `_incl_clips` files add CLIP-L and CLIP-G (`text_encoders.clip_l.`, `text_encoders.clip_g.`),
`_incl_clips_t5xxlfp16` adds T5 (`text_encoders.t5xxl.`). Whatever the file lacks is paired
from ComfyUI's `models/text_encoders` and `models/vae` (or the files the user named), as
for Flux. T5 is loaded only when the recipe keeps it (`Recipe.t5`): running without it
saves its 4.8B parameters, as diffusers allows, and the choice is recorded.

The configs studio ships (`configs/sd3-medium`, `sd3.5-medium`, `sd3.5-large`) give the
architectures' sizes; diffusers' converter reads the rest from the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from studio.errors import first_line
from studio.models.components import (
    ComponentError, Encoder, comfy_models_roots, encoder_slots, find_vae, load_encoder, pair_encoders,
)
from studio.models.safetensors_header import HeaderError, read_header
from studio.models.tokenizers import TokenizerMissing, find_t5_tokenizer, t5_missing_message, t5_tokenizer

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
# Architecture (as inspect names it) -> the config folder; tests point these at shrunken copies.
SD3_CONFIGS: dict[str, Path] = {
    "SD3 Medium": CONFIGS_DIR / "sd3-medium",
    "SD3.5 Medium": CONFIGS_DIR / "sd3.5-medium",
    "SD3.5 Large": CONFIGS_DIR / "sd3.5-large",
}
INSIDE = {"text_encoder": "text_encoders.clip_l.", "text_encoder_2": "text_encoders.clip_g.",
          "text_encoder_3": "text_encoders.t5xxl."}
VAE_HINTS = ("sd3", "sd35", "sd3.5")


def parts_inside(path: Path) -> set[str]:
    """The components a single file holds besides the transformer: text encoder slots and "vae"."""
    try:
        keys = read_header(path).tensors.keys()
    except (HeaderError, OSError):
        return set()
    found = {slot for slot, prefix in INSIDE.items() if any(k.startswith(prefix) for k in keys)}
    if any(k.startswith("first_stage_model.") for k in keys):
        found.add("vae")
    return found


def needed_encoders(path: Path, config_dir: Path, t5: bool) -> dict[str, Encoder]:
    """The text-encoder slots to pair from other files: those the file lacks (T5 only if kept)."""
    inside = parts_inside(path)
    return {
        slot: encoder for slot, encoder in encoder_slots(config_dir).items()
        if slot not in inside and (t5 or slot != "text_encoder_3")
    }


def sd3_components(
    path: Path,
    config_dir: Path,
    torch_dtype: Any,
    *,
    t5: bool = True,
    text_encoders: Iterable[Path] = (),
    vae: Path | None = None,
    tokenizer_dirs: Iterable[Path] = (),
    model_dirs: Iterable[Path] = (),
    hf_cache: Path | None = None,
) -> dict[str, Any]:
    """from_single_file keywords for what the file lacks: paired encoders and VAE, the T5 tokenizer, or no T5."""
    from diffusers import AutoencoderKL

    model_dirs = tuple(model_dirs)
    roots = comfy_models_roots(path, model_dirs)
    components: dict[str, Any] = {}
    paired = pair_encoders(needed_encoders(path, config_dir, t5), text_encoders, roots, path.stem)
    if t5:
        try:
            folder = find_t5_tokenizer(tuple(tokenizer_dirs), (path.parent, *model_dirs), hf_cache)
        except TokenizerMissing:
            raise TokenizerMissing(t5_missing_message(path.stem)) from None
        components["tokenizer_3"] = t5_tokenizer(folder, config_dir / "tokenizer_3")
    else:
        components["text_encoder_3"] = components["tokenizer_3"] = None
    for slot, file in paired.items():
        components[slot] = load_encoder(file, config_dir / slot, torch_dtype)
    if "vae" not in parts_inside(path) or vae:
        vae_path = Path(vae) if vae else find_vae(roots, 16, VAE_HINTS, path.stem)
        try:
            components["vae"] = AutoencoderKL.from_single_file(
                str(vae_path), config=str(config_dir), subfolder="vae", local_files_only=True, torch_dtype=torch_dtype
            )
        except Exception as exc:
            raise ComponentError(f"{vae_path.name}: cannot load as the SD3 VAE: {first_line(exc)}") from exc
    return components

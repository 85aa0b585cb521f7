"""What differs per architecture: optional components, recommended settings, the samplers it can use.

Flux and SD3 sample by flow matching (diffusers' FlowMatch* schedulers), so A1111's
noise-prediction samplers (DPM++, DDIM, LMS…) do not apply to them; `FLOW_SAMPLERS`
names the ones that do, under the names A1111 and Forge give them. Plain Python:
the recipe and the CLI import it without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.bounded import read_json_config
from studio.models.comfy_layout import TRANSFORMER_CONFIGS, file_architecture
from studio.models.sd3_file import SD3_CONFIGS
from studio.models.gguf import GGUFUnavailable

# Our sampler name -> the flow-matching scheduler it means.
FLOW_SAMPLERS = {"Euler": "FlowMatchEulerDiscreteScheduler", "Heun": "FlowMatchHeunDiscreteScheduler"}
# Dynamic shifting (Flux) needs a scheduler that takes the pipeline's own sigmas and shift.
DYNAMIC_SHIFT_SAMPLERS = ("Euler",)


# Models that sample with their own scheduler whatever the recipe's sampler: Stable Cascade's stages.
OWN_SCHEDULERS = {"DDPMWuerstchenScheduler": "DDPM-Wuerstchen"}


class SamplerUnavailable(ValueError):
    """A sampler this model cannot use; the message is one line."""



def is_flow(scheduler_config: Any) -> bool:
    return str(dict(scheduler_config).get("_class_name", "")).startswith("FlowMatch")


def own_scheduler(scheduler_config: Any) -> str:
    """The scheduler a model always samples with, by name ("" where the recipe's sampler applies)."""
    return OWN_SCHEDULERS.get(str(dict(scheduler_config).get("_class_name", "")), "")


def samplers_for(scheduler_config: Any) -> tuple[str, ...] | None:
    """The sampler names a model with this scheduler config can use; None: every A1111 sampler
    (or, for a model with its own scheduler, none applies: see `own_scheduler`)."""
    config = dict(scheduler_config)
    if not is_flow(config):
        return None
    return DYNAMIC_SHIFT_SAMPLERS if config.get("use_dynamic_shifting") else tuple(FLOW_SAMPLERS)


def check_sampler(name: str, scheduler_config: Any, model: str = "this model") -> None:
    if own_scheduler(scheduler_config):
        return  # not refused: the engine says once that the sampler does not apply
    allowed = samplers_for(scheduler_config)
    if allowed is not None and name not in allowed:
        raise SamplerUnavailable(
            f"{model} samples by flow matching: sampler {name!r} cannot be used with it; choose {' or '.join(allowed)}"
        )


def folder_scheduler_config(folder: Path) -> dict:
    return read_json_config(Path(folder) / "scheduler" / "scheduler_config.json")


def folder_architecture(folder: Path) -> str:
    """'flux-dev', 'flux-schnell', 'sd3', 'stable-cascade' or '' for a diffusers folder."""
    cls = str(read_json_config(Path(folder) / "model_index.json").get("_class_name", ""))
    if cls.startswith("Flux"):
        dev = read_json_config(Path(folder) / "transformer" / "config.json").get("guidance_embeds")
        return "flux-dev" if dev else "flux-schnell"
    if cls.startswith("StableDiffusion3"):
        return "sd3"
    if cls in ("StableCascadeDecoderPipeline", "StableCascadeCombinedPipeline"):
        return "stable-cascade"  # samples with its own scheduler (OWN_SCHEDULERS)
    return ""


# Recommended settings, as the model cards give them; a folder's studio.toml overrides these.
DEFAULTS: dict[str, dict[str, Any]] = {
    # dev is guidance-distilled: the guidance value is an input, not CFG (no negative pass).
    "flux-dev": {"sampler": "Euler", "steps": 28, "cfg_scale": 3.5, "width": 1024, "height": 1024},
    # schnell is timestep-distilled: 4 steps, no guidance at all.
    "flux-schnell": {"sampler": "Euler", "steps": 4, "cfg_scale": 0.0, "width": 1024, "height": 1024},
    "sd3": {"sampler": "Euler", "steps": 28, "cfg_scale": 4.5, "width": 1024, "height": 1024},
}


# Flux has no negative pass: diffusers' FluxPipeline reads a negative prompt only at true_cfg_scale > 1,
# which studio does not set, as A1111 and Forge ignore it for Flux at CFG 1. It is not recorded, and said so.
NO_NEGATIVE = ("flux-dev", "flux-schnell")


def without_unused_negative(recipe: Any) -> tuple[Any, str]:
    """`recipe` without the negative prompts its model does not use, and the notice that says so ("" if none)."""
    if recipe.model_architecture not in NO_NEGATIVE or not (recipe.negative_prompt or recipe.hires_negative_prompt):
        return recipe, ""
    return (recipe.replace(negative_prompt="", hires_negative_prompt=""),
            "Flux does not use a negative prompt (as A1111 and Forge at CFG 1): not applied, not recorded")


_FILE_ARCHITECTURES = {"Flux dev": "flux-dev", "Flux schnell": "flux-schnell"}


def model_architecture(path: Path) -> str:
    """As `folder_architecture`, for a folder or a transformer file (Flux in ComfyUI's layout)."""
    path = Path(path)
    if path.is_dir():
        return folder_architecture(path)
    if not path.is_file():
        return ""
    try:
        arch = file_architecture(path)
    except GGUFUnavailable:
        return ""
    return "sd3" if arch in SD3_CONFIGS else _FILE_ARCHITECTURES.get(arch, "")


def scheduler_config_for(path: Path) -> dict:
    """The scheduler config a model samples with: its folder's, or the one studio ships for its file."""
    path = Path(path)
    if path.is_dir():
        return folder_scheduler_config(path)
    try:
        arch = file_architecture(path) if path.is_file() else ""
    except GGUFUnavailable:
        return {}
    folder = TRANSFORMER_CONFIGS.get(arch) or SD3_CONFIGS.get(arch)
    return folder_scheduler_config(folder) if folder else {}


def architecture_defaults(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    return dict(DEFAULTS.get(model_architecture(Path(path)), {}))


def folder_has_t5(folder: Path) -> bool | None:
    """Whether an SD3 folder ships its T5 encoder (text_encoder_3); None for other models."""
    index = read_json_config(Path(folder) / "model_index.json")
    if not str(index.get("_class_name", "")).startswith("StableDiffusion3"):
        return None
    entry = index.get("text_encoder_3")
    return isinstance(entry, list) and entry[:1] != [None] and (Path(folder) / "text_encoder_3").is_dir()


def optional_components(folder: Path, t5: bool = True) -> dict[str, Any]:
    """from_pretrained keywords that leave SD3's T5 encoder out: when `t5` is off, or the folder has none."""
    has_t5 = folder_has_t5(folder)
    if has_t5 is None or (t5 and has_t5):
        return {}
    return {"text_encoder_3": None, "tokenizer_3": None}

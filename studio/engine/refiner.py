"""The SDXL refiner, as A1111's "Refiner": the base denoises to the switch point, the refiner the rest.

The base runs with `denoising_end = refiner_switch` and hands its latents over undecoded;
the refiner (a StableDiffusionXLImg2ImgPipeline) picks them up at `denoising_start` of the
same schedule, with the recipe's sampler made from its own scheduler config. Both draw from
the job's per-image generators in turn, so the pair is as reproducible as one pipeline.

The refiner is loaded once beside the cached base (in its extras). It shares the base's
text_encoder_2 and VAE when they are the same weights (the official pair's are): same
config and byte-identical files, checked by a streamed hash once per load. Otherwise it
keeps its own. Progress, previews and cancel run through the worker's step callback in
both stages; the two share the VAE's latent space, so the base's preview projection serves both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.bounded import read_json_config
from studio.recipe import Recipe, RecipeError

REFINER_CLASS = "StableDiffusionXLImg2ImgPipeline"
SHARED = ("text_encoder_2", "vae")


@dataclass(frozen=True)
class RefinerCall:
    loaded: Any  # LoadedPipeline: the SDXL base
    recipe: Recipe
    mode: Any  # modes.Plan: the base's pipeline, kwargs and generators
    inputs: Any  # encode.PromptInputs for the base
    prompts: tuple[str, str]
    reporter: Callable[[str, int, Any], Callable[..., dict]]  # (stage, steps, switch) -> step callback
    notice: Callable[[str], None]
    library: Any



def is_refiner_folder(path: Path) -> bool:
    index = read_json_config(Path(path) / "model_index.json")
    return index.get("_class_name") == REFINER_CLASS or (
        str(index.get("_class_name", "")).startswith("StableDiffusionXL") and index.get("text_encoder") == [None, None]
    )


def with_refiner(recipe: Recipe, library: Any) -> Recipe:
    """The recipe with its refiner's hash, or RecipeError (one line) for what cannot be refined."""
    if not recipe.refiner:
        return recipe
    if recipe.init_image or recipe.hires_scale:
        raise RecipeError("the refiner runs on text-to-image here: no init image or hires fix with it")
    ref = library.resolve(recipe.refiner)
    if not Path(ref.path).is_dir() or not is_refiner_folder(Path(ref.path)):
        raise RecipeError(f"refiner {ref.name} is not an SDXL refiner folder (StableDiffusionXLImg2ImgPipeline)")
    return recipe.replace(refiner_hash=ref.hash)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}


def same_component(base: Path, refiner: Path, name: str) -> bool:
    """Whether `name` is the same in both folders: the same config, byte-identical weight files."""
    a, b = base / name, refiner / name
    config = "config.json"
    if not (a / config).is_file() or _comparable(read_json_config(a / config)) != _comparable(read_json_config(b / config)):
        return False
    files_a, files_b = _weights(a), _weights(b)
    if not files_a or [f.name for f in files_a] != [f.name for f in files_b]:
        return False
    if any(x.stat().st_size != y.stat().st_size for x, y in zip(files_a, files_b)):
        return False
    return all(_file_digest(x) == _file_digest(y) for x, y in zip(files_a, files_b))


def refiner_pipe(call: RefinerCall) -> Any:
    """The refiner beside the loaded base, loaded once; shares what is the same."""
    loaded, recipe = call.loaded, call.recipe
    ref = call.library.resolve(recipe.refiner)
    key = ("refiner", str(ref.path), ref.hash)
    pipe = loaded.extras.get(key)
    if pipe is not None:
        return pipe
    import torch
    from diffusers import StableDiffusionXLImg2ImgPipeline

    from studio.errors import first_line
    from studio.models.loading import apply_memory_options

    for old in [k for k in loaded.extras if isinstance(k, tuple) and k[:1] == ("refiner",)]:
        del loaded.extras[old]  # one refiner at a time beside the base
    base, path = loaded.pipe, Path(ref.path)
    shared: dict[str, Any] = {}
    if loaded.ref.format == "diffusers":
        shared = {name: getattr(base, name) for name in SHARED
                  if getattr(base, name, None) is not None and same_component(Path(loaded.ref.path), path, name)}
    try:
        pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
            path, torch_dtype=getattr(torch, recipe.dtype), local_files_only=True, use_safetensors=True, **shared,
        )
    except Exception as exc:
        raise RecipeError(f"refiner {ref.name}: cannot load ({first_line(exc)})") from exc
    pipe.set_progress_bar_config(disable=True)
    apply_memory_options(pipe, recipe.device, attention_slicing=recipe.attention_slicing,
                         vae_tiling=recipe.vae_tiling and "vae" not in shared, cpu_offload=recipe.cpu_offload)
    pipe.studio_shared = tuple(shared)  # what it shares with the base, for tests and reports
    pipe.studio_scheduler_config = dict(pipe.scheduler.config)
    loaded.extras[key] = pipe
    return pipe


def refine(call: RefinerCall) -> list[Any]:
    """Base to the switch point, refiner from it; the decoded images."""
    from studio.engine.encode import conditioning_for
    from studio.engine.pipelines import LoadedPipeline
    from studio.samplers import make_scheduler

    recipe, mode, loaded = call.recipe, call.mode, call.loaded
    if "XL" not in type(loaded.pipe).__name__ or not hasattr(loaded.pipe, "text_encoder_2"):
        raise RecipeError(f"a refiner finishes an SDXL base; {loaded.ref.name} is not one")
    refiner = refiner_pipe(call)
    base_steps = max(1, round(recipe.steps * recipe.refiner_switch))
    latents = mode.pipe(
        **call.inputs.kwargs,
        num_inference_steps=recipe.steps,
        denoising_end=recipe.refiner_switch,
        guidance_scale=recipe.cfg_scale,
        num_images_per_prompt=recipe.batch_size,
        generator=mode.generators,
        callback_on_step_end=call.reporter("base 1/2", base_steps, call.inputs.switch),
        output_type="latent",
        **mode.kwargs,
    ).images
    refiner.scheduler = make_scheduler(recipe.sampler, refiner.studio_scheduler_config, recipe.seed)
    as_loaded = LoadedPipeline(refiner, loaded.ref, refiner.studio_scheduler_config)
    inputs = conditioning_for(as_loaded, *call.prompts, recipe, call.notice)
    output = refiner(
        **inputs.kwargs,
        image=latents,
        num_inference_steps=recipe.steps,
        denoising_start=recipe.refiner_switch,
        guidance_scale=recipe.cfg_scale,
        num_images_per_prompt=recipe.batch_size,
        generator=mode.generators,
        callback_on_step_end=call.reporter("refiner 2/2", recipe.steps - base_steps, inputs.switch),
    )
    return list(output.images)

"""Hires fix: a first pass at the recipe's size, upscaled, then img2img over it at the larger size.

The second pass runs on `derived(loaded, "img2img")`, the same modules as the
first, with its own prompt conditioning (`hires_prompt`, or the first pass's;
prompt editing is scheduled over the second pass's steps). A latent upscaler
(A1111's "Latent" modes) interpolates the first pass's latents, which go into
img2img as they are, with no decode and encode between; a pixel upscaler
(Lanczos, studio-2x, the user's networks) works on the decoded first pass.
Each image's generator carries on from the first pass into the second, so the
two passes together are as reproducible as one.

Progress, previews and cancel go through the same step callback in both
passes; its `stage` names the pass for the status bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from studio.engine.encode import PromptInputs, conditioning_for
from studio.engine.modes import Plan, derived
from studio.engine.pipelines import LoadedPipeline
from studio.recipe import Recipe

# (stage, steps, prompt switch) -> the pipeline's step callback
ReporterFactory = Callable[[str, int, Any], Callable[..., dict]]
Notice = Callable[[str], None]


@dataclass(frozen=True)
class HiresCall:
    """What the worker already has for the first pass."""

    loaded: LoadedPipeline
    recipe: Recipe
    mode: Plan
    inputs: PromptInputs
    prompts: tuple[str, str]
    reporter: ReporterFactory
    notice: Notice
    library: Any = None  # the ModelLibrary, for the user's upscaler files


def first_stage(recipe: Recipe) -> str:
    return "" if not recipe.hires_scale else f"pass 1/2 {recipe.width}x{recipe.height}"


def hires_fix(call: HiresCall) -> list[Any]:
    """Both passes; the images at the hires size."""
    from studio.upscale.upscalers import resolve_upscaler

    recipe, loaded, mode = call.recipe, call.loaded, call.mode
    ref = resolve_upscaler(recipe.hires_upscaler, call.library)
    latent = ref.kind == "latent"
    first = mode.pipe(
        **call.inputs.kwargs,
        num_inference_steps=recipe.steps,
        guidance_scale=recipe.cfg_scale,
        num_images_per_prompt=recipe.batch_size,
        generator=mode.generators,
        callback_on_step_end=call.reporter(first_stage(recipe), recipe.steps, call.inputs.switch),
        output_type="latent" if latent else "pil",
        **mode.kwargs,
    )
    width, height = recipe.hires_size
    if latent:
        image: Any = upscale_latents(first.images, ref.name, width // mode.pipe.vae_scale_factor,
                                     height // mode.pipe.vae_scale_factor)
    else:
        image = upscale_images(list(first.images), ref, (width, height), recipe, loaded)
    steps = recipe.hires_steps or recipe.steps
    prompt = _without_lora_tags(recipe.hires_prompt, call.notice) or call.prompts[0]
    negative = _without_lora_tags(recipe.hires_negative_prompt, call.notice) or call.prompts[1]
    second_inputs = conditioning_for(loaded, prompt, negative, recipe.replace(steps=steps), call.notice)
    pipe = derived(loaded, "img2img")
    pipe.scheduler = mode.pipe.scheduler  # the recipe's sampler, set up by the worker
    output = pipe(
        **second_inputs.kwargs,
        image=image,
        strength=recipe.hires_denoise,
        num_inference_steps=steps,
        guidance_scale=recipe.cfg_scale,
        num_images_per_prompt=recipe.batch_size,
        generator=mode.generators,
        callback_on_step_end=call.reporter(f"pass 2/2 hires {width}x{height}", steps, second_inputs.switch),
    )
    return list(output.images)


def upscale_latents(latents: Any, name: str, width: int, height: int) -> Any:
    """The latents interpolated to (height, width) by A1111's latent mode `name`."""
    import torch.nn.functional as F

    from studio.upscale.upscalers import LATENT_MODES

    mode, antialias = LATENT_MODES[name]
    kwargs = {"antialias": True} if antialias else {}
    if mode in ("bilinear", "bicubic"):
        kwargs["align_corners"] = False
    return F.interpolate(latents, size=(height, width), mode=mode, **kwargs)


def upscale_images(images: list[Any], ref: Any, size: tuple[int, int], recipe: Recipe,
                   loaded: LoadedPipeline) -> list[Any]:
    from studio.upscale.upscalers import load_network, upscale

    net = None
    if ref.kind == "network":
        key = ("upscaler", str(ref.path))
        net = loaded.extras.get(key)
        if net is None:
            net = load_network(ref, recipe.allow_pickle).to(loaded.pipe.device)
            loaded.extras[key] = net
    return [upscale(image, ref, size, net=net, device=str(loaded.pipe.device)) for image in images]


def _without_lora_tags(text: str, notice: Notice) -> str:
    """The hires prompt as the encoder sees it: LoRAs are loaded once, by the first pass's prompt."""
    from studio.formats.lora_tags import extract_loras_lenient

    cleaned, loras = extract_loras_lenient(text, [])
    if loras:
        notice("LoRA tags in the hires prompt are not applied: the first pass's LoRAs apply to both passes")
    return cleaned

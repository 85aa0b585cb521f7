"""How one recipe is sampled: text-to-image, img2img or inpainting, and variation noise.

img2img and inpainting run on pipelines derived from the loaded one with
`from_pipe`: the same modules, no weights loaded again. diffusers 0.42's
`DiffusionPipeline.from_pipe` casts every shared module to float32 unless it is
given a dtype (diffusers#12754), so the dtype is always passed; a test checks
that the modules' dtypes and storage stay put.

Inpainting: the mask is blurred by `mask_blur`, the pipeline repaints under
it, and after decoding the result is laid over the init image through the
blurred mask, so wherever the blurred mask is black the output is the input,
pixel for pixel.

Variations (A1111's meaning): the initial noise is the spherical interpolation
of the seed's and the variation seed's noise at `variation_strength`; at 0 it is
the seed's noise and at 1 the variation seed's, exactly (the ends are returned,
not computed). Ancestral and SDE samplers also draw noise at every step, from
the job's generator; that generator is the one of whichever seed weighs more
(the seed below 0.5, the variation seed from 0.5), so both ends are exact for
them too and the step noise changes once, at 0.5. Over an init image the same
holds, with the noise varied where the pipeline draws it (`varied_draws`).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ContextManager

from studio.engine.pipelines import LoadedPipeline
from studio.recipe import Recipe, RecipeError

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass
class Plan:
    """What `_sample` calls: which pipeline, with which mode's arguments and generators."""

    pipe: Any
    kwargs: dict[str, Any]
    generators: list[Any]
    finish: Callable[[list[Image]], list[Image]] = list  # applied to the decoded images
    images: list[Image] | None = None  # set when there is nothing to denoise (strength too low)
    notes: list[str] = field(default_factory=list)
    around: Callable[[], ContextManager[Any]] = contextlib.nullcontext  # entered around the pipeline call


def plan(loaded: LoadedPipeline, recipe: Recipe, generators: list[Any]) -> Plan:
    if not recipe.init_image:
        if _unet_channels(loaded.pipe) == 9:
            raise RecipeError(f"{loaded.ref.name} is an inpainting model: give it an init image and a mask")
        kwargs: dict[str, Any] = {"width": recipe.width, "height": recipe.height}
        if recipe.variation_strength:
            kwargs["latents"], generators = variation_noise(loaded.pipe, recipe, generators)
        return Plan(loaded.pipe, kwargs, generators)

    from studio.iterate import load_inputs, overlay

    init, mask = load_inputs(recipe)
    if int(recipe.steps * recipe.strength) < 1:  # no step would run: the input is the answer
        return Plan(loaded.pipe, {}, generators, images=[init.copy() for _ in range(recipe.batch_size)])
    around: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    if recipe.variation_strength:
        generators, around = varied_draws(recipe, generators)
    if mask is None:
        if _unet_channels(loaded.pipe) == 9:
            raise RecipeError(f"{loaded.ref.name} is an inpainting model: give it a mask too")
        pipe = derived(loaded, "img2img")
        return Plan(pipe, {"image": init, "strength": recipe.strength}, generators, around=around)
    pipe = derived(loaded, "inpaint")
    kwargs = {"image": init, "mask_image": mask, "strength": recipe.strength,
              "width": recipe.width, "height": recipe.height}
    if recipe.inpaint_area == "masked" and mask.getbbox() is not None:
        kwargs["padding_mask_crop"] = recipe.inpaint_padding

    def finish(images: list[Image]) -> list[Image]:
        return [overlay(init, image, mask) for image in images]

    return Plan(pipe, kwargs, generators, finish, around=around)


def derived(loaded: LoadedPipeline, kind: str) -> Any:
    """The loaded pipeline as an img2img or inpaint pipeline, sharing its modules; made once."""
    pipe = loaded.extras.get(kind)
    if pipe is None:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        auto = AutoPipelineForImage2Image if kind == "img2img" else AutoPipelineForInpainting
        base = loaded.pipe
        if type(base).__name__.endswith("InpaintPipeline") and kind == "inpaint":
            return base
        try:
            pipe = auto.from_pipe(base, dtype=base.dtype)
        except (ValueError, KeyError) as exc:
            raise RecipeError(f"{loaded.ref.name} has no {kind} pipeline in diffusers ({type(base).__name__})") from exc
        pipe.set_progress_bar_config(disable=True)
        loaded.extras[kind] = pipe
    return pipe


def variation_noise(pipe: Any, recipe: Recipe, generators: list[Any]) -> tuple[Any, list[Any]]:
    """The initial latents for a variation, and the generators the sampler draws its step noise from."""
    import torch

    shape = (1, pipe.unet.config.in_channels, recipe.height // pipe.vae_scale_factor,
             recipe.width // pipe.vae_scale_factor)
    dtype = pipe.text_encoder.dtype if getattr(pipe, "text_encoder", None) is not None else pipe.unet.dtype
    varied = [torch.Generator("cpu").manual_seed(recipe.variation_seed + i) for i in range(recipe.batch_size)]
    # Drawn as diffusers' randn_tensor draws them (CPU, one generator an image), so strength 0
    # and 1 give the very latents a plain run of either seed would.
    base_noise = [torch.randn(shape, generator=g, dtype=dtype) for g in generators]
    other_noise = [torch.randn(shape, generator=g, dtype=dtype) for g in varied]
    w = recipe.variation_strength
    latents = torch.cat([slerp(a, b, w) for a, b in zip(base_noise, other_noise)])
    return latents, varied if w >= 0.5 else generators


def varied_draws(recipe: Recipe, generators: list[Any]) -> tuple[list[Any], Callable[[], ContextManager[Any]]]:
    """Variations over an init image: the generators to pass, and a context for the pipeline call.

    diffusers' img2img and inpaint pipelines draw their noise inside
    `prepare_latents` (and inpainting ignores given latents below strength 1),
    so the noise draw itself is varied: within the context, the pipeline
    module's `randn_tensor` returns the slerp of what the passed generators
    draw and what fresh generators of the other seed draw at the same point.
    The passed generators are those of the seed that weighs more, so every
    other draw (the VAE's sample of the init image, ancestral step noise) is
    that seed's, and both ends are exact: at strength 1 the slerp returns the
    variation seed's own draw, in a run that is then `--seed <variation seed>`'s.
    """
    w = recipe.variation_strength
    varied = [_cpu_generator(recipe.variation_seed + i) for i in range(recipe.batch_size)]
    passed, other_seed = (varied, recipe.seed) if w >= 0.5 else (generators, recipe.variation_seed)

    @contextlib.contextmanager
    def around():
        import torch
        from diffusers.utils import torch_utils

        modules = [m for m in list(sys.modules.values())
                   if getattr(m, "randn_tensor", None) is torch_utils.randn_tensor
                   and getattr(m, "__name__", "").startswith("diffusers.pipelines.")]
        original = torch_utils.randn_tensor
        others = [_cpu_generator(other_seed + i) for i in range(recipe.batch_size)]

        def randn(shape, generator=None, device=None, dtype=None, layout=None):
            drawn = original(shape, generator=generator, device=device, dtype=dtype, layout=layout)
            if generator is not passed or len(shape) != 4:
                return drawn
            other = original(shape, generator=others, device=device, dtype=dtype, layout=layout)
            # slerp from the seed's draw to the variation seed's, image by image
            pairs = zip(other.split(1), drawn.split(1)) if passed is varied else zip(drawn.split(1), other.split(1))
            return torch.cat([slerp(seed_noise, varied_noise, w) for seed_noise, varied_noise in pairs])

        for module in modules:
            module.randn_tensor = randn
        try:
            yield
        finally:
            for module in modules:
                module.randn_tensor = original

    return passed, around


def _cpu_generator(seed: int) -> Any:
    import torch

    return torch.Generator("cpu").manual_seed(seed)


def slerp(a: Any, b: Any, t: float) -> Any:
    """Spherical interpolation from `a` (t=0) to `b` (t=1); the ends are returned as they are."""
    import torch

    if t <= 0:
        return a
    if t >= 1:
        return b
    a32, b32 = a.float(), b.float()
    cos = (a32 / a32.norm() * (b32 / b32.norm())).sum().clamp(-1, 1)
    theta = torch.acos(cos)
    if theta.abs() < 1e-4:
        mixed = (1 - t) * a32 + t * b32
    else:
        mixed = (torch.sin((1 - t) * theta) * a32 + torch.sin(t * theta) * b32) / torch.sin(theta)
    return mixed.to(a.dtype)


def _unet_channels(pipe: Any) -> int:
    unet = getattr(pipe, "unet", None)
    return int(getattr(getattr(unet, "config", None), "in_channels", 4) or 4)

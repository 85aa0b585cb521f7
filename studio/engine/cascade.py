"""Stable Cascade through the engine: the prior (stage C), then the decoder (stage B and A).

The worker's cached pipeline is the decoder (`model`); the prior (`prior`) is loaded
beside it once, into the loaded pipeline's extras, so changing prompts or steps reloads
nothing. Both stages draw from the job's per-image CPU generators in turn, as the two
passes of a hires fix do, so the pair is as reproducible as one pipeline.

Previews: the prior's 16-channel embeddings and the decoder's 4-channel VQ latents are
both projected to RGB by a linear map fitted once per loaded model (least squares over a
few random latents decoded: through a 2-step decoder run for the prior, through the VQ
model for the decoder), so a preview is one small matrix product, never a decode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.models.cascade import COMBINED, DECODER, PRIOR, CascadeError, pair, stage_of
from studio.models.resolve import name_for
from studio.recipe import Recipe, RecipeError
from studio.samplers import DEFAULT_SAMPLER

# (stage, steps) -> the worker's step callback (progress, cancel)
ReporterFactory = Callable[[str, int], Callable[..., dict]]
PREVIEW_FIT_SIDE = 3  # prior latents a side in the fit: 32 decoder latents, 128 pixels
# The prior works at 1/42.67 of the side and the decoder at 10.67 times that, in 4x4 patches:
# only sides that are multiples of 128 pixels give the decoder a whole number of patches.
SIDE_MULTIPLE = 128


@dataclass(frozen=True)
class CascadeCall:
    loaded: Any  # LoadedPipeline: the decoder (or a combined folder's decoder with its prior)
    recipe: Recipe  # as recorded: prior and its hash filled in
    prompts: tuple[str, str]
    generators: list[Any]
    reporter: ReporterFactory
    preview: Callable[[int, Any], None] | None  # (step, image) -> emit; None: previews off
    preview_interval: float
    library: Any
    notice: Callable[[str], None]


def is_cascade(pipe: Any) -> bool:
    return type(pipe).__name__ == "StableCascadeDecoderPipeline"


def _candidates(library: Any, near: Path) -> list[tuple[str, Path]]:
    """Folders a stage's partner may be: the library's (and the hub cache's), and those beside `near`."""
    found = [(entry.name, Path(entry.path)) for entry in library.scan() if entry.format == "diffusers"]
    try:
        found += [(str(p), p) for p in sorted(near.parent.iterdir()) if (p / "model_index.json").is_file()]
    except OSError:
        pass
    return found


def with_stages(recipe: Recipe, library: Any) -> Recipe:
    """The recipe with its Stable Cascade stages named: `model` the decoder, `prior` stage C (and its hash).

    A recipe naming the prior as its model is turned around; anything else passes unchanged.
    """
    # Hashes nothing: most models are no Cascade, and the engine hashes a model beside its load.
    path = library.locate(recipe.model) or Path(library.resolve(recipe.model).path)  # resolve: walks again, or the miss
    stage = stage_of(path)
    name = name_for(recipe.model, path)
    if not stage or stage == COMBINED:
        if recipe.prior:
            what = "holds its own prior" if stage else "is not a Stable Cascade decoder"
            raise RecipeError(f"--prior applies to a Stable Cascade decoder; {name} {what}")
        if stage:
            _check_cascade(recipe)
            return recipe.replace(vae_tiling=False)
        return recipe
    try:
        if stage == PRIOR:
            if recipe.prior:
                raise RecipeError(f"{name} is a Stable Cascade prior: name the decoder (stage B) as the model")
            decoder_name, _ = pair(path, DECODER, _candidates(library, path))
            recipe = recipe.replace(model=decoder_name, model_hash="", prior=recipe.model)
            path = Path(library.resolve(recipe.model).path)
        if not recipe.prior:
            prior_name, _ = pair(path, PRIOR, _candidates(library, path))
            recipe = recipe.replace(prior=prior_name)
    except CascadeError as exc:
        raise RecipeError(str(exc)) from None
    prior = library.resolve(recipe.prior)
    if stage_of(prior.path) != PRIOR:
        raise RecipeError(f"{prior.name} is not a Stable Cascade prior (stage C) folder")
    _check_cascade(recipe)
    return recipe.replace(prior_hash=prior.hash, vae_tiling=False)


def _check_cascade(recipe: Recipe) -> None:
    """What Stable Cascade cannot do, as one line. (VAE tiling, often on in the config, is left off:
    its stage A is a VQ model with no tiling; the recorded recipe says so.)"""
    if recipe.vae:
        raise RecipeError("Stable Cascade decodes with its own stage A (a VQ model): a --vae does not apply")
    if recipe.width % SIDE_MULTIPLE or recipe.height % SIDE_MULTIPLE:
        raise RecipeError(
            f"Stable Cascade makes sizes that are multiples of {SIDE_MULTIPLE} pixels a side"
            f" (e.g. 1024x1024, 1152x896); got {recipe.width}x{recipe.height}"
        )
    if recipe.init_image or recipe.hires_scale or recipe.variation_strength or recipe.refiner:
        raise RecipeError("Stable Cascade runs text-to-image only here: no init image, hires fix, variations or refiner")


def _prior_pipe(call: CascadeCall) -> Any:
    loaded, recipe = call.loaded, call.recipe
    combined = getattr(loaded.pipe, "studio_prior", None)
    if combined is not None:
        return combined
    ref = call.library.resolve(recipe.prior)
    key = ("cascade-prior", str(ref.path), ref.hash)
    pipe = loaded.extras.get(key)
    if pipe is None:
        import torch

        from studio.models.cascade import load_stage
        from studio.models.loading import apply_memory_options

        for old in [k for k in loaded.extras if isinstance(k, tuple) and k[:1] == ("cascade-prior",)]:
            del loaded.extras[old]  # one prior at a time beside the decoder
        pipe = load_stage(Path(ref.path), getattr(torch, recipe.dtype))
        pipe.set_progress_bar_config(disable=True)
        apply_memory_options(pipe, recipe.device, attention_slicing=recipe.attention_slicing,
                             cpu_offload=recipe.cpu_offload)
        loaded.extras[key] = pipe
    return pipe


def cascade_sample(call: CascadeCall) -> list[Any]:
    """Both stages; the images at the recipe's size (a multiple of 128 a side: `with_stages`)."""
    import torch

    recipe, decoder = call.recipe, call.loaded.pipe
    prior = _prior_pipe(call)
    if prior.device != decoder.device and not recipe.cpu_offload:
        prior.to(decoder.device)
    prompt, negative = call.prompts
    from studio.engine.encode import conditioning_for

    conditioning_for(call.loaded, prompt, negative, recipe, call.notice)  # says what plain text loses
    if recipe.sampler != DEFAULT_SAMPLER:
        call.notice("Stable Cascade samples with its own scheduler (DDPM-Wuerstchen): the sampler does not apply")
    with torch.inference_mode():
        stage_c = prior(
            prompt=prompt, negative_prompt=negative or None, width=recipe.width, height=recipe.height,
            num_inference_steps=recipe.prior_steps, guidance_scale=recipe.prior_cfg_scale,
            num_images_per_prompt=recipe.batch_size, generator=call.generators,
            callback_on_step_end=_Previewing(call, call.reporter("stage C 1/2 prior", recipe.prior_steps),
                                             lambda: _prior_projection(call.loaded, prior, decoder)),
        )
        output = decoder(
            image_embeddings=stage_c.image_embeddings, prompt=prompt, negative_prompt=negative or None,
            num_inference_steps=recipe.steps, guidance_scale=recipe.cfg_scale, generator=call.generators,
            callback_on_step_end=_Previewing(call, call.reporter("stage B 2/2 decoder", recipe.steps),
                                             lambda: _decoder_projection(call.loaded, decoder)),
        )
    return list(output.images)


class _Previewing:
    """Wraps the worker's step callback: its progress and cancel, and this stage's own previews."""

    def __init__(self, call: CascadeCall, base: Callable[..., dict], projection: Callable[[], Any]) -> None:
        self.call, self.base, self.projection = call, base, projection
        self.last = float("-inf")
        self.seconds = 0.0  # spent on previews, for benches

    def __call__(self, pipe: Any, index: int, timestep: Any, kwargs: dict) -> dict:
        self.base(pipe, index, timestep, {k: v for k, v in kwargs.items() if k != "latents"})
        latents = kwargs.get("latents")
        now = time.perf_counter()
        if self.call.preview is not None and latents is not None and now - self.last >= self.call.preview_interval:
            self.last = now
            projection = self.projection()
            if projection is not None:
                self.call.preview(index + 1, projection.to_image(latents))
            self.seconds += time.perf_counter() - now
        return kwargs


def _fit(latents: Any, rgb: Any) -> Any:
    """The least-squares RGB = latents @ W + b over every latent pixel, as a LatentProjection."""
    import torch

    from studio.engine.preview import LatentProjection

    rgb = torch.nn.functional.adaptive_avg_pool2d(rgb.float().cpu(), latents.shape[-2:]).clamp(0, 1)
    channels = latents.shape[1]
    x = latents.float().permute(0, 2, 3, 1).reshape(-1, channels)
    x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    y = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
    solution = torch.linalg.lstsq(x, y).solution
    return LatentProjection(solution[:-1], solution[-1])


def _cached(loaded: Any, key: str, make: Callable[[], Any]) -> Any:
    if key not in loaded.extras:
        try:
            loaded.extras[key] = make()
        except Exception:  # a preview is a nicety; never fail a job over it
            loaded.extras[key] = None
    return loaded.extras[key]


def _prior_projection(loaded: Any, prior: Any, decoder: Any) -> Any:
    def make() -> Any:
        import torch

        generator = torch.Generator("cpu").manual_seed(0)
        channels = prior.prior.config.in_channels
        latents = torch.randn(3, channels, PREVIEW_FIT_SIDE, PREVIEW_FIT_SIDE, generator=generator)
        param = next(decoder.decoder.parameters())
        rgb = decoder(image_embeddings=latents.to(param.device, param.dtype), prompt="", num_inference_steps=2,
                      guidance_scale=0.0, generator=generator, output_type="pt").images
        return _fit(latents, rgb)

    return _cached(loaded, "cascade-prior-projection", make)


def _decoder_projection(loaded: Any, decoder: Any) -> Any:
    def make() -> Any:
        import torch

        generator = torch.Generator("cpu").manual_seed(0)
        vqgan = decoder.vqgan
        latents = torch.randn(2, vqgan.config.latent_channels, 16, 16, generator=generator)
        param = next(vqgan.parameters())
        rgb = vqgan.decode((latents * vqgan.config.scale_factor).to(param.device, param.dtype)).sample
        return _fit(latents, rgb.clamp(0, 1))

    return _cached(loaded, "cascade-decoder-projection", make)

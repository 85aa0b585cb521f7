"""The sampler's clean estimate (predicted x0) at each step, for previews.

Noisy latents read as static for the first third of a run; the model's own
estimate of the finished latents (x0) shows the picture from the first steps.
`watch_x0` wraps a scheduler's `step` to keep a reference to what it needs,
and `latest_x0` turns that into x0 only when a preview is drawn:

- most k-diffusion-style schedulers (Euler, Euler a, Heun, LMS, DPM2, DDIM,
  DPM++ SDE, LCM) compute x0 themselves and return it from `step`;
- flow matching (Flux, SD3): x0 = x_t - sigma * v;
- the multistep solvers (DPM++ 2M, UniPC, DEIS) and PLMS keep their sample
  in the variance-preserving form x_t = alpha_t x0 + sigma_t eps, so x0 comes
  from the model output by its prediction type (epsilon, v, sample).

A scheduler none of these fit gives None, and the preview falls back to the
noisy latents. Nothing here changes what the pipeline computes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass
class _Step:
    """The last `step` call: enough to compute x0 later, nothing computed yet."""

    model_output: Any
    timestep: Any
    sample: Any
    pred_x0: Any  # what the scheduler returned as x0, if it did
    index: int | None  # the scheduler's step index for this call


def watch_x0(scheduler: Any) -> Any:
    """Wrap `scheduler.step` (on this instance) to remember each call; returns the scheduler."""
    if getattr(scheduler, "_studio_x0_watched", False):
        return scheduler
    original = scheduler.step

    # functools.wraps keeps the signature pipelines inspect for `eta` and `generator`.
    @functools.wraps(original)
    def step(model_output: Any, timestep: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(model_output, timestep, sample, *args, **kwargs)
        index = getattr(scheduler, "step_index", None)
        scheduler._studio_last_step = _Step(
            model_output, timestep, sample, _returned_x0(result), None if index is None else index - 1
        )
        return result

    scheduler.step = step
    scheduler._studio_x0_watched = True
    scheduler._studio_last_step = None
    return scheduler


def latest_x0(scheduler: Any) -> Any:
    """x0 as of the last step (the shape of the latents), or None if it cannot be told."""
    last: _Step | None = getattr(scheduler, "_studio_last_step", None)
    if last is None:
        return None
    if last.pred_x0 is not None:
        return last.pred_x0
    try:
        return _from_model_output(scheduler, last)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RuntimeError):
        return None


def _returned_x0(result: Any) -> Any:
    if isinstance(result, tuple):
        return result[1] if len(result) > 1 else None
    for name in ("pred_original_sample", "denoised"):
        value = getattr(result, name, None)
        if value is not None:
            return value
    return None


def _from_model_output(scheduler: Any, last: _Step) -> Any:
    config = scheduler.config
    if type(scheduler).__name__.startswith("FlowMatch"):
        sigma = scheduler.sigmas[last.index]
        return last.sample - sigma.to(last.sample.device, last.sample.dtype) * last.model_output
    if hasattr(scheduler, "_sigma_to_alpha_sigma_t") and last.index is not None:
        alpha_t, sigma_t = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[last.index])
    elif hasattr(scheduler, "alphas_cumprod"):  # PLMS, DDPM: integer timesteps
        alpha_bar = scheduler.alphas_cumprod[int(last.timestep)]
        alpha_t, sigma_t = alpha_bar**0.5, (1 - alpha_bar) ** 0.5
    else:
        return None
    sample, output = last.sample, last.model_output
    alpha_t = alpha_t.to(sample.device, sample.dtype)
    sigma_t = sigma_t.to(sample.device, sample.dtype)
    prediction = config.get("prediction_type", "epsilon")
    if prediction == "epsilon":
        return (sample - sigma_t * output) / alpha_t
    if prediction == "v_prediction":
        return alpha_t * sample - sigma_t * output
    if prediction == "sample":
        return output
    if prediction == "flow_prediction":
        return sample - scheduler.sigmas[last.index].to(sample.device, sample.dtype) * output
    return None

"""Sampler names as AUTOMATIC1111 and ComfyUI users know them, mapped onto diffusers.

The table is plain data so `import studio.recipe` stays free of torch; the
scheduler itself is built only in `make_scheduler`, on the worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplerSpec:
    """How one named sampler is built from a model's own scheduler config."""

    scheduler: str  # diffusers scheduler class name
    options: dict[str, Any] = field(default_factory=dict)
    a1111_name: str = ""  # the "Sampler:" value A1111 writes
    schedule_type: str = "Automatic"  # the "Schedule type:" value A1111 writes


_KARRAS = {"use_karras_sigmas": True}

SAMPLERS: dict[str, SamplerSpec] = {
    "Euler": SamplerSpec("EulerDiscreteScheduler", a1111_name="Euler"),
    "Euler a": SamplerSpec("EulerAncestralDiscreteScheduler", a1111_name="Euler a"),
    "Heun": SamplerSpec("HeunDiscreteScheduler", a1111_name="Heun"),
    "LMS": SamplerSpec("LMSDiscreteScheduler", a1111_name="LMS"),
    "LMS Karras": SamplerSpec("LMSDiscreteScheduler", _KARRAS, "LMS", "Karras"),
    "DPM2": SamplerSpec("KDPM2DiscreteScheduler", a1111_name="DPM2"),
    "DPM2 a": SamplerSpec("KDPM2AncestralDiscreteScheduler", a1111_name="DPM2 a"),
    "DDIM": SamplerSpec("DDIMScheduler", a1111_name="DDIM"),
    "PLMS": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}, "PLMS"),
    "DPM++ 2M": SamplerSpec("DPMSolverMultistepScheduler", a1111_name="DPM++ 2M"),
    "DPM++ 2M Karras": SamplerSpec(
        "DPMSolverMultistepScheduler", _KARRAS, "DPM++ 2M", "Karras"
    ),
    "DPM++ 2M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++"},
        "DPM++ 2M SDE",
    ),
    "DPM++ 2M SDE Karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", **_KARRAS},
        "DPM++ 2M SDE",
        "Karras",
    ),
    "DPM++ SDE": SamplerSpec("DPMSolverSDEScheduler", a1111_name="DPM++ SDE"),
    "DPM++ SDE Karras": SamplerSpec(
        "DPMSolverSDEScheduler", _KARRAS, "DPM++ SDE", "Karras"
    ),
    "DEIS": SamplerSpec("DEISMultistepScheduler", a1111_name="DEIS"),
    "UniPC": SamplerSpec("UniPCMultistepScheduler", a1111_name="UniPC"),
    "LCM": SamplerSpec("LCMScheduler", a1111_name="LCM"),
}

DEFAULT_SAMPLER = "DPM++ 2M Karras"


# "Schedule type:" values (A1111 1.9+, Forge) that are the sampler's own schedule as diffusers builds it:
# evenly over the model's timesteps or sigmas. Forge writes "Simple" for Flux, whose own schedule in
# diffusers is that one (shifted linear sigmas). Exponential, SGM Uniform, Beta, Align Your Steps,
# KL Optimal, Polyexponential and DDIM have no sampler here.
OWN_SCHEDULES = ("automatic", "simple", "normal", "uniform")


def sampler_from_a1111(name: str, schedule_type: str = "") -> str | None:
    """Our sampler name for an A1111 (sampler, schedule type) pair, or None."""
    name = name.strip()
    schedule = schedule_type.strip().lower() or "automatic"
    if name.endswith(" Karras"):  # the pre-1.9 A1111 spelling folds the schedule in
        name, schedule = name[: -len(" Karras")], "karras"
    for ours, spec in SAMPLERS.items():
        if spec.a1111_name.lower() != name.lower():
            continue
        if schedule in OWN_SCHEDULES and spec.schedule_type == "Automatic":
            return ours
        if spec.schedule_type.lower() == schedule:
            return ours
    return None


def sampler_for_schedule(name: str, schedule_type: str = "") -> tuple[str | None, str]:
    """Our sampler for an A1111 or Forge (Sampler, Schedule type), and a note when the schedule is not
    one studio has (then the sampler runs on its own schedule); (None, "") for an unknown sampler."""
    exact = sampler_from_a1111(name, schedule_type)
    if exact is not None:
        return exact, ""
    plain = sampler_from_a1111(name.strip().removesuffix(" Karras"), "Automatic")
    if plain is None:
        return None, ""
    schedule = "Karras" if name.strip().endswith(" Karras") else schedule_type.strip()
    return plain, f"Schedule type {schedule!r} is not available for {plain}; used its own schedule"


def make_scheduler(name: str, base_config: Any, seed: int = 0) -> Any:
    """A fresh diffusers scheduler for `name`, built from the model's own config."""
    import diffusers

    from studio.models.architectures import FLOW_SAMPLERS, check_sampler, is_flow

    if is_flow(base_config):  # Flux, SD3: flow matching has its own schedulers
        check_sampler(name, base_config)
        return getattr(diffusers, FLOW_SAMPLERS[name]).from_config(base_config)
    spec = SAMPLERS[name]
    cls = getattr(diffusers, spec.scheduler)
    options = dict(spec.options)
    if spec.scheduler == "DPMSolverSDEScheduler":
        # torchsde draws its Brownian path from its own seed: tie it to the recipe's.
        options["noise_sampler_seed"] = seed
    return cls.from_config(base_config, **options)

"""InvokeAI: `invokeai_metadata` JSON (3.x and later) and the legacy `sd-metadata` (2.x)."""

from __future__ import annotations

import re
from typing import Any

from studio.bounded import loads_json
from studio.formats.fields import Reading, lora, number, sampler, size
from studio.samplers import sampler_from_a1111

INVOKEAI_KEY = "invokeai_metadata"
LEGACY_KEY = "sd-metadata"

# InvokeAI scheduler names; a "_k" suffix means Karras sigmas.
_SAMPLERS = {
    "ddim": "DDIM", "deis": "DEIS", "lms": "LMS", "pndm": "PLMS", "heun": "Heun", "euler": "Euler",
    "euler_a": "Euler a", "kdpm_2": "DPM2", "kdpm_2_a": "DPM2 a", "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_sde": "DPM++ SDE", "unipc": "UniPC", "lcm": "LCM",
    "plms": "PLMS", "dpm_2": "DPM2", "dpm_2_a": "DPM2 a",
}

_USED = {
    "positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "scheduler", "width",
    "height", "model", "loras", "vae", "generation_mode", "app_version", "rand_device",
    "positive_style_prompt", "negative_style_prompt",
}


def invoke_sampler(name: str) -> str | None:
    """Our sampler for an InvokeAI scheduler name (`dpmpp_2m_k`, legacy `k_euler_a`); None if none fits."""
    name = name.removeprefix("k_")
    karras = name.endswith("_k")
    base = _SAMPLERS.get(name.removesuffix("_k"))
    if base is None:
        return None
    return sampler_from_a1111(base, "Karras" if karras else "Automatic")


def read_invokeai(text: str) -> Reading:
    data = loads_json(text, "invokeai_metadata")
    if not isinstance(data, dict):
        raise ValueError("invokeai_metadata is not a table")
    notes: list[str] = []
    fields: dict[str, Any] = {
        "prompt": str(data.get("positive_prompt", "")),
        "negative_prompt": str(data.get("negative_prompt", "")),
    }
    _numbers(fields, data, notes)
    scheduler = str(data.get("scheduler", ""))
    sampler(fields, invoke_sampler(scheduler), scheduler, notes)
    model = data.get("model") or {}
    if isinstance(model, dict):
        fields["model"] = str(_model_name(model))
        fields["model_hash"] = str(model.get("hash", ""))[:10]
    loras = []
    for item in data.get("loras") or []:
        ref = item.get("lora") or item.get("model") or {}
        name = _model_name(ref)
        if name and (entry := lora(str(name), item.get("weight", 1.0), notes)) is not None:
            loras.append(entry)
    fields["loras"] = loras
    vae = data.get("vae")
    if isinstance(vae, dict) and _model_name(vae):
        fields["vae"] = str(_model_name(vae))
    if data.get("generation_mode") not in (None, "txt2img", "sd1_txt2img", "sdxl_txt2img"):
        notes.append(f"generation_mode: {data['generation_mode']}")
    for key, value in data.items():
        if key not in _USED and value not in (None, "", [], {}):
            notes.append(f"{key}: {value}")
    return fields, notes


def read_invokeai_legacy(text: str) -> Reading:
    data = loads_json(text, "sd-metadata")
    image = data["image"]
    notes: list[str] = []
    prompts = image.get("prompt", [])
    combined = prompts[0]["prompt"] if isinstance(prompts, list) and prompts else str(prompts)
    negatives = re.findall(r"\[([^\[\]]*)\]", combined)
    fields: dict[str, Any] = {
        "prompt": re.sub(r"\s*\[[^\[\]]*\]", "", combined).strip(),
        "negative_prompt": ", ".join(n.strip() for n in negatives),
    }
    _numbers(fields, image, notes)
    sampler_name = str(image.get("sampler", ""))
    sampler(fields, invoke_sampler(sampler_name), sampler_name, notes)
    fields["model"] = str(data.get("model_weights", ""))
    fields["model_hash"] = str(data.get("model_hash", ""))[:10]
    return fields, notes


def _numbers(fields: dict[str, Any], data: dict[str, Any], notes: list[str]) -> None:
    """seed, steps, cfg_scale and the size, which both versions spell alike."""
    for key, kind in (("seed", int), ("steps", int), ("cfg_scale", float)):
        number(fields, key, data.get(key), kind, notes)
    if data.get("width") and data.get("height"):
        size(fields, f"{data['width']}x{data['height']}", notes)


def _model_name(ref: dict[str, Any]) -> Any:
    return ref.get("model_name") or ref.get("name") or ""

"""Fooocus: its `parameters` are JSON (scheme "fooocus"), in a PNG chunk or EXIF UserComment."""

from __future__ import annotations

import re
from typing import Any

from studio.bounded import loads_json
from studio.formats.comfyui import comfy_sampler
from studio.formats.fields import Reading, lora, number, sampler, size, stem

_STEPS = {"Speed": 30, "Quality": 60, "Extreme Speed": 8, "Lightning": 4, "Hyper-SD": 4}
_USED = {
    "prompt", "negative_prompt", "full_prompt", "full_negative_prompt", "resolution", "guidance_scale",
    "sampler", "scheduler", "seed", "steps", "base_model", "base_model_hash", "performance",
    "version", "metadata_scheme", "vae", "styles",
}


def is_fooocus(text: str) -> bool:
    """Whether `parameters` text is Fooocus's JSON rather than A1111's lines."""
    return text.lstrip().startswith("{")


def read_fooocus(text: str) -> Reading:
    data = loads_json(text, "Fooocus parameters")
    if not isinstance(data, dict) or "prompt" not in data:
        raise ValueError("JSON parameters without a prompt")
    notes: list[str] = []
    prompt = data.get("full_prompt") or data["prompt"]
    negative = data.get("full_negative_prompt") or data.get("negative_prompt", "")
    if isinstance(prompt, list):
        prompt = ", ".join(map(str, prompt))
    if isinstance(negative, list):
        negative = ", ".join(map(str, negative))
    fields: dict[str, Any] = {"prompt": str(prompt), "negative_prompt": str(negative)}
    if data.get("full_prompt") and data.get("styles") not in (None, "[]", []):
        notes.append(f"styles {data['styles']} are expanded into the prompt")
    number(fields, "cfg_scale", data.get("guidance_scale"), float, notes)
    number(fields, "seed", data.get("seed"), int, notes)
    if "steps" in data:
        number(fields, "steps", data["steps"], int, notes)
    elif data.get("performance") in _STEPS:
        fields["steps"] = _STEPS[data["performance"]]
        notes.append(f"steps taken from performance {data['performance']!r}")
    resolution = re.findall(r"\d+", str(data.get("resolution", "")))
    if len(resolution) == 2:
        size(fields, f"{resolution[0]}x{resolution[1]}", notes)
    name, note = comfy_sampler(str(data.get("sampler", "")), str(data.get("scheduler", "normal")))
    sampler(fields, name, f"{data.get('sampler')} / {data.get('scheduler')}", notes)
    if note:
        notes.append(note)
    loras = []
    for key, value in data.items():
        if key.startswith("lora_combined_") and isinstance(value, str) and " : " in value:
            lora_name, _, weight = value.rpartition(" : ")
            if (entry := lora(stem(lora_name), weight, notes)) is not None:
                loras.append(entry)
        elif key.startswith(("lora_combined_", "lora_hashes")):
            continue
        elif key not in _USED and value not in (None, "", "None"):
            notes.append(f"{key}: {value}")
    fields["loras"] = loras
    fields["model"] = stem(str(data.get("base_model", "")))
    fields["model_hash"] = str(data.get("base_model_hash", ""))
    fields["_source"] = "Fooocus"
    return fields, notes

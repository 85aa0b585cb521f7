"""The fallback: whatever sd-parsers recognises (NovelAI, InvokeAI 'Dream', ...), loosely mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.formats.comfyui import comfy_sampler
from studio.formats.fields import Reading, number, sampler, size
from studio.formats.invokeai import invoke_sampler
from studio.samplers import sampler_from_a1111


def read_with_sd_parsers(path: Path) -> tuple[Reading, str] | None:
    """(fields and notes, the generator's name), or None when sd-parsers does not know the image."""
    try:
        from sd_parsers import ParserManager

        info = ParserManager().parse(path)
    except Exception:  # a peer parser's failure just means "not recognised"
        return None
    if info is None or not info.samplers:
        return None
    found = info.samplers[0]
    notes = ["read by sd-parsers; check the result"]
    params = dict(found.parameters)
    fields: dict[str, Any] = {
        "prompt": ", ".join(p.value for p in found.prompts),
        "negative_prompt": ", ".join(p.value for p in found.negative_prompts),
    }
    number(fields, "seed", params.get("seed"), int, notes)
    number(fields, "steps", params.get("steps"), int, notes)
    number(fields, "cfg_scale", params.get("cfg_scale"), float, notes)
    meta = info.metadata if isinstance(info.metadata, dict) else {}
    if meta.get("width") and meta.get("height"):
        size(fields, f"{meta['width']}x{meta['height']}", notes)
    name = (
        sampler_from_a1111(found.name, str(params.get("scheduler", "")))
        or comfy_sampler(found.name, str(params.get("scheduler", "normal")))[0]
        or invoke_sampler(found.name)
    )
    sampler(fields, name, found.name, notes)
    model = found.model
    fields["model"] = (model.name or "") if model else ""
    fields["model_hash"] = (model.hash or "") if model else ""
    return (fields, notes), info.generator.value

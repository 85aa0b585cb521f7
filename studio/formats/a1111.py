"""AUTOMATIC1111's `parameters` text, written and read in one place.

    a castle <lora:detail:0.5>
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, ...

A1111, Civitai and sd-parsers read it; so does `studio import`, for images from
A1111, Forge and everything else that writes it. `A1111_FIELDS` are the recipe
fields it carries: writing a recipe and reading it back gives those unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.formats import SOFTWARE
from studio.formats.fields import Reading, number, sampler, size
from studio.formats.lora_tags import extract_loras_lenient, format_weight, lora_tag, tagged_names
from studio.formats.stages import read_stages, stage_fields
from studio.recipe import MAX_CLIP_SKIP
from studio.samplers import SAMPLERS, sampler_for_schedule

if TYPE_CHECKING:
    from studio.recipe import Recipe

PARAMETERS_KEY = "parameters"  # the PNG text chunk (and EXIF UserComment) A1111 writes

A1111_FIELDS = (
    "prompt", "negative_prompt", "steps", "sampler", "cfg_scale", "seed", "width", "height",
    "model", "model_hash", "vae", "vae_hash", "loras", "embeddings", "embedding_hashes", "clip_skip",
)
# Carried when a second model takes part: Stable Cascade's prior, the SDXL refiner (formats/stages.py).
A1111_STAGE_FIELDS = ("prior", "prior_hash", "prior_steps", "prior_cfg_scale", "refiner", "refiner_hash",
                      "refiner_switch")
# Carried when they take effect, as A1111 writes them: strength with an init image, mask blur
# and inpaint area with a mask, the variation seed with a variation strength. (The init image
# and the mask themselves are not in A1111's text; they are in the studio recipe chunk.)
A1111_ITERATION_FIELDS = (
    "strength", "mask_blur", "inpaint_area", "inpaint_padding", "variation_seed", "variation_strength",
)
# Carried when hires fix is on (`hires_scale`), as A1111 writes them: `Denoising strength`
# is then the hires pass's, and `Size` the first pass's.
A1111_HIRES_FIELDS = (
    "hires_scale", "hires_upscaler", "hires_steps", "hires_denoise", "hires_prompt", "hires_negative_prompt",
)

# --- writing -------------------------------------------------------------------


def a1111_quote(value: str) -> str:
    """Quote a value the way A1111 does: JSON-quoted only when it holds , : or a newline."""
    if any(c in value for c in ",:\n"):
        return json.dumps(value, ensure_ascii=False)
    return value


def a1111_prompt(recipe: Recipe) -> str:
    """The prompt as A1111 writes it: LoRAs appear as `<lora:name:weight>` tags."""
    typed = tagged_names(recipe.prompt)
    tags = [lora_tag(lora.name, lora.weight) for lora in recipe.loras if lora.name not in typed]
    return " ".join([recipe.prompt, *tags]) if tags else recipe.prompt


def a1111_parameters(recipe: Recipe) -> str:
    spec = SAMPLERS[recipe.sampler]
    distilled = recipe.model_architecture == "flux-dev"  # guidance is an input, not CFG: Forge's two fields
    # Stable Cascade samples with its own scheduler (DDPM-Wuerstchen): it used no sampler, so none is written
    cascade = bool(recipe.prior) or recipe.model_architecture == "stable-cascade"
    sampled = [] if cascade else [("Sampler", spec.a1111_name or recipe.sampler), ("Schedule type", spec.schedule_type)]
    fields: list[tuple[str, str]] = [
        ("Steps", str(recipe.steps)),
        *sampled,
        ("CFG scale", "1" if distilled else format_weight(recipe.cfg_scale)),
        *([("Distilled CFG Scale", format_weight(recipe.cfg_scale))] if distilled else []),
        ("Seed", str(recipe.seed)),
        ("Size", recipe.size),
    ]
    if recipe.model_hash:
        fields.append(("Model hash", recipe.model_hash))
    if recipe.clip_skip > 1:  # A1111 writes it only when it is not the default
        fields.append(("Clip skip", str(recipe.clip_skip)))
    # A1111 names a checkpoint by its file stem; a path would leak the user's folders.
    fields.append(("Model", Path(recipe.model).stem if "/" in recipe.model else recipe.model))
    if recipe.model_license:  # the terms the model was released under, as it declares them
        fields.append(("License", recipe.model_license))
    if recipe.vae_hash:
        fields.append(("VAE hash", recipe.vae_hash))
    if recipe.vae:
        fields.append(("VAE", recipe.vae))
    fields.extend(_encoder_fields(recipe))
    lora_hashes = [f"{lora.name}: {lora.hash}" for lora in recipe.loras if lora.hash]
    if lora_hashes:
        fields.append(("Lora hashes", ", ".join(lora_hashes)))
    ti_hashes = [f"{name}: {digest}" for name, digest in zip(recipe.embeddings, recipe.embedding_hashes) if digest]
    if ti_hashes:
        fields.append(("TI hashes", ", ".join(ti_hashes)))
    fields.extend(_iteration_fields(recipe))
    fields.extend(_hires_fields(recipe))
    fields.extend(stage_fields(recipe))  # the prior (Stable Cascade), the refiner (SDXL)
    fields.append(("Version", SOFTWARE))
    line = ", ".join(f"{key}: {a1111_quote(value)}" for key, value in fields)
    text = a1111_prompt(recipe)
    if recipe.negative_prompt:
        text += f"\nNegative prompt: {recipe.negative_prompt}"
    return f"{text}\n{line}"


def _encoder_fields(recipe: Recipe) -> list[tuple[str, str]]:
    """The text-encoder files a transformer file was paired with, as Forge lists its extra modules, and T5 off."""
    fields = [(f"Module {i}", Path(name).stem) for i, name in enumerate(recipe.text_encoders, 1)]
    if not recipe.t5:
        fields.append(("T5", "off"))
    return fields


def _iteration_fields(recipe: Recipe) -> list[tuple[str, str]]:
    fields = []
    if recipe.variation_strength:
        fields += [("Variation seed", str(recipe.variation_seed)),
                   ("Variation seed strength", format_weight(recipe.variation_strength))]
    if recipe.init_image and not recipe.upscaler:  # an upscale runs no diffusion
        fields.append(("Denoising strength", format_weight(recipe.strength)))
    if recipe.mask:
        fields.append(("Mask blur", str(recipe.mask_blur)))
        if recipe.inpaint_area == "masked":
            fields += [("Inpaint area", "Only masked"), ("Masked area padding", str(recipe.inpaint_padding))]
    return fields


def _hires_fields(recipe: Recipe) -> list[tuple[str, str]]:
    if recipe.upscaler:  # as A1111's Extras tab writes an upscale
        return [("Postprocess upscale by", format_weight(recipe.upscale_scale)),
                ("Postprocess upscaler", recipe.upscaler)]
    if not recipe.hires_scale:
        return []
    fields = [("Denoising strength", format_weight(recipe.hires_denoise)),
              ("Hires upscale", format_weight(recipe.hires_scale))]
    if recipe.hires_steps:  # A1111 leaves it out when it is the first pass's
        fields.append(("Hires steps", str(recipe.hires_steps)))
    fields.append(("Hires upscaler", recipe.hires_upscaler))
    if recipe.hires_prompt:
        fields.append(("Hires prompt", recipe.hires_prompt))
    if recipe.hires_negative_prompt:
        fields.append(("Hires negative prompt", recipe.hires_negative_prompt))
    return fields


# --- reading -------------------------------------------------------------------

# A key is a word with spaces, dashes or slashes; a value is a JSON string or runs to the comma.
_PARAM = re.compile(r'\s*(\w[\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111_line(line: str) -> dict[str, str]:
    """`Steps: 20, Sampler: Euler, Lora hashes: "a: 1, b: 2"` -> a dict of unquoted values."""
    result: dict[str, str] = {}
    for match in _PARAM.finditer(line):
        key, value = match.group(1).strip(), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        result[key] = value
    return result


def parse_a1111(text: str) -> dict[str, str]:
    """Split A1111 `parameters` text into `prompt`, `negative_prompt` and its fields.

    Field names keep A1111's spelling ("Steps", "CFG scale", "Hires upscale", ...).
    Raises ValueError when the text has no line of settings.
    """
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    last = lines[-1] if lines else ""
    # The settings line is the last one and holds several `Key: value` pairs.
    if len(_PARAM.findall(last)) >= 3:
        params = parse_a1111_line(last)
        lines = lines[:-1]
    if "Steps" not in params:
        raise ValueError("no A1111 settings line (Steps: …, Sampler: …)")
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:") :].lstrip()
        target.append(line)
    return {
        "prompt": "\n".join(prompt).strip(),
        "negative_prompt": "\n".join(negative).strip(),
        **params,
    }


def parse_lora_hashes(value: str) -> dict[str, str]:
    """`a: 123, b: 456` -> {"a": "123", "b": "456"}."""
    result = {}
    for item in value.split(","):
        name, _, digest = item.partition(":")
        if name.strip():
            result[name.strip()] = digest.strip()
    return result


_USED = {
    "prompt", "negative_prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size",
    "Model hash", "Model", "VAE", "VAE hash", "Lora hashes", "TI hashes", "Clip skip",
    "Variation seed", "Variation seed strength", "Mask blur", "Inpaint area", "Masked area padding",
    "License",
}
_IGNORED = {"Version", "Hashes", "ENSD", "Eta"}  # no effect on our samplers' pixels


def read_a1111(text: str) -> Reading:
    """Recipe fields from A1111 `parameters` text; `model` is the name as written, not yet looked up."""
    params = parse_a1111(text)
    notes: list[str] = []
    prompt, loras = extract_loras_lenient(params["prompt"], notes)
    lora_hashes = parse_lora_hashes(params.get("Lora hashes", ""))
    fields: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": params["negative_prompt"],
        "loras": [{"name": lora.name, "weight": lora.weight, "hash": lora_hashes.get(lora.name, "")} for lora in loras],
        "model": params.get("Model", ""),
        "model_hash": params.get("Model hash", ""),
    }
    number(fields, "steps", params.get("Steps"), int, notes)
    number(fields, "cfg_scale", params.get("CFG scale"), float, notes)
    number(fields, "seed", params.get("Seed"), int, notes)
    number(fields, "clip_skip", params.get("Clip skip"), int, notes)
    if not 1 <= fields.get("clip_skip", 1) <= MAX_CLIP_SKIP:
        notes.append(f"Clip skip {fields.pop('clip_skip')} is out of range; used 1")
    if "Size" in params:
        size(fields, params["Size"], notes)
    if "Sampler" in params:
        name, note = sampler_for_schedule(params["Sampler"], params.get("Schedule type", ""))
        if name is None and "Distilled CFG Scale" in params:  # Forge's Flux: Euler is what flow matching takes
            name, note = "Euler", f"sampler {params['Sampler']!r} is not available; used Euler (Flux)"
        sampler(fields, name, f"{params['Sampler']} / {params.get('Schedule type', 'Automatic')}", notes)
        notes.extend([note] if note else [])
    if params.get("VAE"):
        fields["vae"] = params["VAE"]
    if params.get("VAE hash"):
        fields["vae_hash"] = params["VAE hash"]
    if params.get("License"):
        fields["model_license"] = params["License"]
    if params.get("TI hashes"):
        embeddings = parse_lora_hashes(params["TI hashes"])
        fields["embeddings"], fields["embedding_hashes"] = list(embeddings), list(embeddings.values())
    consumed = _read_iteration(params, fields, notes) | _read_hires(params, fields, notes)
    consumed |= _read_flux(params, fields, notes)
    consumed |= read_stages(params, fields, notes)
    for key, value in params.items():
        if key not in _USED and key not in _IGNORED and key not in consumed:
            notes.append(f"{key}: {value}")
    studio_made = params.get("Version", "").startswith("studio")
    fields["_source"] = "studio (A1111 text)" if studio_made else "AUTOMATIC1111"
    return fields, notes


def _read_flux(params: dict[str, str], fields: dict[str, Any], notes: list[str]) -> set[str]:
    """Forge's Flux fields: Distilled CFG Scale (studio's CFG for Flux dev), Module N, and studio's T5 off."""
    used = {key for key in params if re.fullmatch(r"Module \d+", key)}
    modules = [params[key] for key in sorted(used, key=lambda k: int(k.split()[1]))]
    if modules:  # Forge lists the VAE among its modules; studio keeps that under VAE
        vae = params.get("VAE", "")
        fields["text_encoders"] = [m for m in modules if m != vae and m not in ("ae", "ae.safetensors")]
        if not vae and any(m in ("ae", "ae.safetensors") for m in modules):
            fields["vae"] = "ae"
    if params.get("T5") == "off":
        fields["t5"] = False
        used.add("T5")
    if "Distilled CFG Scale" in params:
        number(fields, "cfg_scale", params["Distilled CFG Scale"], float, notes)
        if params.get("CFG scale", "1") not in ("1", "1.0"):
            notes.append(f"CFG scale {params['CFG scale']} (real CFG over distilled guidance) is not applied")
        used.add("Distilled CFG Scale")
    return used


def _read_iteration(params: dict[str, str], fields: dict[str, Any], notes: list[str]) -> set[str]:
    """Denoising strength, mask blur, inpaint area and the variation seed; the keys it used."""
    if "Variation seed strength" in params:
        number(fields, "variation_seed", params.get("Variation seed"), int, notes)
        number(fields, "variation_strength", params["Variation seed strength"], float, notes)
    if "Denoising strength" in params and not any(key.startswith("Hires") for key in params):
        number(fields, "strength", params["Denoising strength"], float, notes)
        notes.append("made from an init image, which the metadata does not hold; it runs as text-to-image")
    if "Mask blur" in params:
        number(fields, "mask_blur", params["Mask blur"], int, notes)
    if params.get("Inpaint area") == "Only masked":
        fields["inpaint_area"] = "masked"
        number(fields, "inpaint_padding", params.get("Masked area padding"), int, notes)
    return {"Denoising strength"} if "strength" in fields else set()


def _read_hires(params: dict[str, str], fields: dict[str, Any], notes: list[str]) -> set[str]:
    """Hires fix: its scale, steps and upscaler, and Denoising strength as the hires pass's."""
    if "Hires upscale" not in params:
        return set()
    number(fields, "hires_scale", params["Hires upscale"], float, notes)
    number(fields, "hires_steps", params.get("Hires steps"), int, notes)
    number(fields, "hires_denoise", params.get("Denoising strength"), float, notes)
    if params.get("Hires upscaler"):
        fields["hires_upscaler"] = params["Hires upscaler"]
    for key, name in (("Hires prompt", "hires_prompt"), ("Hires negative prompt", "hires_negative_prompt")):
        if params.get(key):
            fields[name] = params[key]
    return {"Hires upscale", "Hires steps", "Hires upscaler", "Hires prompt", "Hires negative prompt",
            "Denoising strength"}

"""Recover a Recipe from an image another tool (or studio) made.

Each reader turns one tool's metadata into Recipe fields plus notes on what it
could not carry over (hires fix, clip skip, an unknown sampler...). Order:
studio's own `studio-recipe` chunk (exact), InvokeAI, ComfyUI's prompt graph,
Fooocus and AUTOMATIC1111 `parameters`, then whatever sd-parsers recognises.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.recipe import MAX_SEED, LoraRef, Recipe, RecipeError
from studio.samplers import DEFAULT_SAMPLER, SAMPLERS, sampler_from_a1111
from studio.formats.png import (
    PARAMETERS_KEY,
    RECIPE_KEY,
    parse_a1111,
    parse_lora_hashes,
    split_lora_tags,
)


class ImportFailed(Exception):
    """The image cannot be read or holds no recipe; the message is one line."""


@dataclass
class ImportResult:
    recipe: Recipe
    source: str  # the tool that made the image: studio, AUTOMATIC1111, ComfyUI...
    notes: list[str] = field(default_factory=list)  # what could not be mapped


# --- reading the image --------------------------------------------------------


def read_metadata(path: Path) -> dict[str, str]:
    """Every text the image carries that a generator may have written."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read ({exc.strerror})") from None
    if path.is_dir():
        raise ImportFailed(f"{path}: is a folder, not an image")
    if size == 0:
        raise ImportFailed(f"{path}: empty file")
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise ImportFailed(f"{path}: not an image studio can read (PNG, JPEG or WebP)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImportFailed(f"{path}: cannot open image ({exc})") from None
    with image:
        try:
            image.load()  # reads to the end: a truncated file fails here
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImportFailed(f"{path}: truncated or damaged image ({exc})") from None
        texts: dict[str, str] = {}
        for key, value in {**image.info, **getattr(image, "text", {})}.items():
            if isinstance(value, str):
                texts[str(key)] = value
        comment = image.info.get("comment")
        if isinstance(comment, bytes):
            texts.setdefault("comment", comment.decode("utf-8", "replace"))
        texts.update(_exif_texts(image))
    return texts


def _exif_texts(image: Any) -> dict[str, str]:
    """A1111 and Fooocus write `parameters` to EXIF UserComment in JPEG and WebP;
    ComfyUI writes its graph to the Make/Model tags of WebP as 'Prompt:{...}'."""
    texts: dict[str, str] = {}
    try:
        exif = image.getexif()
        user_comment = exif.get_ifd(0x8769).get(0x9286)
    except Exception:  # malformed EXIF: nothing to read there
        return texts
    if isinstance(user_comment, bytes) and len(user_comment) > 8:
        texts["parameters"] = _decode_user_comment(user_comment)
    elif isinstance(user_comment, str) and user_comment.strip():
        texts["parameters"] = user_comment
    for tag in (0x010F, 0x0110):
        value = exif.get(tag)
        if isinstance(value, str) and ":" in value:
            key, _, text = value.partition(":")
            if key.lower() in ("prompt", "workflow"):
                texts[key.lower()] = text
    return texts


def _decode_user_comment(raw: bytes) -> str:
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        # piexif writes UTF-16 big-endian; some writers use little-endian.
        be, le = body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")
        return be if sum(c.isascii() for c in be) >= sum(c.isascii() for c in le) else le
    return body.decode("utf-8", "replace").rstrip("\x00")


# --- the readers --------------------------------------------------------------


def import_recipe(path: Path, locate: Callable[..., tuple[str, str, str]] | None = None) -> ImportResult:
    """The recipe in the image at `path`; raises ImportFailed with a one-line reason.

    `locate(name, hash)` finds the model locally and returns (name, hash, note);
    the default looks with `studio.models.resolve`.
    """
    texts = read_metadata(path)
    locate = locate or locate_model
    readers: list[tuple[str, str, Callable[[Any], tuple[dict[str, Any], list[str]]]]] = [
        (RECIPE_KEY, "studio", _from_studio),
        ("invokeai_metadata", "InvokeAI", _from_invokeai),
        ("sd-metadata", "InvokeAI", _from_invokeai_legacy),
        ("prompt", "ComfyUI", _from_comfyui),
        (PARAMETERS_KEY, "", _from_parameters),
        ("comment", "", _from_parameters),
    ]
    failures = []
    for key, source, reader in readers:
        if key not in texts:
            continue
        try:
            fields, notes = reader(texts[key])
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            failures.append(f"{key}: {exc}")
            continue
        source = fields.pop("_source", source)
        if source == "studio":
            return ImportResult(_build(fields, notes), source, notes)
        return ImportResult(_finish(fields, notes, locate), source, notes)
    generic = _from_sd_parsers(path)
    if generic is not None:
        fields, notes, source = generic
        return ImportResult(_finish(fields, notes, locate), source, notes)
    if failures:
        raise ImportFailed(f"{path}: metadata found but unreadable ({failures[0]})")
    raise ImportFailed(f"{path}: no generation metadata found (not made by a known tool)")


def _from_studio(text: str) -> tuple[dict[str, Any], list[str]]:
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"studio recipe is not valid TOML ({exc})") from None


_A1111_USED = {
    "prompt", "negative_prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size",
    "Model hash", "Model", "VAE", "VAE hash", "Lora hashes", "TI hashes", "Version", "Hashes",
}
_A1111_IGNORED = {"Version", "Hashes", "ENSD", "Eta"}  # no effect on our samplers' pixels


def _from_parameters(text: str) -> tuple[dict[str, Any], list[str]]:
    stripped = text.strip()
    if stripped.startswith("{"):
        return _from_fooocus(json.loads(stripped))
    return _from_a1111(text)


def _from_a1111(text: str) -> tuple[dict[str, Any], list[str]]:
    params = parse_a1111(text)
    notes: list[str] = []
    prompt, tags = split_lora_tags(params["prompt"])
    lora_hashes = parse_lora_hashes(params.get("Lora hashes", ""))
    fields: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": params["negative_prompt"],
        "loras": [
            {"name": name, "weight": weight, "hash": lora_hashes.get(name, "")} for name, weight in tags
        ],
    }
    _number(fields, "steps", params.get("Steps"), int, notes)
    _number(fields, "cfg_scale", params.get("CFG scale"), float, notes)
    _number(fields, "seed", params.get("Seed"), int, notes)
    if "Size" in params:
        _size(fields, params["Size"], notes)
    if "Sampler" in params:
        name = sampler_from_a1111(params["Sampler"], params.get("Schedule type", ""))
        _sampler(fields, name, f"{params['Sampler']} / {params.get('Schedule type', 'Automatic')}", notes)
    fields["_model"] = (params.get("Model", ""), params.get("Model hash", ""))
    if params.get("VAE"):
        fields["vae"] = params["VAE"]
        fields["vae_hash"] = params.get("VAE hash", "")
    if params.get("TI hashes"):
        fields["embeddings"] = list(parse_lora_hashes(params["TI hashes"]))
    for key, value in params.items():
        if key not in _A1111_USED and key not in _A1111_IGNORED:
            notes.append(f"{key}: {value}")
    if params.get("Version", "").startswith("studio"):
        fields["_source"] = "studio (A1111 text)"
    else:
        fields["_source"] = "AUTOMATIC1111"
    return fields, notes


# ComfyUI / Fooocus sampler names -> A1111 names (the schedule decides "Karras").
_COMFY_SAMPLERS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_sde": "DPM++ SDE", "ddim": "DDIM", "uni_pc": "UniPC", "uni_pc_bh2": "UniPC",
    "lcm": "LCM", "deis": "DEIS", "plms": "PLMS",
}
_COMFY_SCHEDULES = {"karras": "Karras", "normal": "Automatic", "simple": "Automatic",
                    "sgm_uniform": "Automatic", "ddim_uniform": "Automatic"}


def comfy_sampler(sampler_name: str, scheduler: str = "normal") -> tuple[str | None, str]:
    """Our sampler for a ComfyUI (sampler_name, scheduler), and a note when approximate."""
    base = sampler_name.removesuffix("_gpu").removesuffix("_cfg_pp")
    a1111 = _COMFY_SAMPLERS.get(base)
    if a1111 is None:
        return None, ""
    schedule = _COMFY_SCHEDULES.get(scheduler)
    note = ""
    if schedule is None:
        schedule, note = "Automatic", f"scheduler {scheduler!r} replaced by the sampler's own"
    elif scheduler not in ("normal", "karras"):
        note = f"scheduler {scheduler!r} approximated by the sampler's own"
    name = sampler_from_a1111(a1111, schedule)
    if name is None and schedule == "Karras":
        name = sampler_from_a1111(a1111, "Automatic")
        note = f"{a1111} has no Karras variant here; used plain {a1111}"
    return name, note


def _from_comfyui(text: str) -> tuple[dict[str, Any], list[str]]:
    graph = json.loads(text)
    if not isinstance(graph, dict):
        raise ValueError("ComfyUI prompt is not a node graph")
    graph = {str(k): v for k, v in graph.items() if isinstance(v, dict)}
    samplers = [
        (node_id, node) for node_id, node in graph.items()
        if str(node.get("class_type", "")).startswith("KSampler") or "sampler_name" in node.get("inputs", {})
    ]
    if not samplers:
        raise ValueError("no KSampler node in the ComfyUI graph")
    notes: list[str] = []
    # The first pass is the sampler fed by an empty latent; later ones refine (hires fix).
    first = next((s for s in samplers if _latent_source(graph, s[1]) is not None), samplers[0])
    if len(samplers) > 1:
        notes.append(f"workflow has {len(samplers)} samplers; took the first pass (node {first[0]})")
    inputs = first[1].get("inputs", {})
    walk = _ComfyWalk(graph, notes)
    fields: dict[str, Any] = {
        "prompt": walk.text(inputs.get("positive")),
        "negative_prompt": walk.text(inputs.get("negative")),
    }
    _number(fields, "seed", walk.value(inputs.get("seed", inputs.get("noise_seed"))), int, notes)
    _number(fields, "steps", walk.value(inputs.get("steps")), int, notes)
    _number(fields, "cfg_scale", walk.value(inputs.get("cfg")), float, notes)
    sampler_name = str(walk.value(inputs.get("sampler_name")) or "")
    scheduler = str(walk.value(inputs.get("scheduler")) or "normal")
    name, note = comfy_sampler(sampler_name, scheduler)
    _sampler(fields, name, f"{sampler_name} / {scheduler}", notes)
    if note:
        notes.append(note)
    denoise = walk.value(inputs.get("denoise"))
    if denoise not in (None, 1, 1.0):
        notes.append(f"denoise: {denoise}")
    latent = _latent_source(graph, first[1])
    if latent is not None:
        latent_inputs = latent.get("inputs", {})
        width, height = walk.value(latent_inputs.get("width")), walk.value(latent_inputs.get("height"))
        if width and height:
            _size(fields, f"{width}x{height}", notes)
        batch = walk.value(latent_inputs.get("batch_size"))
        if isinstance(batch, int) and 1 <= batch <= 64:
            fields["batch_size"] = batch
    else:
        notes.append("image size: the sampler does not start from an empty latent (img2img?)")
    model_name, loras = walk.model_chain(inputs.get("model"))
    fields["loras"] = loras
    fields["_model"] = (model_name, "")
    return fields, notes


def _latent_source(graph: dict[str, Any], sampler: dict[str, Any]) -> dict[str, Any] | None:
    link = sampler.get("inputs", {}).get("latent_image")
    if isinstance(link, list) and link:
        node = graph.get(str(link[0]), {})
        if "EmptyLatent" in str(node.get("class_type", "")) or "EmptySD3Latent" in str(node.get("class_type", "")):
            return node
    return None


class _ComfyWalk:
    """Follow links ([node_id, output]) through a ComfyUI prompt graph."""

    TEXT_KEYS = ("text", "text_g", "string", "value", "prompt", "text_l")

    def __init__(self, graph: dict[str, Any], notes: list[str]) -> None:
        self.graph, self.notes = graph, notes

    def _node(self, link: Any) -> dict[str, Any] | None:
        if isinstance(link, list) and link and str(link[0]) in self.graph:
            return self.graph[str(link[0])]
        return None

    def value(self, value: Any, depth: int = 0) -> Any:
        """A literal input, or the literal a linked primitive node holds."""
        node = self._node(value)
        if node is None:
            return value
        if depth > 20:
            return None
        for key in ("value", "seed", "noise_seed", "int", "float", "string", "text", "number"):
            if key in node.get("inputs", {}):
                return self.value(node["inputs"][key], depth + 1)
        return None

    def text(self, link: Any, depth: int = 0) -> str:
        """The prompt text behind a conditioning input (CLIPTextEncode and friends)."""
        node = self._node(link)
        if node is None or depth > 20:
            return link if isinstance(link, str) else ""
        inputs = node.get("inputs", {})
        for key in self.TEXT_KEYS:
            if key in inputs:
                value = inputs[key]
                return self.text(value, depth + 1) if isinstance(value, list) else str(value)
        parts = [
            self.text(value, depth + 1)
            for key, value in inputs.items()
            if isinstance(value, list) and key.startswith(("conditioning", "positive", "negative"))
        ]
        parts = [p for p in parts if p]
        if len(parts) > 1:
            self.notes.append(f"{node.get('class_type')}: combined prompts were joined with ', '")
        return ", ".join(parts)

    def model_chain(self, link: Any) -> tuple[str, list[dict[str, Any]]]:
        """Walk model inputs back to the checkpoint, collecting LoRAs on the way."""
        loras: list[dict[str, Any]] = []
        for _ in range(50):
            node = self._node(link)
            if node is None:
                break
            inputs = node.get("inputs", {})
            kind = str(node.get("class_type", ""))
            if "ckpt_name" in inputs or "unet_name" in inputs:
                return str(self.value(inputs.get("ckpt_name", inputs.get("unet_name")))), loras[::-1]
            if "lora_name" in inputs:
                weight = self.value(inputs.get("strength_model", 1.0))
                clip = self.value(inputs.get("strength_clip", weight))
                if clip != weight:
                    self.notes.append(f"LoRA {inputs['lora_name']}: CLIP strength {clip} used as {weight}")
                loras.append({"name": _stem(str(self.value(inputs["lora_name"]))),
                              "weight": float(weight), "hash": ""})
            elif kind not in ("ModelSamplingDiscrete", "FreeU", "FreeU_V2"):
                if "model" not in inputs:
                    break
                self.notes.append(f"model node {kind!r} was not applied")
            link = inputs.get("model")
        return "", loras[::-1]


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".safetensors", ".ckpt", ".pt", ".pth", ".bin"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


_FOOOCUS_STEPS = {"Speed": 30, "Quality": 60, "Extreme Speed": 8, "Lightning": 4, "Hyper-SD": 4}
_FOOOCUS_USED = {
    "prompt", "negative_prompt", "full_prompt", "full_negative_prompt", "resolution", "guidance_scale",
    "sampler", "scheduler", "seed", "steps", "base_model", "base_model_hash", "performance",
    "version", "metadata_scheme", "vae", "styles",
}


def _from_fooocus(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
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
    _number(fields, "cfg_scale", data.get("guidance_scale"), float, notes)
    _number(fields, "seed", data.get("seed"), int, notes)
    if "steps" in data:
        _number(fields, "steps", data["steps"], int, notes)
    elif data.get("performance") in _FOOOCUS_STEPS:
        fields["steps"] = _FOOOCUS_STEPS[data["performance"]]
        notes.append(f"steps taken from performance {data['performance']!r}")
    resolution = re.findall(r"\d+", str(data.get("resolution", "")))
    if len(resolution) == 2:
        _size(fields, f"{resolution[0]}x{resolution[1]}", notes)
    name, note = comfy_sampler(str(data.get("sampler", "")), str(data.get("scheduler", "normal")))
    _sampler(fields, name, f"{data.get('sampler')} / {data.get('scheduler')}", notes)
    if note:
        notes.append(note)
    loras = []
    for key, value in data.items():
        if key.startswith("lora_combined_") and isinstance(value, str) and " : " in value:
            lora, _, weight = value.rpartition(" : ")
            loras.append({"name": _stem(lora), "weight": float(weight), "hash": ""})
        elif key.startswith(("lora_combined_", "lora_hashes")):
            continue
        elif key not in _FOOOCUS_USED and value not in (None, "", "None"):
            notes.append(f"{key}: {value}")
    fields["loras"] = loras
    fields["_model"] = (_stem(str(data.get("base_model", ""))), str(data.get("base_model_hash", "")))
    fields["_source"] = "Fooocus"
    return fields, notes


# InvokeAI scheduler names; a "_k" suffix means Karras sigmas.
_INVOKE_SAMPLERS = {
    "ddim": "DDIM", "deis": "DEIS", "lms": "LMS", "pndm": "PLMS", "heun": "Heun", "euler": "Euler",
    "euler_a": "Euler a", "kdpm_2": "DPM2", "kdpm_2_a": "DPM2 a", "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_sde": "DPM++ SDE", "unipc": "UniPC", "lcm": "LCM",
    "plms": "PLMS", "dpm_2": "DPM2", "dpm_2_a": "DPM2 a",
}


def invoke_sampler(name: str) -> str | None:
    name = name.removeprefix("k_")
    karras = name.endswith("_k")
    base = _INVOKE_SAMPLERS.get(name.removesuffix("_k"))
    if base is None:
        return None
    return sampler_from_a1111(base, "Karras" if karras else "Automatic")


_INVOKE_USED = {
    "positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "scheduler", "width",
    "height", "model", "loras", "vae", "generation_mode", "app_version", "rand_device",
    "positive_style_prompt", "negative_style_prompt",
}


def _from_invokeai(text: str) -> tuple[dict[str, Any], list[str]]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("invokeai_metadata is not a table")
    notes: list[str] = []
    fields: dict[str, Any] = {
        "prompt": str(data.get("positive_prompt", "")),
        "negative_prompt": str(data.get("negative_prompt", "")),
    }
    for key, target, kind in (("seed", "seed", int), ("steps", "steps", int), ("cfg_scale", "cfg_scale", float)):
        _number(fields, target, data.get(key), kind, notes)
    if data.get("width") and data.get("height"):
        _size(fields, f"{data['width']}x{data['height']}", notes)
    scheduler = str(data.get("scheduler", ""))
    _sampler(fields, invoke_sampler(scheduler), scheduler, notes)
    model = data.get("model") or {}
    if isinstance(model, dict):
        fields["_model"] = (str(model.get("model_name") or model.get("name") or ""), str(model.get("hash", ""))[:10])
    loras = []
    for item in data.get("loras") or []:
        ref = item.get("lora") or item.get("model") or {}
        name = ref.get("model_name") or ref.get("name") or ""
        if name:
            loras.append({"name": str(name), "weight": float(item.get("weight", 1.0)), "hash": ""})
    fields["loras"] = loras
    vae = data.get("vae")
    if isinstance(vae, dict) and (vae.get("model_name") or vae.get("name")):
        fields["vae"] = str(vae.get("model_name") or vae.get("name"))
    if data.get("generation_mode") not in (None, "txt2img", "sd1_txt2img", "sdxl_txt2img"):
        notes.append(f"generation_mode: {data['generation_mode']}")
    for key, value in data.items():
        if key not in _INVOKE_USED and value not in (None, "", [], {}):
            notes.append(f"{key}: {value}")
    return fields, notes


def _from_invokeai_legacy(text: str) -> tuple[dict[str, Any], list[str]]:
    data = json.loads(text)
    image = data["image"]
    notes: list[str] = []
    prompts = image.get("prompt", [])
    combined = prompts[0]["prompt"] if isinstance(prompts, list) and prompts else str(prompts)
    negatives = re.findall(r"\[([^\[\]]*)\]", combined)
    fields: dict[str, Any] = {
        "prompt": re.sub(r"\s*\[[^\[\]]*\]", "", combined).strip(),
        "negative_prompt": ", ".join(n.strip() for n in negatives),
    }
    for key, kind in (("seed", int), ("steps", int), ("cfg_scale", float)):
        _number(fields, key, image.get(key), kind, notes)
    if image.get("width") and image.get("height"):
        _size(fields, f"{image['width']}x{image['height']}", notes)
    sampler = str(image.get("sampler", ""))
    _sampler(fields, invoke_sampler(sampler), sampler, notes)
    fields["_model"] = (str(data.get("model_weights", "")), str(data.get("model_hash", ""))[:10])
    return fields, notes


def _from_sd_parsers(path: Path) -> tuple[dict[str, Any], list[str], str] | None:
    """Any other format sd-parsers knows (NovelAI, InvokeAI 'Dream', ...), loosely mapped."""
    try:
        from sd_parsers import ParserManager

        info = ParserManager().parse(path)
    except Exception:  # a peer parser's failure just means "not recognised"
        return None
    if info is None or not info.samplers:
        return None
    sampler = info.samplers[0]
    notes = ["read by sd-parsers; check the result"]
    params = dict(sampler.parameters)
    fields: dict[str, Any] = {
        "prompt": ", ".join(p.value for p in sampler.prompts),
        "negative_prompt": ", ".join(p.value for p in sampler.negative_prompts),
    }
    _number(fields, "seed", params.get("seed"), int, notes)
    _number(fields, "steps", params.get("steps"), int, notes)
    _number(fields, "cfg_scale", params.get("cfg_scale"), float, notes)
    meta = info.metadata if isinstance(info.metadata, dict) else {}
    if meta.get("width") and meta.get("height"):
        _size(fields, f"{meta['width']}x{meta['height']}", notes)
    name = (
        sampler_from_a1111(sampler.name, str(params.get("scheduler", "")))
        or comfy_sampler(sampler.name, str(params.get("scheduler", "normal")))[0]
        or invoke_sampler(sampler.name)
    )
    _sampler(fields, name, sampler.name, notes)
    model = sampler.model
    fields["_model"] = ((model.name or "") if model else "", (model.hash or "") if model else "")
    return fields, notes, info.generator.value


# --- shared helpers ------------------------------------------------------------


def _number(fields: dict[str, Any], key: str, value: Any, kind: type, notes: list[str]) -> None:
    if value is None or value == "":
        return
    try:
        if isinstance(value, bool):
            raise TypeError
        if kind is int and not isinstance(value, int):
            text = str(value).strip()
            number = int(text) if re.fullmatch(r"[+-]?\d+", text) else int(float(text))
        else:
            number = kind(value)
    except (TypeError, ValueError, OverflowError):
        notes.append(f"{key}: could not read {value!r}")
        return
    if key == "seed" and not 0 <= number <= MAX_SEED - 1024:
        notes.append(f"seed {number} is out of range; used {number % 2**32}")
        number %= 2**32
    fields[key] = number


def _size(fields: dict[str, Any], text: str, notes: list[str]) -> None:
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not match:
        notes.append(f"size: could not read {text!r}")
        return
    width, height = int(match.group(1)), int(match.group(2))
    snapped = [max(8, min(8192, int(v / 8 + 0.5) * 8)) for v in (width, height)]
    if snapped != [width, height]:
        notes.append(f"size {width}x{height} rounded to {snapped[0]}x{snapped[1]}")
    fields["width"], fields["height"] = snapped


def _sampler(fields: dict[str, Any], name: str | None, original: str, notes: list[str]) -> None:
    if name is None:
        notes.append(f"sampler {original!r} is not available; used {DEFAULT_SAMPLER}")
        return
    fields["sampler"] = name


def locate_model(name: str, model_hash: str = "") -> tuple[str, str, str]:
    """(model name, hash, note) for a model named or hashed in another tool's metadata."""
    from studio.models.resolve import ModelNotFound, resolve

    for query in (name, _stem(name) if name else "", model_hash):
        if not query:
            continue
        try:
            ref = resolve(query)
        except (ModelNotFound, OSError, ValueError):
            continue
        note = ""
        if model_hash and ref.hash and not ref.hash.startswith(model_hash[:10]):
            note = f"local model {ref.name} has hash {ref.hash}, the image says {model_hash}"
        elif query == model_hash and name:
            note = f"model {name!r} found by its hash as {ref.name}"
        return ref.name, ref.hash or model_hash, note
    label = f"{name!r}" + (f" (hash {model_hash})" if model_hash else "") if name else f"hash {model_hash}"
    if not name and not model_hash:
        return "studio-tiny", "", "no model named in the image; used studio-tiny"
    return _stem(name) or model_hash, model_hash, f"model {label} not found locally"


def _build(fields: dict[str, Any], notes: list[str]) -> Recipe:
    try:
        return Recipe.from_dict(fields)
    except RecipeError as exc:
        raise ValueError(str(exc)) from None


def _finish(fields: dict[str, Any], notes: list[str], locate: Callable[..., tuple[str, str, str]]) -> Recipe:
    """Find the model, drop what the Recipe cannot hold, and validate."""
    fields.pop("_source", None)
    name, model_hash = fields.pop("_model", ("", ""))
    model, found_hash, note = locate(name, model_hash)
    fields["model"], fields["model_hash"] = model, found_hash
    if note:
        notes.append(note)
    fields["loras"] = tuple(LoraRef(**lora) for lora in fields.get("loras", []))
    fields["embeddings"] = tuple(fields.get("embeddings", ()))
    fields.setdefault("sampler", DEFAULT_SAMPLER)
    if not fields.get("prompt"):
        notes.append("the image has no prompt")
    for key in ("steps", "cfg_scale"):
        default = getattr(Recipe(prompt=""), key)
        if key not in fields:
            notes.append(f"{key}: not in the image; used {default}")
    for _ in range(len(fields)):
        try:
            return Recipe(**fields)
        except RecipeError as exc:
            # Drop the offending value and say so, rather than give up on the whole image.
            message = str(exc).lower()
            bad = next(
                (k for k in fields if message.startswith(k.replace("_", " ")) or k in message.split()),
                None,
            )
            if bad is None or bad == "prompt":
                raise ImportFailed(f"recovered recipe is not usable: {exc}") from None
            notes.append(f"{bad}: {exc}; used the default")
            fields.pop(bad)
    raise ImportFailed("recovered recipe is not usable")


__all__ = ["ImportFailed", "ImportResult", "import_recipe", "read_metadata", "comfy_sampler", "SAMPLERS"]

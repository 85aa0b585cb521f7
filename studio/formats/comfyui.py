"""ComfyUI's `prompt` chunk: the node graph it ran, walked back from the first sampler.

The graph is untrusted: every walk is bounded in depth and in the nodes it
visits, so a graph that branches without end cannot hang import.
"""

from __future__ import annotations

import json
from typing import Any

from studio.formats.fields import Reading, lora, number, sampler, size, stem
from studio.samplers import sampler_from_a1111

# ComfyUI / Fooocus sampler names -> A1111 names (the schedule decides "Karras").
_SAMPLERS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_sde": "DPM++ SDE", "ddim": "DDIM", "uni_pc": "UniPC", "uni_pc_bh2": "UniPC",
    "lcm": "LCM", "deis": "DEIS", "plms": "PLMS",
}
_SCHEDULES = {"karras": "Karras", "normal": "Automatic", "simple": "Automatic",
              "sgm_uniform": "Automatic", "ddim_uniform": "Automatic"}

MAX_DEPTH = 20  # links followed from one input
MAX_CHAIN = 50  # model nodes between a sampler and its checkpoint
MAX_VISITS = 10_000  # nodes one walk (a prompt, a value, the model chain) may visit


def comfy_sampler(sampler_name: str, scheduler: str = "normal") -> tuple[str | None, str]:
    """Our sampler for a ComfyUI (sampler_name, scheduler), and a note when approximate."""
    base = sampler_name.removesuffix("_gpu").removesuffix("_cfg_pp")
    a1111 = _SAMPLERS.get(base)
    if a1111 is None:
        return None, ""
    schedule = _SCHEDULES.get(scheduler)
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


def read_comfyui(text: str) -> Reading:
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
    number(fields, "seed", walk.value(inputs.get("seed", inputs.get("noise_seed"))), int, notes)
    number(fields, "steps", walk.value(inputs.get("steps")), int, notes)
    number(fields, "cfg_scale", walk.value(inputs.get("cfg")), float, notes)
    sampler_name = str(walk.value(inputs.get("sampler_name")) or "")
    scheduler = str(walk.value(inputs.get("scheduler")) or "normal")
    name, note = comfy_sampler(sampler_name, scheduler)
    sampler(fields, name, f"{sampler_name} / {scheduler}", notes)
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
            size(fields, f"{width}x{height}", notes)
        batch = walk.value(latent_inputs.get("batch_size"))
        if isinstance(batch, int) and 1 <= batch <= 64:
            fields["batch_size"] = batch
    else:
        notes.append("image size: the sampler does not start from an empty latent (img2img?)")
    fields["model"], fields["loras"] = walk.model_chain(inputs.get("model"))
    if walk.cut_short:
        notes.append(f"the graph is too large to follow whole (over {MAX_VISITS} node visits); check the prompt")
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
        self.left = MAX_VISITS
        self.cut_short = False

    def _node(self, link: Any, depth: int) -> dict[str, Any] | None:
        if depth == 0:
            self.left = MAX_VISITS  # each walk from the sampler has its own allowance
        if isinstance(link, list) and link and str(link[0]) in self.graph:
            if self.left > 0:
                self.left -= 1
                return self.graph[str(link[0])]
            self.cut_short = True
        return None

    def value(self, value: Any, depth: int = 0) -> Any:
        """A literal input, or the literal a linked primitive node holds."""
        node = self._node(value, depth)
        if node is None:
            return value
        if depth > MAX_DEPTH:
            return None
        for key in ("value", "seed", "noise_seed", "int", "float", "string", "text", "number"):
            if key in node.get("inputs", {}):
                return self.value(node["inputs"][key], depth + 1)
        return None

    def text(self, link: Any, depth: int = 0) -> str:
        """The prompt text behind a conditioning input (CLIPTextEncode and friends)."""
        node = self._node(link, depth)
        if node is None or depth > MAX_DEPTH:
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
        for step in range(MAX_CHAIN):
            node = self._node(link, step)
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
                entry = lora(stem(str(self.value(inputs["lora_name"]))), weight, self.notes)
                if entry is not None:
                    loras.append(entry)
            elif kind not in ("ModelSamplingDiscrete", "FreeU", "FreeU_V2"):
                if "model" not in inputs:
                    break
                self.notes.append(f"model node {kind!r} was not applied")
            link = inputs.get("model")
        return "", loras[::-1]

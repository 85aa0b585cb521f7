"""ComfyUI's `prompt` chunk: the node graph it ran, walked back from the first sampler.

The graph is untrusted: its JSON is depth-checked before it is parsed, and
every walk visits each node at most once (`_ComfyWalk`), so a graph that
fans out or loops is read in time linear in its size.
"""

from __future__ import annotations

from typing import Any

from studio.bounded import loads_json
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

MAX_CHAIN = 50  # model nodes between a sampler and its checkpoint


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
    graph = loads_json(text, "ComfyUI prompt")
    if not isinstance(graph, dict):
        raise ValueError("ComfyUI prompt is not a node graph")
    # Every node a dict with a dict of inputs, so no walk meets a surprise type.
    graph = {
        str(k): {**v, "inputs": v["inputs"] if isinstance(v.get("inputs"), dict) else {}}
        for k, v in graph.items() if isinstance(v, dict)
    }
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
    return fields, notes


def _latent_source(graph: dict[str, Any], sampler: dict[str, Any]) -> dict[str, Any] | None:
    link = sampler.get("inputs", {}).get("latent_image")
    if isinstance(link, list) and link:
        node = graph.get(str(link[0]), {})
        if "EmptyLatent" in str(node.get("class_type", "")) or "EmptySD3Latent" in str(node.get("class_type", "")):
            return node
    return None


class _ComfyWalk:
    """Follow links ([node_id, output]) through a ComfyUI prompt graph.

    The graph is untrusted, so no walk recurses and none visits a node twice: a
    cycle ends where it closes, and a node that many inputs share is read once.
    Each walk takes time linear in the graph however it branches, and a prompt
    is at most the texts of the graph's nodes, each once.
    """

    TEXT_KEYS = ("text", "text_g", "string", "value", "prompt", "text_l")
    VALUE_KEYS = ("value", "seed", "noise_seed", "int", "float", "string", "text", "number")
    COMBINE_PREFIXES = ("conditioning", "positive", "negative")

    def __init__(self, graph: dict[str, Any], notes: list[str]) -> None:
        self.graph, self.notes = graph, notes
        self._values: dict[str, Any] = {}  # node id -> the literal it holds (None: none)

    def _target(self, link: Any) -> str | None:
        """The id of the node `link` points at, or None when it is not a link into the graph."""
        if isinstance(link, list) and link and isinstance(link[0], (str, int)) and str(link[0]) in self.graph:
            return str(link[0])
        return None

    def inputs(self, node_id: str) -> dict[str, Any]:
        return self.graph[node_id]["inputs"]

    def value(self, value: Any) -> Any:
        """A literal input, or the literal a chain of linked primitive nodes holds."""
        chain: list[str] = []
        seen: set[str] = set()
        while (node_id := self._target(value)) is not None:
            if node_id in self._values:
                value = self._values[node_id]
                break
            if node_id in seen:  # a cycle of primitives holds no literal
                value = None
                break
            seen.add(node_id)
            chain.append(node_id)
            inputs = self.inputs(node_id)
            key = next((k for k in self.VALUE_KEYS if k in inputs), None)
            value = inputs[key] if key is not None else None
        for node_id in chain:
            self._values[node_id] = value
        return value

    def text(self, link: Any) -> str:
        """The prompt text behind a conditioning input (CLIPTextEncode and friends), depth first."""
        if self._target(link) is None:
            return link if isinstance(link, str) else ""
        parts: list[str] = []
        seen: set[str] = set()
        combined: dict[str, None] = {}  # class types that joined prompts, in order, once each
        stack = [link]
        while stack:
            node_id = self._target(stack.pop())
            if node_id is None or node_id in seen:
                continue
            seen.add(node_id)
            inputs = self.inputs(node_id)
            key = next((k for k in self.TEXT_KEYS if k in inputs), None)
            if key is not None:
                value = inputs[key]
                if isinstance(value, list):
                    stack.append(value)
                elif str(value):
                    parts.append(str(value))
                continue
            children = [
                value for name, value in inputs.items()
                if isinstance(value, list) and name.startswith(self.COMBINE_PREFIXES)
            ]
            if len(children) > 1:
                combined[str(self.graph[node_id].get("class_type"))] = None
            stack.extend(reversed(children))
        if len(parts) > 1:
            self.notes.extend(f"{kind}: combined prompts were joined with ', '" for kind in combined)
        return ", ".join(parts)

    def model_chain(self, link: Any) -> tuple[str, list[dict[str, Any]]]:
        """Walk model inputs back to the checkpoint, collecting LoRAs on the way."""
        loras: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_CHAIN):
            node_id = self._target(link)
            if node_id is None or node_id in seen:
                break
            seen.add(node_id)
            inputs = self.inputs(node_id)
            kind = str(self.graph[node_id].get("class_type", ""))
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

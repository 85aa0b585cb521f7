"""One sweep axis: `FIELD=v1,v2,...` as A1111's X/Y/Z plot takes it, parsed and checked.

FIELD is any scalar recipe field by its name (`cfg_scale`, `hires_steps`) or
its command-line spelling (`cfg`, `clip-skip`, `negative`), or one of three
that are not a plain field: `size` (WxH), `lora:NAME` (that LoRA's weight; the
LoRA is added when the prompt does not have it) and `sr` (prompt search and
replace: the first value is the text to find, each value replaces it, the
first included). Numbers may be ranges as A1111 writes them: `10-40(+10)`
counts in steps, `4-8[3]` takes that many evenly spaced values, `1-5` counts by
one. Values are comma-separated; quote one that holds a comma ("a, b").
"""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from studio.formats.lora_tags import lora_tag, tagged_names
from studio.recipe import LoraRef, Recipe, RecipeError, parse_size
from studio.samplers import SAMPLERS, sampler_from_a1111

MAX_VALUES = 1000

# Command-line spellings and the names A1111 users type -> recipe field names.
ALIASES = {
    "cfg": "cfg_scale", "cfg_scale": "cfg_scale", "negative": "negative_prompt", "neg": "negative_prompt",
    "checkpoint": "model", "denoising": "strength", "padding": "inpaint_padding", "variation": "variation_seed",
}
# A1111's axis titles, where they differ from the field name made readable.
TITLES = {
    "cfg_scale": "CFG Scale", "model": "Checkpoint name", "strength": "Denoising", "negative_prompt": "Negative prompt",
    "clip_skip": "Clip skip", "sampler": "Sampler", "steps": "Steps", "seed": "Seed",
}
# Fields a sweep cannot set one value at a time: lists, hashes checked against files, bookkeeping.
_NOT_SWEEPABLE = {"prompt", "loras", "embeddings", "embedding_hashes", "text_encoder_hashes", "studio_version", "init_image", "mask"}
_SR = ("sr", "prompt_sr", "prompt_s/r", "s/r")
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(rf"^{_NUMBER}\s*-\s*{_NUMBER}\s*(?:\(\s*([+-]?\s*{_NUMBER[1:-1]})\s*\)|\[\s*(\d+)\s*\])?$")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Recipe)}


class AxisError(RecipeError):
    """An axis that cannot be swept; the message is one line naming it."""


@dataclass(frozen=True)
class Axis:
    """One axis: what it sets (`target`), its title, its values and their labels as the grid shows them."""

    target: str  # a recipe field name, "size", "lora:NAME" or "sr"
    title: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.values)

    def apply(self, recipe: Recipe, index: int) -> Recipe:
        """`recipe` with this axis at value `index`."""
        value = self.values[index]
        if self.target == "size":
            return recipe.replace(width=value[0], height=value[1])
        if self.target == "sr":
            find = self.values[0]
            return recipe.replace(
                prompt=recipe.prompt.replace(find, value), negative_prompt=recipe.negative_prompt.replace(find, value)
            )
        if self.target.startswith("lora:"):
            return _with_lora_weight(recipe, self.target[5:], value)
        return recipe.replace(**{self.target: value})

    def check(self, base: Recipe) -> None:
        """Refuse, before anything runs, what every cell would find wrong: S/R text missing from the prompt."""
        if self.target == "sr" and self.values[0] not in base.prompt and self.values[0] not in base.negative_prompt:
            raise AxisError(f"prompt S/R: {self.values[0]!r} is not in the prompt")
        for index in range(len(self.values)):
            try:
                self.apply(base, index)
            except RecipeError as exc:
                raise AxisError(f"{self.title} = {self.labels[index]}: {exc}") from None


def parse_axis(text: str) -> Axis:
    """`FIELD=v1,v2,...` -> an Axis; AxisError (one line) for anything it cannot sweep."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise AxisError(f"an axis looks like FIELD=v1,v2,... (got {text!r})")
    items = _split(rest)
    if not items:
        raise AxisError(f"axis {name.strip()!r} has no values")
    target = field_name(name)
    if target == "sr":
        if len(items) < 2:
            raise AxisError("prompt S/R needs the text to find and at least one replacement")
        return Axis("sr", "Prompt S/R", tuple(items), tuple(items))
    if target == "size":
        values: list[Any] = [parse_size(item) for item in items]
        return Axis("size", "Size", tuple(values), tuple(f"{w}x{h}" for w, h in values))
    kind = "float" if target.startswith("lora:") else _FIELD_TYPES[target]
    values = [value for item in items for value in _values(item, kind, target)]
    if len(values) > MAX_VALUES:
        raise AxisError(f"axis {name.strip()!r} has {len(values)} values; at most {MAX_VALUES}")
    title = f"LoRA {target[5:]}" if target.startswith("lora:") else TITLES.get(target, target.replace("_", " ").capitalize())
    return Axis(target, title, tuple(values), tuple(f"{title}: {_label(value)}" for value in values))


def field_name(name: str) -> str:
    """What an axis name sets: a recipe field, 'size', 'lora:NAME' or 'sr'; AxisError if none."""
    raw = name.strip()
    if raw.lower().startswith("lora:"):
        if not raw[5:].strip():
            raise AxisError("lora:NAME needs the LoRA's name")
        return "lora:" + raw[5:].strip()
    key = re.sub(r"[\s-]+", "_", raw.lower())
    if key in _SR:
        return "sr"
    if key == "size":
        return key
    key = ALIASES.get(key, key)
    if key not in _FIELD_TYPES:
        raise AxisError(f"unknown axis field {raw!r}: use a recipe field (steps, cfg, sampler, seed, size, model, ...), lora:NAME or sr")
    if key in _NOT_SWEEPABLE or key.endswith("_hash") or _FIELD_TYPES[key] not in ("int", "float", "str", "bool"):
        hint = " (sweep the prompt with sr=FIND,REPLACE,...)" if key == "prompt" else ""
        raise AxisError(f"{raw!r} cannot be an axis{hint}")
    return key


def _split(text: str) -> list[str]:
    try:
        row = next(csv.reader([text], skipinitialspace=True), [])
    except csv.Error as exc:
        raise AxisError(f"cannot read axis values {text!r}: {exc}") from None
    return [item.strip() for item in row if item.strip()]


def _values(item: str, kind: str, target: str) -> list[Any]:
    """One comma-separated item: a value, or a range of numbers."""
    if kind in ("int", "float"):
        found = _RANGE.match(item)
        if found:
            return _range(found, kind, item)
        try:
            number = float(item)
        except ValueError:
            raise AxisError(f"{target}: {item!r} is not a number") from None
        if kind == "int" and not number.is_integer():
            raise AxisError(f"{target}: {item!r} is not a whole number")
        return [int(number) if kind == "int" else number]
    if kind == "bool":
        if item.lower() not in _TRUE + _FALSE:
            raise AxisError(f"{target}: {item!r} is not true or false")
        return [item.lower() in _TRUE]
    if target == "sampler":
        return [_sampler(item)]
    return [item]


def _range(found: re.Match[str], kind: str, item: str) -> list[Any]:
    start, end = float(found[1]), float(found[2])
    if found[4] is not None:  # [count]: evenly spaced, both ends included
        count = int(found[4])
        if not 1 <= count <= MAX_VALUES:
            raise AxisError(f"range {item!r}: the count must be between 1 and {MAX_VALUES}")
        values = [start + (end - start) * i / (count - 1) for i in range(count)] if count > 1 else [start]
    else:  # (+step), default one up (or down)
        step = float(found[3].replace(" ", "")) if found[3] else (1.0 if end >= start else -1.0)
        if step == 0 or (end - start) * step < 0:
            raise AxisError(f"range {item!r}: the step must lead from {found[1]} to {found[2]}")
        count = int((end - start) / step + 1e-9) + 1
        if count > MAX_VALUES:
            raise AxisError(f"range {item!r} has {count} values; at most {MAX_VALUES}")
        values = [start + step * i for i in range(count)]
    if kind == "int":
        return [int(v) for v in values]  # A1111 truncates a spaced integer range too
    return [round(v, 6) for v in values]


def _sampler(name: str) -> str:
    for known in SAMPLERS:
        if known.lower() == name.lower():
            return known
    found = sampler_from_a1111(name)
    if found is None:
        raise AxisError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    return found


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _with_lora_weight(recipe: Recipe, name: str, weight: float) -> Recipe:
    """The LoRA at `weight`: in its prompt tag when the prompt has one (a tag's weight wins), else in the list."""
    if name in tagged_names(recipe.prompt) or name in tagged_names(recipe.negative_prompt):
        tag = re.compile(rf"<(?:lora|lyco):\s*{re.escape(name)}\s*(?::[^<>]*)?>", re.IGNORECASE)
        retag = lambda text: tag.sub(lambda _: lora_tag(name, weight), text)
        return recipe.replace(prompt=retag(recipe.prompt), negative_prompt=retag(recipe.negative_prompt))
    if any(lora.name == name for lora in recipe.loras):
        loras = tuple(dataclasses.replace(lora, weight=weight) if lora.name == name else lora for lora in recipe.loras)
    else:
        loras = (*recipe.loras, LoraRef(name, weight))
    return recipe.replace(loras=loras)

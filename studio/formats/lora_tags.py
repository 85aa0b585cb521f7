"""A1111's `<lora:name:weight>` prompt syntax (also `<lyco:...>`): the one grammar studio reads and writes.

Two readers share it. `extract_loras` is for prompts the user typed: a weight
that is not a number is a RecipeError. `extract_loras_lenient` is for prompts
found in other tools' images: a bad tag becomes a note, never an exception.
"""

from __future__ import annotations

import math
import re

from studio.recipe import LoraRef, RecipeError

# <lora:name>, <lora:name:0.8>; A1111 allows more fields after the weight (`:te=..`), ignored here.
_TAG = re.compile(r"<(?:lora|lyco):([^:<>]+)(?::([^:<>]*))?(?::[^<>]*)?>", re.IGNORECASE)


def format_weight(weight: float) -> str:
    """A weight as short as it reads back exactly: 1, 0.8, -1.25."""
    return str(int(weight)) if float(weight).is_integer() else repr(float(weight))


def lora_tag(name: str, weight: float) -> str:
    return f"<lora:{name}:{format_weight(weight)}>"


def tagged_names(prompt: str) -> set[str]:
    """The LoRA names the prompt's tags hold, whatever their weights."""
    return {match.group(1).strip() for match in _TAG.finditer(prompt)}


def extract_loras(prompt: str) -> tuple[str, list[LoraRef]]:
    """(prompt without the tags, LoRAs in order of appearance). A repeated name keeps its last weight.

    Raises RecipeError when a weight is not a number.
    """
    return _extract(prompt, None)


def extract_loras_lenient(prompt: str, notes: list[str]) -> tuple[str, list[LoraRef]]:
    """`extract_loras` for prompts read from files: never raises, says what it changed in `notes`.

    A tag whose weight is not a finite number is dropped from the prompt and the
    LoRAs (A1111 cannot apply it either, so the image was made without it).
    """
    return _extract(prompt, notes)


def _extract(prompt: str, notes: list[str] | None) -> tuple[str, list[LoraRef]]:
    """Strict when `notes` is None; lenient, noting instead of raising, otherwise."""
    found: dict[str, float] = {}
    for match in _TAG.finditer(prompt):
        name, weight_text = match.group(1).strip(), (match.group(2) or "").strip()
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            if notes is None:
                raise RecipeError(f"LoRA weight must be a number in {match.group(0)!r}") from None
            weight = math.nan
        if notes is not None:
            if not math.isfinite(weight):
                notes.append(f"LoRA tag {match.group(0)!r} has no usable weight; dropped")
                continue
            if name in found:
                notes.append(f"LoRA {name} is tagged more than once; kept its last weight")
        found.pop(name, None)
        found[name] = weight
    return _remove_tags(prompt), [LoraRef(name, weight) for name, weight in found.items()]


# What a removed tag takes with it: its separator when it opens a line, else one of two commas around it.
_GAP_AFTER = re.compile(r"[ \t]*,?[ \t]*")
_COMMA_AFTER = re.compile(r"[ \t]*,")


def _remove_tags(prompt: str) -> str:
    """The prompt without its tags; only the gap each tag sat in changes, so the rest reads back exactly.

    "a, <lora:x:1>, b" -> "a, b"; "<lora:x:1> a" -> "a"; "a <lora:x:1>" -> "a".
    """
    pieces: list[str] = []  # a list, not `+=`: a hostile prompt may hold a hundred thousand tags
    pos = 0
    for match in _TAG.finditer(prompt):
        before = prompt[pos : match.start()].rstrip(" \t")
        if before:
            pieces.append(before)
        pos = match.end()
        if not pieces or pieces[-1].endswith("\n"):
            pos = _GAP_AFTER.match(prompt, pos).end()  # type: ignore[union-attr]  # matches "" at worst
        elif pieces[-1].endswith(",") and (comma := _COMMA_AFTER.match(prompt, pos)):
            pos = comma.end()
    return "".join(pieces) + prompt[pos:]


def merge_loras(prompt_loras: list[LoraRef], recipe_loras: tuple[LoraRef, ...]) -> tuple[LoraRef, ...]:
    """The recipe's list, then the prompt's; the prompt's weight wins for a name in both."""
    merged = {lora.name: lora for lora in recipe_loras}
    for lora in prompt_loras:
        merged.pop(lora.name, None)
        merged[lora.name] = lora
    return tuple(merged.values())

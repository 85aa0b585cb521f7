"""A1111's `<lora:name:weight>` prompt syntax (also `<lyco:...>`), taken out of the prompt."""

from __future__ import annotations

import re

from studio.recipe import LoraRef, RecipeError

# <lora:name>, <lora:name:0.8>; A1111 allows more fields after the weight (`:te=..`), ignored here.
_TAG = re.compile(r"<(?:lora|lyco):([^:<>]+)(?::([^:<>]*))?(?::[^<>]*)?>", re.IGNORECASE)


def extract_loras(prompt: str) -> tuple[str, list[LoraRef]]:
    """(prompt without the tags, LoRAs in order of appearance). A repeated name keeps its last weight."""
    found: dict[str, float] = {}
    for match in _TAG.finditer(prompt):
        name, weight_text = match.group(1).strip(), (match.group(2) or "").strip()
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise RecipeError(f"LoRA weight must be a number in {match.group(0)!r}") from None
        found.pop(name, None)
        found[name] = weight
    clean = _TAG.sub("", prompt)
    clean = re.sub(r"\s*,\s*(,\s*)+", ", ", clean)  # the commas the tags sat between
    clean = re.sub(r"[ \t]{2,}", " ", clean).strip(" ,\t\n")
    return clean, [LoraRef(name, weight) for name, weight in found.items()]


def merge_loras(prompt_loras: list[LoraRef], recipe_loras: tuple[LoraRef, ...]) -> tuple[LoraRef, ...]:
    """The recipe's list, then the prompt's; the prompt's weight wins for a name in both."""
    merged = {lora.name: lora for lora in recipe_loras}
    for lora in prompt_loras:
        merged.pop(lora.name, None)
        merged[lora.name] = lora
    return tuple(merged.values())

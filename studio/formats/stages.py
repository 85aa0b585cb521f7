"""The second model of a two-model recipe in A1111's `parameters` text, written and read.

A1111 writes its SDXL refiner as `Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: 0.8`;
Stable Cascade's prior (which A1111 does not run) is written the same way:
`Prior: stable-cascade-prior [1a2b3c4d5e], Prior steps: 20, Prior CFG scale: 4`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.formats.fields import number
from studio.formats.lora_tags import format_weight

if TYPE_CHECKING:
    from studio.recipe import Recipe

_TITLE = re.compile(r"^(.*?)\s*\[([0-9A-Fa-f]{8,64})\]$")


def _title(name: str, digest: str) -> str:
    shown = Path(name).name if "/" in name else name  # a path would leak the user's folders
    return f"{shown} [{digest}]" if digest else shown


def stage_fields(recipe: Recipe) -> list[tuple[str, str]]:
    fields = []
    if recipe.prior:
        fields += [("Prior", _title(recipe.prior, recipe.prior_hash)), ("Prior steps", str(recipe.prior_steps)),
                   ("Prior CFG scale", format_weight(recipe.prior_cfg_scale))]
    if recipe.refiner:
        fields += [("Refiner", _title(recipe.refiner, recipe.refiner_hash)),
                   ("Refiner switch at", format_weight(recipe.refiner_switch))]
    return fields


def read_stages(params: dict[str, str], fields: dict[str, Any], notes: list[str]) -> set[str]:
    """The prior's and the refiner's fields; the keys it used."""
    for key, name in (("Prior", "prior"), ("Refiner", "refiner")):
        value = params.get(key, "").strip()
        if value:
            match = _TITLE.match(value)
            fields[name], fields[f"{name}_hash"] = (match.group(1), match.group(2)) if match else (value, "")
    if fields.get("prior"):
        number(fields, "prior_steps", params.get("Prior steps"), int, notes)
        number(fields, "prior_cfg_scale", params.get("Prior CFG scale"), float, notes)
    if fields.get("refiner"):
        number(fields, "refiner_switch", params.get("Refiner switch at"), float, notes)
        if not 0 < fields.get("refiner_switch", 0.8) < 1:  # A1111 at 1: the refiner never ran
            notes.append(f"Refiner switch at {fields.pop('refiner_switch')}: the refiner never ran; left out")
            fields.pop("refiner"), fields.pop("refiner_hash")
    return {"Prior", "Prior steps", "Prior CFG scale", "Refiner", "Refiner switch at"}

"""studio's own chunk: the exact Recipe as TOML, the first thing `studio import` trusts."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from studio.bounded import loads_toml

if TYPE_CHECKING:
    from studio.recipe import Recipe

RECIPE_KEY = "studio-recipe"
MAX_RECIPE_CHARS = 1 << 20  # a recipe is a few KB; a bigger chunk is not ours


def recipe_toml(recipe: Recipe) -> str:
    import tomli_w

    return tomli_w.dumps(recipe.to_dict())


def read_studio_recipe(text: str) -> dict[str, Any]:
    """The recipe fields in a `studio-recipe` chunk; ValueError when it is not a recipe's TOML."""
    try:
        return loads_toml(text, "studio recipe", max_chars=MAX_RECIPE_CHARS)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"studio recipe is not valid TOML ({exc})") from None

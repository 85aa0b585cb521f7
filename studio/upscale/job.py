"""An upscale job: a session entry's image (or any image) made bigger by an upscaler, no diffusion.

Its recipe names the source (`init_image` and its hash, checked before the
run) and the upscaler (`upscaler` and `upscaler_hash`); the rest of the
recipe is the source's own where it has one, so the entry still says what the
picture is. Runs on the engine's worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.recipe import MAX_SIDE, Recipe, RecipeError
from studio.upscale.upscalers import UpscalerRef, resolve_upscaler, upscale

if TYPE_CHECKING:
    from studio.models.library import ModelLibrary
    from studio.upscale.tiles import TileListener


def with_upscaler_hash(recipe: Recipe, library: ModelLibrary | None) -> Recipe:
    """`recipe` with the hash of the upscaler it uses filled in; a changed upscaler file fails by name."""
    name = recipe.upscaler or (recipe.hires_upscaler if recipe.hires_scale else "")
    if not name:
        return recipe
    ref = resolve_upscaler(name, library)
    if not ref.hash:
        return recipe
    if recipe.upscaler_hash and recipe.upscaler_hash != ref.hash:
        raise RecipeError(f"upscaler {name} has changed since it was recorded (hash {recipe.upscaler_hash})")
    return recipe.replace(upscaler_hash=ref.hash)


def upscale_job(recipe: Recipe, library: ModelLibrary | None, device: str = "cpu",
                on_tile: TileListener | None = None) -> Any:
    """The upscaled source image; `on_tile(done, total)` after each tile (what it raises stops the job)."""
    from studio.iterate import checked_input

    source = checked_input(recipe.init_image, recipe.init_image_hash, "source image")
    ref = resolve_upscaler(recipe.upscaler, library)
    size = (round(source.width * recipe.upscale_scale), round(source.height * recipe.upscale_scale))
    from studio.upscale.upscalers import load_network

    net = load_network(ref, recipe.allow_pickle).to(device) if ref.kind == "network" else None
    return upscale(source, ref, size, tile=recipe.upscale_tile, net=net, device=device, on_tile=on_tile)


MAX_OUTPUT_SIDE = 16384


def upscale_recipe(path: Path, ref: UpscalerRef, scale: float, tile: int = 512, device: str = "auto",
                   allow_pickle: bool = False) -> Recipe:
    """The recipe of an upscale of the image at `path`: the image's own recipe where it has one."""
    from studio.formats.png import read_recipe
    from studio.iterate import file_hash, open_image

    image = open_image(path, "source image")
    if ref.kind == "latent":
        raise RecipeError(f"{ref.name} works on latents: use it with generate --hires; here use studio-2x or Lanczos")
    if max(image.width, image.height) * scale > MAX_OUTPUT_SIDE:
        raise RecipeError(f"{image.width}x{image.height} times {scale:g} is over {MAX_OUTPUT_SIDE} pixels a side")
    try:
        base = read_recipe(path) or Recipe(prompt="")
    except (RecipeError, ValueError, OSError):
        base = Recipe(prompt="")
    return base.replace(
        batch_size=1, hires_scale=0.0, mask="", mask_hash="", variation_strength=0.0, device=device,
        width=max(8, min(image.width, MAX_SIDE) // 8 * 8), height=max(8, min(image.height, MAX_SIDE) // 8 * 8),
        upscaler=ref.name, upscaler_hash=ref.hash, upscale_scale=scale, upscale_tile=tile,
        allow_pickle=allow_pickle, init_image=str(Path(path).resolve()), init_image_hash=file_hash(path),
    )

"""Init images and masks: checking, hashing, fitting to the recipe's size, the overlay.

Plain Python over PIL (imported when used), shared by the CLI, the TUI and the
engine. An init image or mask is named in the recipe by its path and content
hash; every run checks the hash first, so a rerun over a changed or missing
file fails with a line naming it instead of quietly making something else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from studio.recipe import Recipe, RecipeError

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_INPUT_PIXELS = 8192 * 8192  # a bigger "image" is a decompression bomb, not a sketch


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_image(path: Path, what: str) -> Image:
    """The decoded image at `path`; RecipeError with one line when it is missing or no image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{what} {path} is missing")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_INPUT_PIXELS:
                raise RecipeError(f"{what} {path} is too large ({image.width}x{image.height})")
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise RecipeError(f"{what} {path} is not an image ({type(exc).__name__})") from None


def with_init(recipe: Recipe, init: Path, mask: Path | None = None) -> Recipe:
    """`recipe` over the init image (and mask) at these paths, hashed; one-line errors.

    The mask must be the init image's size: it is painted over that picture.
    """
    init = Path(init).resolve()
    image = open_image(init, "init image")
    changes: dict[str, object] = {"init_image": str(init), "init_image_hash": file_hash(init)}
    if mask is not None:
        mask = Path(mask).resolve()
        painted = open_image(mask, "mask")
        if painted.size != image.size:
            raise RecipeError(
                f"mask {mask} is {painted.width}x{painted.height} but the init image is {image.width}x{image.height}"
            )
        changes.update(mask=str(mask), mask_hash=file_hash(mask))
    return recipe.replace(**changes)


def checked_input(path: str, recorded_hash: str, what: str) -> Image:
    """The file the recipe names, after checking it is the one recorded."""
    image = open_image(Path(path), what)
    if recorded_hash and file_hash(Path(path)) != recorded_hash:
        raise RecipeError(f"{what} {path} has changed since it was recorded (hash {recorded_hash[:12]}…)")
    return image


def recorded(recipe: Recipe) -> Recipe:
    """`recipe` with the hashes of its init image and mask filled in where missing."""
    changes = {}
    for name, what in (("init_image", "init image"), ("mask", "mask")):
        path = getattr(recipe, name)
        if path and not getattr(recipe, f"{name}_hash"):
            if not Path(path).is_file():
                raise RecipeError(f"{what} {path} is missing")
            changes[f"{name}_hash"] = file_hash(Path(path))
    return recipe.replace(**changes) if changes else recipe


def fit(image: Image, width: int, height: int, mode: str, fill: tuple | int = 0) -> Image:
    """`image` at width x height: `crop` (scale to cover, centre crop), `resize` (stretch) or `pad`.

    `pad` scales to fit inside and fills the borders with `fill` (the edge colour
    for pictures, black, i.e. keep, for masks).
    """
    from PIL import Image as PILImage

    if image.size == (width, height):
        return image.copy()
    lanczos = PILImage.Resampling.LANCZOS
    if mode == "resize":
        return image.resize((width, height), lanczos)
    cover = max(width / image.width, height / image.height)
    inside = min(width / image.width, height / image.height)
    scale = cover if mode == "crop" else inside
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), lanczos)
    left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
    if mode == "crop":
        return scaled.crop((left, top, left + width, top + height))
    canvas = PILImage.new(image.mode, (width, height), fill)
    canvas.paste(scaled, (-left, -top))
    return canvas


def load_inputs(recipe: Recipe) -> tuple[Image, Image | None]:
    """The init image (RGB) and blurred mask (L, or None) at the recipe's size, hashes checked."""
    init = checked_input(recipe.init_image, recipe.init_image_hash, "init image").convert("RGB")
    init = fit(init, recipe.width, recipe.height, recipe.resize_mode, fill=_edge_colour(init))
    if not recipe.mask:
        return init, None
    mask = checked_input(recipe.mask, recipe.mask_hash, "mask").convert("L")
    mask = fit(mask, recipe.width, recipe.height, recipe.resize_mode, fill=0)
    return init, blurred(mask, recipe.mask_blur)


def blurred(mask: Image, radius: int) -> Image:
    """The mask softened at its seam (a Gaussian of `radius` px), as A1111's mask blur."""
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius else mask


def overlay(original: Image, generated: Image, mask: Image) -> Image:
    """`generated` where the mask is white, `original` where it is black, blended on the seam.

    Where the (blurred) mask is 0 the result is the original, pixel for pixel.
    """
    from PIL import Image as PILImage

    return PILImage.composite(generated.convert("RGB"), original, mask)


def tinted(image: Image, recipe: Recipe, colour: tuple = (255, 0, 0)) -> Image:
    """`image` with the recipe's mask shown over it, half `colour` where the mask is white.

    The mask is fitted to the image as the engine fits it; a missing or unreadable mask
    gives the image as it is (the compare screen shows what it can).
    """
    from PIL import Image as PILImage

    picture = image.convert("RGB")
    if not recipe.mask:
        return picture
    try:
        mask = open_image(Path(recipe.mask), "mask").convert("L")
    except RecipeError:
        return picture
    mask = fit(mask, picture.width, picture.height, recipe.resize_mode, fill=0).point(lambda v: v // 2)
    return PILImage.composite(PILImage.new("RGB", picture.size, colour), picture, mask)


def _edge_colour(image: Image) -> tuple:
    """The mean colour of the image's border, to pad with."""
    small = image.resize((8, 8))
    border = [small.getpixel((x, y)) for x in range(8) for y in range(8) if x in (0, 7) or y in (0, 7)]
    return tuple(round(sum(c[i] for c in border) / len(border)) for i in range(3))

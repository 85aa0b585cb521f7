"""Which upscalers there are, and making an image bigger with one of them.

Three kinds, by name:

- latent: A1111's "Latent" modes, interpolation on the latents (hires fix only);
- resample: "Lanczos" and "Nearest", PIL's resampling;
- network: the built-in `studio-2x` (trained by this project on the shapes
  dataset, studio/builtin/studio-2x) and the user's own upscaler files,
  found by the model library and run through spandrel (studio/upscale/spandrel_net.py).

A network upscales at its own scale, again while the image is smaller than
wanted (at most three times, as A1111 does), and is then resampled to the
exact size with Lanczos. Networks run in tiles (studio/upscale/tiles.py).
torch is imported only when a network runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from studio.builtin import BUILTIN_DIR
from studio.recipe import RecipeError

if TYPE_CHECKING:
    from PIL.Image import Image

    from studio.models.library import ModelLibrary
    from studio.upscale.tiles import TileListener

# A1111's latent upscaler names -> (torch interpolation mode, antialias)
LATENT_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
RESAMPLERS = ("Lanczos", "Nearest")
BUILTIN_UPSCALER = "studio-2x"
BUILTIN_UPSCALER_PATH = BUILTIN_DIR / "upscale_models" / "studio-2x.safetensors"
DEFAULT_TILE = 512  # input pixels a side; halved on out-of-memory
MAX_PASSES = 3


@dataclass(frozen=True)
class UpscalerRef:
    """One upscaler, found: what the recipe records and what `upscale` runs."""

    name: str
    kind: str  # "latent", "resample" or "network"
    scale: int = 1  # a network's native scale
    architecture: str = ""
    path: Path | None = None
    hash: str = ""


def builtin_upscalers() -> list[UpscalerRef]:
    refs = [UpscalerRef(name, "latent") for name in LATENT_MODES]
    refs += [UpscalerRef(name, "resample") for name in RESAMPLERS]
    if BUILTIN_UPSCALER_PATH.is_file():
        stat = BUILTIN_UPSCALER_PATH.stat()
        digest = _short_hash(str(BUILTIN_UPSCALER_PATH), stat.st_size, stat.st_mtime_ns)
        refs.append(UpscalerRef(BUILTIN_UPSCALER, "network", 2, "studio-sr", BUILTIN_UPSCALER_PATH, digest))
    return refs


@functools.lru_cache(maxsize=8)
def _short_hash(path: str, size: int, mtime_ns: int) -> str:
    from studio.models.hashing import sha256_file

    return sha256_file(Path(path))[:10]


def resolve_upscaler(name: str, library: ModelLibrary | None = None) -> UpscalerRef:
    """The upscaler called `name` (case-insensitive): built in, or one of the user's files."""
    for ref in builtin_upscalers():
        if ref.name.lower() == name.lower():
            return ref
    if library is not None:
        for ref in find_upscalers(library):
            if name.lower() in (ref.name.lower(), str(ref.path).lower()):
                return ref
    known = ", ".join([*LATENT_MODES, *RESAMPLERS, BUILTIN_UPSCALER])
    raise RecipeError(f"no upscaler named {name!r}; built in: {known}; or a file in models/ESRGAN, models/upscale_models")


def find_upscalers(library: ModelLibrary) -> list[UpscalerRef]:
    """Every upscaler file in the library's folders (kind "upscaler"), with architecture, scale and hash."""
    import re

    from studio.models.inspect import UPSCALER

    refs = []
    for entry in library.scan(hf_cache=False):
        if entry.kind != UPSCALER or entry.path == BUILTIN_UPSCALER_PATH:
            continue  # the built-in one is listed by `builtin_upscalers`
        match = re.search(r"(\d+)x$", entry.architecture)
        architecture = entry.architecture.rsplit(" ", 1)[0] if match else entry.architecture
        digest = library.hashes.sha256(entry.path)[:10]
        refs.append(UpscalerRef(entry.name, "network", int(match[1]) if match else 0, architecture, entry.path, digest))
    return refs


Net = Callable[[Any], Any]  # (N, 3, h, w) in [0, 1] -> (N, 3, s*h, s*w)


def load_network(ref: UpscalerRef, allow_pickle: bool = False) -> Net:
    """The network of `ref` as a callable on image tensors (float32, eval mode)."""
    if ref.path is None:
        raise RecipeError(f"{ref.name} is not a network upscaler")
    from safetensors import safe_open

    if ref.path.suffix.lower() != ".safetensors":
        from studio.upscale.spandrel_net import load_spandrel

        return load_spandrel(ref.path, allow_pickle)
    with safe_open(str(ref.path), "pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("architecture") == "studio-sr":
        from studio.upscale.net import load_builtin_net

        return load_builtin_net(ref.path, metadata)
    from studio.upscale.spandrel_net import load_spandrel

    return load_spandrel(ref.path)


def upscale(image: Image, ref: UpscalerRef, size: tuple[int, int], tile: int = DEFAULT_TILE,
            net: Net | None = None, device: str = "cpu", on_tile: TileListener | None = None) -> Image:
    """`image` made `size` (width, height) by a resample or network upscaler.

    `on_tile(done, total)` counts the tiles of every pass together (a 4x from a 2x net is two passes)."""
    from PIL import Image as PILImage

    if ref.kind == "latent":
        raise RecipeError(f"{ref.name} works on latents: use it as a hires-fix upscaler")
    if ref.kind == "resample":
        method = PILImage.LANCZOS if ref.name == "Lanczos" else PILImage.NEAREST
        return image.convert("RGB").resize(size, method)
    from studio.upscale.tiles import tile_count, upscale_tiled

    net = net or load_network(ref)
    image = image.convert("RGB")
    sides, passes = [image.size], 0
    while passes < MAX_PASSES and (sides[-1][0] < size[0] or sides[-1][1] < size[1]):
        sides.append((sides[-1][0] * ref.scale, sides[-1][1] * ref.scale))
        passes += 1
    counts = [tile_count(w, h, tile) for w, h in sides[:passes]]
    for index in range(passes):
        before = sum(counts[:index])
        rest = sum(counts) - counts[index]  # the pass's own count can grow: an out-of-memory halves its tile
        heard = None if on_tile is None else (lambda done, total, b=before, r=rest: on_tile(b + done, r + total))
        image = upscale_tiled(net, image, ref.scale, tile, device, on_tile=heard)
    return image if image.size == size else image.resize(size, PILImage.LANCZOS)

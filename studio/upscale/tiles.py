"""Running an upscaling network over an image in overlapping tiles.

Each tile is cut with `overlap` extra pixels on every side that has a
neighbour, upscaled, and only its centre kept, so every output pixel comes
from a tile that saw enough context around it: no seams. On out-of-memory
the tile side is halved and the image started again (down to 32 pixels).
`on_tile(done, total)` hears of each finished tile; whatever it raises stops
the upscale there (the engine's cancel between tiles).
"""

from __future__ import annotations

from typing import Any, Callable

TileListener = Callable[[int, int], None]  # (tiles done, tiles in all)

import numpy as np
from PIL import Image

OVERLAP = 16
MIN_TILE = 32


def upscale_tiled(net: Callable[[Any], Any], image: Image.Image, scale: int, tile: int = 512,
                  device: str = "cpu", overlap: int = OVERLAP, on_tile: TileListener | None = None) -> Image.Image:
    """`image` upscaled `scale` times by `net`, in tiles of at most `tile` input pixels a side."""
    from studio.models.loading import is_oom

    while True:
        try:
            return _tiled(net, image, scale, tile, device, overlap, on_tile)
        except Exception as exc:
            if not is_oom(exc) or tile <= MIN_TILE:
                raise
            _free_cuda()
            tile //= 2


def tile_count(width: int, height: int, tile: int) -> int:
    tile = max(tile, 1)
    return -(-width // tile) * -(-height // tile)


def _tiled(net: Callable[[Any], Any], image: Image.Image, scale: int, tile: int, device: str,
           overlap: int, on_tile: TileListener | None) -> Image.Image:
    import torch

    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    _, height, width = pixels.shape
    out = torch.empty(3, height * scale, width * scale)
    tile = max(tile, 1)
    total, done = tile_count(width, height, tile), 0
    with torch.inference_mode():
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                bottom, right = min(top + tile, height), min(left + tile, width)
                y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
                y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
                piece = pixels[:, y0:y1, x0:x1][None].to(device)
                result = net(piece)[0].float().cpu()
                dy, dx = (top - y0) * scale, (left - x0) * scale
                out[:, top * scale:bottom * scale, left * scale:right * scale] = \
                    result[:, dy:dy + (bottom - top) * scale, dx:dx + (right - left) * scale]
                done += 1
                if on_tile is not None:
                    on_tile(done, total)
    array = (out.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def _free_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()

"""The built-in upscaler's network: a small residual CNN that predicts a 2x image's detail.

The input is upscaled bicubically and the network adds what bicubic misses
(sharp edges, flat colour), predicted at the low resolution and put in place
by a pixel shuffle: cheap enough for a CPU, a few hundred kB of weights.

Its shape travels in the safetensors metadata (`architecture`, `scale`,
`channels`, `blocks`), so a file explains itself; `load_builtin_net` builds the
module from it. Imported on the engine's worker only (it imports torch).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "studio-sr"


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class StudioSR(nn.Module):
    """Images in [0, 1], (N, 3, H, W) -> (N, 3, scale*H, scale*W)."""

    def __init__(self, scale: int = 2, channels: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.scale, self.channels, self.blocks = scale, channels, blocks
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.tail = nn.Conv2d(channels, 3 * scale * scale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        detail = F.pixel_shuffle(self.tail(self.body(F.relu(self.head(x)))), self.scale)
        return base + detail

    def metadata(self) -> dict[str, str]:
        return {"architecture": ARCHITECTURE, "scale": str(self.scale),
                "channels": str(self.channels), "blocks": str(self.blocks)}


def load_builtin_net(path: Path, metadata: dict[str, str]) -> StudioSR:
    """The network in `path` (safetensors), float32, in eval mode."""
    from safetensors.torch import load_file

    net = StudioSR(int(metadata["scale"]), int(metadata["channels"]), int(metadata["blocks"]))
    state = {name: tensor.float() for name, tensor in load_file(str(path)).items()}
    net.load_state_dict(state)
    return net.eval()

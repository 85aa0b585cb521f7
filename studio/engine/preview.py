"""Cheap live previews: a linear latent-to-RGB projection, no VAE decode.

A model may ship its own projection (`preview.json` beside model_index.json:
`{"weights": [[r, g, b], ...one row per latent channel], "bias": [r, g, b]}`,
mapping latents as the UNet sees them to RGB in [0, 1]). Otherwise studio fits
one on first use by decoding a few random latents through the model's VAE once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LatentProjection:
    def __init__(self, weights: Any, bias: Any) -> None:
        self.weights = weights  # torch tensor (channels, 3)
        self.bias = bias  # torch tensor (3,)

    @classmethod
    def from_file(cls, path: Path) -> LatentProjection:
        import torch

        from studio.bounded import read_json_file

        data = read_json_file(path)  # a downloaded model's file: bounded like any other
        return cls(torch.tensor(data["weights"]), torch.tensor(data["bias"]))

    @classmethod
    def fit(cls, vae: Any, channels: int, scaling_factor: float, shift_factor: float = 0.0) -> LatentProjection:
        """Least-squares fit of RGB = latents @ W + b on a few VAE decodes."""
        import torch

        generator = torch.Generator("cpu").manual_seed(0)
        latents = torch.randn(2, channels, 16, 16, generator=generator)
        param = next(vae.parameters())
        with torch.no_grad():
            decoded = vae.decode(
                (latents / scaling_factor + shift_factor).to(param.device, param.dtype)
            ).sample.float().cpu()
        rgb = torch.nn.functional.adaptive_avg_pool2d(decoded, latents.shape[-2:])
        rgb = ((rgb + 1) / 2).clamp(0, 1)
        x = latents.permute(0, 2, 3, 1).reshape(-1, channels)
        x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
        y = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
        solution = torch.linalg.lstsq(x, y).solution
        return cls(solution[:-1], solution[-1])

    def to_image(self, latents: Any) -> Any:
        """The first latent of a batch (C, H, W) as a small PIL image."""
        import torch
        from PIL import Image

        with torch.no_grad():
            sample = latents[0].detach().float().cpu()
            rgb = torch.einsum("chw,ck->hwk", sample, self.weights) + self.bias
            pixels = (rgb.clamp(0, 1) * 255).to(torch.uint8).numpy()
        return Image.fromarray(pixels, "RGB")


def projection_for(pipe: Any, model_path: Path | None) -> LatentProjection | None:
    """The model's shipped projection, else one fitted from its VAE, else None."""
    if model_path is not None and (model_path / "preview.json").is_file():
        try:
            return LatentProjection.from_file(model_path / "preview.json")
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            pass  # a damaged preview.json costs the shipped projection, never the job: fit one instead
    vae = getattr(pipe, "vae", None)
    channels = getattr(getattr(vae, "config", None), "latent_channels", None)
    if vae is None or not channels:
        return None
    scaling = getattr(vae.config, "scaling_factor", 1.0) or 1.0
    try:
        shift = getattr(vae.config, "shift_factor", None) or 0.0  # SD3, Flux: latents are (z - shift) * scale
        return LatentProjection.fit(vae, channels, scaling, shift)
    except Exception:  # a preview is a nicety; never fail a job over it
        return None

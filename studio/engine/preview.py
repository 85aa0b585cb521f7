"""Cheap live previews: a linear latent-to-RGB projection or a TAESD decoder, no VAE decode.

What is drawn is the sampler's clean estimate (x0, studio/engine/x0.py) unless
the user asks for the noisy latents; `preview_image` does one preview, and
keeps what it builds (the projection, the decoder) on the loaded pipeline.

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


class TaesdPreview:
    """A TAESD-family decoder (studio/models/taesd.py): latents as the denoiser sees them to a picture."""

    MAX_SIDE = 256  # the TUI draws half-cells; a bigger preview only costs the event and the resize

    def __init__(self, decoder: Any, name: str) -> None:
        self.decoder = decoder
        self.name = name

    def to_image(self, latents: Any) -> Any:
        import torch
        from PIL import Image

        param = next(self.decoder.parameters())
        with torch.no_grad():
            sample = latents[:1].detach().to(param.device, param.dtype)
            side = self.MAX_SIDE // 8  # TAESD upsamples 8x: pool larger latents first, not the decoded pixels after
            if max(sample.shape[-2:]) > side:
                scale = side / max(sample.shape[-2:])
                shape = (max(1, round(sample.shape[-2] * scale)), max(1, round(sample.shape[-1] * scale)))
                sample = torch.nn.functional.interpolate(sample, size=shape, mode="area")
            rgb = self.decoder(sample)[0].float().cpu()
            pixels = (((rgb + 1) / 2).clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        image = Image.fromarray(pixels, "RGB")
        if max(image.size) > self.MAX_SIDE:
            image.thumbnail((self.MAX_SIDE, self.MAX_SIDE), Image.Resampling.BOX)
        return image


def preview_image(loaded: Any, choice: Any, latents: Any, scheduler: Any, size: tuple[int, int], library: Any) -> Any:
    """One preview for `choice` (a PreviewChoice) of this step, or None; never raises for the job's sake.

    `size` is the image's (width, height), for unpacking Flux's packed latents.
    """
    from studio.engine.x0 import latest_x0

    if latents is None or not choice.enabled:
        return None
    source = latents
    if choice.kind in ("x0", "taesd"):
        x0 = latest_x0(scheduler)
        if x0 is not None and tuple(x0.shape) == tuple(latents.shape):
            source = x0
    pipe = loaded.pipe
    if source.ndim == 3 and hasattr(pipe, "_unpack_latents"):
        # Flux packs 2x2 latent patches into tokens: unpack to (B, C, H, W) first.
        width, height = size
        source = pipe._unpack_latents(source, height, width, pipe.vae_scale_factor)
    if source.ndim != 4:
        return None
    renderer = _taesd_for(loaded, choice, source.shape[1], library) if choice.kind == "taesd" else None
    if renderer is None:
        renderer = _projection(loaded)
    return renderer.to_image(source) if renderer is not None else None


def _projection(loaded: Any) -> LatentProjection | None:
    if not loaded.projection_tried:
        loaded.projection_tried = True
        model_path = loaded.ref.path if loaded.ref.format == "diffusers" else None
        loaded.projection = projection_for(loaded.pipe, model_path)
    return loaded.projection


def _taesd_for(loaded: Any, choice: Any, channels: int, library: Any) -> TaesdPreview | None:
    """The TAESD decoder for this pipeline (loaded once); None falls back to the projection.

    Why none could be used is kept in `loaded.extras["preview_notice"]` for the engine to say once.
    """
    key = ("taesd", choice.name)
    if key not in loaded.extras:
        loaded.extras[key] = None
        try:
            loaded.extras[key] = load_taesd(loaded.pipe, choice.name, channels, library)
        except Exception as exc:  # a preview is a nicety: say why once, draw the projection
            from studio.errors import first_line

            loaded.extras["preview_notice"] = f"TAESD preview unavailable, showing the latent projection: {first_line(exc)}"
    return loaded.extras[key]


def load_taesd(pipe: Any, name: str, channels: int, library: Any) -> TaesdPreview:
    from studio.models import taesd

    entries = library.scan(hf_cache=False) if library is not None else []
    entry = taesd.pick(entries, taesd.pipeline_family(pipe), channels, name)
    param = next(iter(_denoiser(pipe).parameters()))
    return TaesdPreview(taesd.load_decoder(entry.path, param.device, param.dtype), entry.name)


def _denoiser(pipe: Any) -> Any:
    return getattr(pipe, "transformer", None) or getattr(pipe, "unet", None) or pipe.vae


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

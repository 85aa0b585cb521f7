"""TAESD-family preview decoders: the tiny autoencoders that turn latents into a picture cheaply.

Users keep them where their UI looks: A1111 in `models/VAE-taesd`, ComfyUI in
`models/vae_approx` (`taesd_decoder.safetensors`, `taesdxl_decoder`,
`taesd3_decoder`, `taef1_decoder`). Those files hold the decoder alone, as
madebyollin's `taesd.py` lays it out: an `nn.Sequential` whose item 0 is a
clamp (no weights), so its weights are `1.weight`, `3.conv.0.weight`...
A diffusers `AutoencoderTiny` folder (config.json beside the weights) works too.
The decoder maps latents as the denoiser sees them to RGB.

Which model a decoder fits is told by its name (taesd: SD1/SD2, taesdxl: SDXL,
taesd3: SD3, taef1: Flux) and checked against its latent channels (4 or 16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from studio.bounded import read_json_file
from studio.models.safetensors_header import HeaderError, read_header

PREVIEW_DECODER = "preview decoder"  # a model kind, as discovery names kinds
FOLDERS = ("VAE-taesd", "vae_approx")  # A1111, ComfyUI

# Name stem -> the architecture family it was trained for; longest first, so "taesdxl" is not "taesd".
FAMILIES = (("taesdxl", "sdxl"), ("taesd3", "sd3"), ("taef1", "flux"), ("taesd", "sd1"))
FAMILY_CHANNELS = {"sd1": 4, "sdxl": 4, "sd3": 16, "flux": 16}


class PreviewDecoderError(ValueError):
    """A preview decoder that cannot be used; one line."""


@dataclass(frozen=True)
class DecoderInfo:
    latent_channels: int
    family: str  # sd1, sdxl, sd3, flux, or "" when the name does not say


def pipeline_family(pipe: Any) -> str:
    """sd1 (SD1.x and SD2.x share a latent space), sdxl, sd3, flux, or '' for anything else."""
    name = type(pipe).__name__
    for prefix, family in (("StableDiffusionXL", "sdxl"), ("StableDiffusion3", "sd3"), ("Flux", "flux"),
                           ("StableDiffusion", "sd1")):
        if name.startswith(prefix):
            return family
    return ""


def family_from_name(name: str) -> str:
    lowered = name.lower()
    for stem, family in FAMILIES:
        if lowered.startswith(stem):
            return family
    return ""


def _decoder_keys(keys: Iterable[str]) -> tuple[str, int]:
    """(prefix, index offset) that maps a file's keys to diffusers' `layers.N...`."""
    keys = list(keys)
    for prefix, offset in (("decoder.layers.", 0), ("decoder.", -1), ("", -1)):
        if any(re.match(re.escape(prefix) + r"\d+\.", key) for key in keys):
            return prefix, offset
    raise PreviewDecoderError("no TAESD decoder weights in it")


def _diffusers_shapes(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    prefix, offset = _decoder_keys(shapes)
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.(.+)")
    out = {}
    for key, shape in shapes.items():
        found = pattern.fullmatch(key)
        if found and not (prefix == "decoder." and key.startswith("decoder.layers.")):
            out[f"{int(found[1]) + offset}.{found[2]}"] = tuple(shape)
    return out


def describe(path: Path) -> DecoderInfo:
    """The latent channels and family of a decoder file or AutoencoderTiny folder; PreviewDecoderError if it is none."""
    path = Path(path)
    name = path.parent.name if _tiny_folder(path.parent) else path.stem
    if path.is_dir() or _tiny_folder(path.parent):
        folder = path if path.is_dir() else path.parent
        try:
            config = read_json_file(folder / "config.json", max_chars=1 << 16)
        except (OSError, ValueError) as exc:
            raise PreviewDecoderError(f"{folder.name}: cannot read config.json ({exc})") from None
        return DecoderInfo(int(config.get("latent_channels", 4)), family_from_name(folder.name))
    try:
        header = read_header(path)
    except (HeaderError, OSError) as exc:
        raise PreviewDecoderError(f"{path.name}: {exc}") from None
    shapes = _diffusers_shapes({key: tensor.shape for key, tensor in header.tensors.items()})
    first = shapes.get("0.weight")
    if first is None or len(first) != 4:
        raise PreviewDecoderError(f"{path.name}: no TAESD decoder weights in it")
    return DecoderInfo(first[1], family_from_name(name))


def _tiny_folder(folder: Path) -> bool:
    try:
        config = read_json_file(folder / "config.json", max_chars=1 << 16)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "AutoencoderTiny"


def pick(entries: Iterable[Any], family: str, channels: int, name: str = "") -> Any:
    """The decoder entry for a model of `family` with `channels` latent channels; PreviewDecoderError if none fits.

    `entries` are discovery entries of kind PREVIEW_DECODER (their `architecture`
    reads "TAESD <family> <channels>ch"). A name picks that decoder, if it fits.
    """
    entries = [entry for entry in entries if entry.kind == PREVIEW_DECODER]
    if name:
        named = [entry for entry in entries if entry.name.lower() in (name.lower(), f"{name.lower()}_decoder")]
        if not named:
            known = ", ".join(entry.name for entry in entries) or "none found"
            raise PreviewDecoderError(f"no preview decoder named {name!r} (found: {known})")
        entry = named[0]
        if _channels(entry) != channels:
            raise PreviewDecoderError(
                f"preview decoder {entry.name} decodes {_channels(entry)}-channel latents; this model's have {channels}"
            )
        return entry
    fitting = [entry for entry in entries if _channels(entry) == channels]
    exact = [entry for entry in fitting if _family(entry) == family]
    unnamed = [entry for entry in fitting if not _family(entry)]
    chosen = (exact or unnamed)[:1]
    if not chosen:
        wanted = {"sd1": "taesd", "sdxl": "taesdxl", "sd3": "taesd3", "flux": "taef1"}.get(family, "a TAESD decoder")
        raise PreviewDecoderError(f"no preview decoder for this model: put {wanted}_decoder.safetensors in models/vae_approx")
    return chosen[0]


def architecture_label(info: DecoderInfo) -> str:
    return f"TAESD {info.family or '?'} {info.latent_channels}ch"


def _channels(entry: Any) -> int:
    found = re.search(r"(\d+)ch$", entry.architecture)
    return int(found[1]) if found else 0


def _family(entry: Any) -> str:
    parts = entry.architecture.split()
    return parts[1] if len(parts) == 3 and parts[1] != "?" else ""


def load_decoder(path: Path, device: str, dtype: Any) -> Any:
    """A diffusers `DecoderTiny` with the file's (or folder's) weights, on `device`, in eval mode."""
    from diffusers.models.autoencoders.vae import DecoderTiny

    path = Path(path)
    folder = path if path.is_dir() else path.parent if _tiny_folder(path.parent) else None
    if folder is not None:
        from diffusers import AutoencoderTiny

        decoder = AutoencoderTiny.from_pretrained(folder, local_files_only=True, use_safetensors=True).decoder
        return decoder.to(device, dtype).eval()
    from safetensors.torch import load_file

    raw = load_file(str(path))
    prefix, offset = _decoder_keys(raw)
    state = {}
    for key, tensor in raw.items():
        found = re.fullmatch(re.escape(prefix) + r"(\d+)\.(.+)", key)
        if found and not (prefix == "decoder." and key.startswith("decoder.layers.")):
            state[f"layers.{int(found[1]) + offset}.{found[2]}"] = tensor
    stages, widths, out_channels = _structure({k.removeprefix("layers."): tuple(v.shape) for k, v in state.items()})
    decoder = DecoderTiny(
        in_channels=state["layers.0.weight"].shape[1], out_channels=out_channels, num_blocks=tuple(stages),
        block_out_channels=tuple(widths), upsampling_scaling_factor=2, act_fn="relu", upsample_fn="nearest",
    )
    try:
        decoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PreviewDecoderError(f"{path.name}: not a TAESD decoder this studio reads ({str(exc).splitlines()[0]})") from None
    return decoder.to(device, dtype).eval()


def _structure(shapes: dict[str, tuple[int, ...]]) -> tuple[list[int], list[int], int]:
    """(blocks per stage, width per stage, output channels) from the layer shapes: blocks, then a conv, per stage."""
    indices = sorted({int(key.split(".")[0]) for key in shapes})
    stages, widths, blocks = [], [], 0
    for index in indices[1:]:
        if f"{index}.conv.0.weight" in shapes:
            blocks += 1
            width = shapes[f"{index}.conv.0.weight"][0]
        elif f"{index}.weight" in shapes:
            if not blocks:
                raise PreviewDecoderError("a TAESD decoder's stage has no blocks")
            stages.append(blocks)
            widths.append(width)
            blocks = 0
    out_channels = shapes[f"{indices[-1]}.weight"][0]
    return stages, widths, out_channels

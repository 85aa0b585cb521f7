"""What to turn on when a job runs out of memory, for the model's architecture: one line.

Each architecture runs out in its own place: SD1/SD2 in attention at large
sizes, SDXL in its VAE decode at 1024 and up, SD3 in its T5 encoder (about
9 GB in bf16), Flux in its 12B transformer (a GGUF quantisation fits 12-16 GB
cards). The hint names the switches that exist for this, most helpful first,
and leaves out those the recipe already has on. An error raised inside a VAE
decode puts VAE tiling first, whatever the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.bounded import read_json_file
from studio.models.inspect import inspect_file

SLICING = "--attention-slicing"
TILING = "--vae-tiling (large images)"
OFFLOAD = "--cpu-offload (model CPU offload)"
SEQUENTIAL = "--sequential-offload (slowest, least memory)"
CONFIG = "or the same in the config"

# Family -> the hints in the order that helps most for it.
HINTS: dict[str, tuple[str, ...]] = {
    "sd1": (SLICING, TILING, OFFLOAD, SEQUENTIAL),
    "sdxl": (OFFLOAD, TILING, SEQUENTIAL, SLICING),
    "sd3": (OFFLOAD, "a folder without text_encoder_3 (runs without T5, diffusers allows it)", TILING, SEQUENTIAL),
    "flux": (OFFLOAD, "a GGUF-quantised transformer (Q8_0 or Q4_K, in models/unet)", TILING, SEQUENTIAL),
    "cascade": (OFFLOAD, SEQUENTIAL),
}
NAMES = {"sd1": "SD1/SD2", "sdxl": "SDXL", "sd3": "SD3", "flux": "Flux", "cascade": "Stable Cascade"}


def model_family(path: Path | str) -> str:
    """sd1 (SD1.x and SD2.x), sdxl, sd3, flux, cascade, or '' if unknown; from a folder's model_index.json
    or a single file's header."""
    path = Path(path)
    if path.is_dir():
        try:
            name = str(read_json_file(path / "model_index.json", max_chars=1 << 20).get("_class_name", ""))
        except (OSError, ValueError, AttributeError):
            return ""
    else:
        try:
            name = inspect_file(path).architecture
        except Exception:  # a hint is a nicety: an unreadable file gets the general one
            return ""
    return family_of_name(name)


def family_of_name(name: str) -> str:
    """A pipeline class name ("StableDiffusionXLPipeline") or inspect's architecture ("SDXL base") to a family."""
    lowered = name.lower().replace(" ", "")
    for marker, family in (("cascade", "cascade"), ("wuerstchen", "cascade"), ("flux", "flux"), ("sd3", "sd3"),
                           ("stablediffusion3", "sd3"), ("xl", "sdxl"), ("sd1", "sd1"), ("sd2", "sd1"),
                           ("stablediffusion", "sd1"), ("studio-tiny", "sd1")):
        if marker in lowered:
            return family
    return ""


def oom_hint(family: str, recipe: Any, exc: BaseException | None = None) -> str:
    """'out of memory (SDXL): try ...' in one line, for `recipe` (its memory switches) and the error's place."""
    hints = list(HINTS.get(family, (SLICING, TILING, OFFLOAD, SEQUENTIAL)))
    if exc is not None and _in_vae_decode(exc) and TILING in hints:
        hints.remove(TILING)
        hints.insert(0, TILING)
    on = {SLICING: recipe.attention_slicing, TILING: recipe.vae_tiling, OFFLOAD: recipe.cpu_offload,
          SEQUENTIAL: getattr(recipe, "sequential_offload", False)}
    hints = [hint for hint in hints if not on.get(hint, False)]
    where = f" ({NAMES[family]})" if family in NAMES else ""
    if not hints:
        return f"out of memory{where} with every memory switch on: try a smaller size or batch"
    return f"out of memory{where}: try a smaller size or batch, or {', '.join(hints)}, {CONFIG}"


def _in_vae_decode(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in ("decode", "_decode", "tiled_decode") and "autoencoder" in code.co_filename:
            return True
        tb = tb.tb_next
    return False

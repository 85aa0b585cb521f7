"""The kinds of model file, as `studio models` lists them, and where the hub cache is.

Plain names with no imports, so what only names a kind (the library, the
TUI's first frame) does not import the inspectors that tell kinds apart.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKPOINT, LORA, EMBEDDING, VAE, UNKNOWN = "checkpoint", "LoRA", "embedding", "VAE", "unknown"
UPSCALER = "upscaler"  # found by folder (models/ESRGAN, models/upscale_models…); see upscaler_arch
TEXT_ENCODER = "text encoder"  # CLIP-L/G or T5 as its own file (ComfyUI's models/text_encoders)


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps downloads, by its own variables (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"

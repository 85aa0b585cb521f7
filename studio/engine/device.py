"""Pick the device and dtype a job runs on."""

from __future__ import annotations

import os


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """('cuda', 'bfloat16'), ('mps', 'float16') or ('cpu', 'float32') unless overridden."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but torch sees no CUDA device")
    if dtype == "auto":
        dtype = _default_dtype(torch, device)
    if device == "cpu" and dtype == "float16":
        raise RuntimeError("float16 is not supported on the CPU; use float32 or bfloat16")
    return device, dtype


def _default_dtype(torch, device: str) -> str:
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def reserve_ui_core() -> None:
    """On the CPU leave one core to the UI thread and the terminal."""
    import torch

    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores - 1))

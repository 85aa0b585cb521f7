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


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_cpu_threads(reserve_core: bool) -> int:
    """Run torch on every core, or on all but one when a UI shares the process; returns the count.

    The TUI reserves a core for its event loop and the terminal; the headless
    CLI has nothing to keep one for. OMP_NUM_THREADS, when the user sets it, wins.
    """
    import torch

    asked = os.environ.get("OMP_NUM_THREADS", "").strip()
    if asked:
        # Set, not only left alone: torch reads the variable once, and something in this process
        # may have changed its count since (the same count is what makes the same pixels).
        threads = int(asked) if asked.isdigit() and int(asked) > 0 else torch.get_num_threads()
    else:
        cores = available_cores()
        threads = max(1, cores - 1) if reserve_core else cores
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads

"""Pay for the heavy imports early, on a thread of their own, while the caller does other work.

torch, diffusers and transformers take seconds to import, and diffusers'
pipeline classes are imported lazily, on first use, inside the load. The
engine calls `import_libraries` first thing on its worker (the TUI starts the
engine after its first paint, so they overlap the user's first keys); the CLI
calls `import_in_background` before parsing its recipes and hashing the model,
which is C code that lets the import run beside it. Importing twice is free:
the second import finds the modules loaded, or waits for the first to finish.
"""

from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)

# What loading an SD1/SD2/SDXL pipeline, folder or single file, touches; diffusers and
# transformers import each of these lazily on first attribute access.
HEAVY = (
    ("diffusers", ("StableDiffusionPipeline", "StableDiffusionXLPipeline", "UNet2DConditionModel", "AutoencoderKL")),
    ("diffusers.loaders.single_file", ()),
    ("diffusers.loaders.single_file_utils", ()),
    ("transformers", ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer")),
)


def import_libraries() -> None:
    """Import torch, diffusers and transformers with the classes a load needs."""
    import torch  # noqa: F401

    for module_name, names in HEAVY:
        module = importlib.import_module(module_name)
        for name in names:
            getattr(module, name)


def _quietly() -> None:
    try:
        import_libraries()
    except BaseException:  # the engine imports again on its worker and reports the failure there
        log.debug("background import failed", exc_info=True)


def import_in_background() -> threading.Thread:
    """Start `import_libraries` on a daemon thread and return it."""
    thread = threading.Thread(target=_quietly, name="studio-imports", daemon=True)
    thread.start()
    return thread

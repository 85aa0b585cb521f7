"""Pay for the heavy imports early, on a thread of their own, while the caller does other work.

torch, diffusers and transformers take seconds to import, and diffusers'
pipeline classes are imported lazily, on first use, inside the load. The
engine calls `import_libraries` first thing on its worker (the TUI starts the
engine after its first paint, so they overlap the user's first keys); the CLI
calls `import_in_background` (`studio.cli.main`, for a command with `WARM_UP`)
before it even parses its line, finds the model and hashes it (C code that lets
the import run beside it). Importing twice is free:
the second import finds the modules loaded, or waits for the first to finish.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
import warnings

log = logging.getLogger(__name__)

# What loading an SD1/SD2/SDXL pipeline, folder or single file, touches; diffusers and
# transformers import each of these lazily on first attribute access.
HEAVY = (
    ("diffusers", ("StableDiffusionPipeline", "StableDiffusionXLPipeline", "UNet2DConditionModel", "AutoencoderKL")),
    ("diffusers.loaders.single_file", ()),
    ("diffusers.loaders.single_file_utils", ()),
    ("transformers", ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer")),
)


_background: threading.Thread | None = None  # the thread `import_in_background` started


def import_libraries() -> None:
    """Import torch, diffusers and transformers with the classes a load needs, silenced first.

    While `import_in_background` is at it, another thread waits for it rather than importing
    beside it: diffusers' lazy module is not safe to import from two threads at once (one of
    them can fail with "cannot import name 'DiffusionPipeline' from 'diffusers'").

    Their loggers and progress bars are turned down before anything heavy is
    imported: transformers warns at import time (about torchvision, for one),
    and the user's terminal gets studio's lines, not theirs.
    """
    wait_for_background()
    import torch  # noqa: F401
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()
    # diffusers 0.42 renamed torch_dtype to dtype; older releases know only the former.
    warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
    for module_name, names in HEAVY:
        module = importlib.import_module(module_name)
        for name in names:
            getattr(module, name)


def wait_for_background(timeout: float | None = None) -> None:
    """Return once the background import (if any) is done; at once on its own thread."""
    running = _background
    if running is not None and running is not threading.current_thread():
        running.join(timeout)


def _quietly() -> None:
    """The CLI's import, with the cyclic collector held off and what it made frozen after.

    Importing torch, diffusers and transformers makes millions of objects that live as long as
    the process; the collector's passes over them find nothing to free (a bare diffusers script
    spends 1.3 CPU seconds in them, all during its imports, on a loaded machine). Frozen (moved to
    the permanent generation) at the end, no later pass scans them. The CLI process holds no
    window whose dropped cycles could wait on that; the TUI's engine imports on its worker as before.
    """
    from studio.store.collector import held_off

    try:
        with held_off():
            import_libraries()
            gc.freeze()
    except BaseException:  # the engine imports again on its worker and reports the failure there
        log.debug("background import failed", exc_info=True)


def import_in_background() -> threading.Thread:
    """Start `import_libraries` on a daemon thread and return it; once a process (later calls return it)."""
    global _background
    if _background is not None:
        return _background
    thread = threading.Thread(target=_quietly, name="studio-imports", daemon=True)
    _background = thread
    thread.start()
    return thread

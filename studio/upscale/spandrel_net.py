"""The user's upscaler files, loaded through spandrel (the optional `studio[upscalers]` extra).

spandrel (MIT) reads ESRGAN, Real-ESRGAN (RRDB and compact SRVGG), SwinIR,
HAT, DAT, SPAN and more from their state dicts. Only its main registry is used:
its non-commercial architectures live in `spandrel_extra_arches`, which studio
never installs into the registry. Weights come from safetensors; a pickled
`.pth` is refused unless allowed, and then read only by the restricted
weights-only unpickler (studio/models/pickles.py), so its payload never runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.recipe import RecipeError

MISSING = "upscaler files need spandrel, an optional extra: pip install 'studio[upscalers]'"


def refuse_pickle(path: Path, allow_pickle: bool) -> None:
    from studio.models.pickles import PickleRefused, refusal

    if not allow_pickle:
        raise PickleRefused(refusal(path))


def state_dict(path: Path, allow_pickle: bool = False) -> dict[str, Any]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    from studio.models.pickles import load_pickle_state_dict

    return load_pickle_state_dict(path, allow_pickle=allow_pickle)


def load_spandrel(path: Path, allow_pickle: bool = False) -> Any:
    """The upscaler in `path` as a callable on (N, 3, h, w) tensors in [0, 1]; RecipeError without spandrel."""
    weights = state_dict(path, allow_pickle)  # the pickle refusal comes first, spandrel or not
    try:
        from spandrel import ImageModelDescriptor, ModelLoader
    except ImportError:
        raise RecipeError(MISSING) from None
    try:
        descriptor = ModelLoader().load_from_state_dict(weights)
    except Exception as exc:  # spandrel's "unsupported model" and shape errors
        from studio.errors import first_line

        raise RecipeError(f"{path.name}: not an upscaler spandrel can load ({first_line(exc)})") from None
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose != "SR":
        raise RecipeError(f"{path.name}: a {descriptor.architecture.name} model, not an upscaler")
    return descriptor.eval()

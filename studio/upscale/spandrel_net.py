"""The user's upscaler files, loaded through spandrel (the optional `studio[upscalers]` extra).

spandrel (MIT) reads ESRGAN, Real-ESRGAN (RRDB and compact SRVGG), SwinIR,
HAT, DAT, SPAN and more from their state dicts. Only its main registry is used
unless the user turns on its non-commercial architectures (`spandrel_extra_arches`
in the config, `--spandrel-extra-arches` on the command line): then
`spandrel_extra_arches.install()` adds them, once per process. spandrel's registry
is the process's, so the switch is too: a face sets it (`use_extra_arches`), and
a process no face set it in (an engine on its own, a Ray worker) reads the config's
when it first loads a file. Weights come from safetensors; a pickled
`.pth` is refused unless allowed, and then read only by the restricted
weights-only unpickler (studio/models/pickles.py), so its payload never runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.recipe import RecipeError

MISSING = "upscaler files need spandrel, an optional extra: pip install 'studio[upscalers]'"
EXTRAS_MISSING = ("spandrel's extra architectures need spandrel_extra_arches "
                  "(non-commercial licences): pip install spandrel_extra_arches")

_extras: dict[str, bool | None] = {"wanted": None, "installed": False}  # wanted None: as the config says


def use_extra_arches(on: bool, check: bool = True) -> None:
    """Whether this process loads spandrel's non-commercial architectures too. `check`: installed now
    when on, so a missing package is a one-line error before anything runs (the TUI leaves that to
    the first load, which fails its job in one line, since installing imports torch)."""
    _extras["wanted"] = on
    if on and check:
        install_extra_arches()


def extra_arches_wanted() -> bool:
    """The switch a face set, or the config's where none did."""
    if _extras["wanted"] is None:
        from studio.config import load_config

        _extras["wanted"] = load_config().spandrel_extra_arches
    return bool(_extras["wanted"])


def install_extra_arches() -> None:
    """`spandrel_extra_arches.install()` once per process; RecipeError (one line) when it cannot."""
    if _extras["installed"]:
        return
    try:
        import spandrel_extra_arches
    except ImportError:
        raise RecipeError(EXTRAS_MISSING) from None
    try:
        spandrel_extra_arches.install()
    except Exception as exc:  # noqa: BLE001  (spandrel failing to import: torchvision beside another torch)
        from studio.errors import first_line

        raise RecipeError(f"spandrel_extra_arches would not install: {first_line(exc)}") from None
    _extras["installed"] = True


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
    if extra_arches_wanted():
        install_extra_arches()
    try:
        descriptor = ModelLoader().load_from_state_dict(weights)
    except Exception as exc:  # spandrel's "unsupported model" and shape errors
        from studio.errors import first_line

        raise RecipeError(f"{path.name}: not an upscaler spandrel can load ({first_line(exc)})") from None
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose != "SR":
        raise RecipeError(f"{path.name}: a {descriptor.architecture.name} model, not an upscaler")
    return descriptor.eval()

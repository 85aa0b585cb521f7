"""Text encoders and VAEs kept as their own files, as ComfyUI keeps them beside a transformer.

A Flux or SD3 transformer file holds no text encoder: ComfyUI puts CLIP-L, CLIP-G and T5
in `models/text_encoders` (older installs: `models/clip`) and the VAE in `models/vae`.
Each text-encoder slot of a pipeline config (`text_encoder`, `text_encoder_2`, …) is
paired with a file of the same family (CLIP or T5) and width, by its header alone: the
files the user named first, then the ones in the transformer's ComfyUI tree.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from studio.bounded import read_json_config
from studio.errors import first_line
from studio.models.safetensors_header import HeaderError, read_header

ENCODER_FOLDERS = ("text_encoders", "clip")
VAE_FOLDERS = ("vae",)
TRANSFORMER_FOLDERS = ("diffusion_models", "unet", "checkpoints")

CLIP_Q = "encoder.layers.0.self_attn.q_proj.weight"  # "text_model." before it in most files
T5_Q = "encoder.block.0.layer.0.SelfAttention.q.weight"
_CLIP_NAMES = {768: "CLIP-L", 1280: "CLIP-G"}
_T5_NAMES = {4096: "T5-XXL", 768: "T5-base"}


class ComponentMissing(LookupError):
    """A text encoder, VAE or tokenizer that a single-file model needs and was not found; one line."""


class ComponentError(ValueError):
    """A component file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Encoder:
    family: str  # "clip" or "t5"
    width: int

    @property
    def label(self) -> str:
        names = _CLIP_NAMES if self.family == "clip" else _T5_NAMES
        return names.get(self.width, f"{'CLIP' if self.family == 'clip' else 'T5'} ({self.width}-wide)")


def encoder_of(shapes: dict[str, tuple[int, ...]]) -> Encoder | None:
    """The text encoder a state dict is (by its first attention layer), or None."""
    for key, shape in shapes.items():
        if key.endswith(CLIP_Q) and len(shape) == 2:
            return Encoder("clip", shape[0])
        if key.endswith(T5_Q) and len(shape) == 2:
            return Encoder("t5", shape[1])
    return None


def file_encoder(path: Path) -> Encoder | None:
    try:
        return encoder_of({k: t.shape for k, t in read_header(path).tensors.items()})
    except (HeaderError, OSError):
        return None


def _low_precision(path: Path) -> bool:
    try:
        dtypes = {t.dtype for t in read_header(path).tensors.values()}
    except (HeaderError, OSError):
        return True
    return any(d.startswith("F8") for d in dtypes)


# --- where a ComfyUI tree keeps them ------------------------------------------------


def comfy_models_roots(model: Path, model_dirs: Iterable[Path] = ()) -> list[Path]:
    """`models/` folders to look in: the one holding `model`, then those of the library's folders."""
    roots: list[Path] = []
    for parent in Path(model).resolve().parents:
        if parent.name in TRANSFORMER_FOLDERS:
            roots.append(parent.parent)
            break
    for folder in model_dirs:
        folder = Path(folder).expanduser()
        roots += [folder / "models", folder]
    return [r for r in dict.fromkeys(roots) if any((r / sub).is_dir() for sub in (*ENCODER_FOLDERS, *VAE_FOLDERS))]


def _files(roots: Iterable[Path], subfolders: Iterable[str]) -> Iterator[Path]:
    for root in roots:
        for sub in subfolders:
            folder = root / sub
            if folder.is_dir():
                yield from sorted(p for p in folder.rglob("*.safetensors") if p.is_file())


def encoder_slots(config_dir: Path) -> dict[str, Encoder]:
    """slot ("text_encoder"…) -> the encoder the shipped config describes, for each text encoder."""
    index = read_json_config(config_dir / "model_index.json")
    slots = {}
    for name, entry in index.items():
        if not name.startswith("text_encoder") or not isinstance(entry, list) or entry[:1] == [None]:
            continue
        config = read_json_config(config_dir / name / "config.json")
        if str(entry[-1]).startswith("T5"):
            slots[name] = Encoder("t5", int(config.get("d_model", 0)))
        else:
            slots[name] = Encoder("clip", int(config.get("hidden_size", 0)))
    return slots


def pair_encoders(
    slots: dict[str, Encoder], named: Iterable[Path], roots: Iterable[Path], model_name: str
) -> dict[str, Path]:
    """slot -> file for each slot: the first named file that fits, else the best in the tree.

    In the tree a file in full or half precision goes before an fp8 one, then by name.
    """
    named = [Path(p) for p in named]
    found = [(p, file_encoder(p)) for p in named]
    for path, encoder in found:
        if encoder is None:
            raise ComponentError(f"{path.name} is not a CLIP or T5 text encoder")
    tree = [(p, file_encoder(p)) for p in _files(roots, ENCODER_FOLDERS)]
    tree.sort(key=lambda item: (_low_precision(item[0]), item[0].name.lower()))
    paired: dict[str, Path] = {}
    for slot, wanted in slots.items():
        hit = next((p for p, e in found if e == wanted and p not in paired.values()), None)
        hit = hit or next((p for p, e in tree if e == wanted and p not in paired.values()), None)
        if hit is None:
            where = ", ".join(str(r / ENCODER_FOLDERS[0]) for r in roots) or "models/text_encoders"
            raise ComponentMissing(
                f"{model_name} needs a {wanted.label} text encoder: put one in {where}"
                " or name it with --text-encoder FILE"
            )
        paired[slot] = hit
    return paired


def find_vae(roots: Iterable[Path], latent_channels: int, hints: tuple[str, ...], model_name: str) -> Path:
    """The VAE for a transformer file: the one VAE with its latent channels in the tree, or the one named like it."""
    fitting = []
    for path in _files(roots, VAE_FOLDERS):
        try:
            shapes = {k: t.shape for k, t in read_header(path).tensors.items()}
        except (HeaderError, OSError):
            continue
        conv = next((s for k, s in shapes.items() if k.endswith("decoder.conv_in.weight")), None)
        if conv is not None and len(conv) == 4 and conv[1] == latent_channels:
            fitting.append(path)
    hinted = [p for p in fitting if any(h in p.stem.lower() for h in hints)]
    if len(hinted) == 1 or len(fitting) == 1:
        return (hinted or fitting)[0]
    if not fitting:
        where = ", ".join(str(r / "vae") for r in roots) or "models/vae"
        raise ComponentMissing(f"{model_name} needs its {latent_channels}-channel VAE: put it in {where} or pass --vae")
    names = ", ".join(p.name for p in fitting)
    raise ComponentMissing(f"{model_name}: several {latent_channels}-channel VAEs ({names}); choose one with --vae")


# --- loading ------------------------------------------------------------------


def load_encoder(path: Path, config_folder: Path, torch_dtype: Any) -> Any:
    """A CLIP or T5 encoder from a single file in Hugging Face's key layout, on the shipped config."""
    import os

    import transformers

    config = read_json_config(config_folder / "config.json")
    cls = getattr(transformers, (config.get("architectures") or ["CLIPTextModel"])[0])
    with tempfile.TemporaryDirectory(prefix="studio-encoder-") as folder:
        (Path(folder) / "config.json").write_text(Path(config_folder / "config.json").read_text())
        os.symlink(Path(path).resolve(), Path(folder) / "model.safetensors")
        try:
            model, info = cls.from_pretrained(
                folder, torch_dtype=torch_dtype, local_files_only=True, output_loading_info=True
            )
        except Exception as exc:
            raise ComponentError(f"{path.name}: cannot load as {cls.__name__}: {first_line(exc)}") from exc
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith("position_ids")]
    if missing:
        raise ComponentError(
            f"{path.name}: not a {cls.__name__} in Hugging Face's layout ({len(missing)} weights missing, e.g. {missing[0]})"
        )
    return model


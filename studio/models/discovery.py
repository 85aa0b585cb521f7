"""Find the user's weights: plain folders, AUTOMATIC1111 and ComfyUI layouts, the HF cache.

Each file is recognised from its safetensors header, so a LoRA filed under
`checkpoints/` is still listed as a LoRA. Pickles are never opened here: their
kind comes from the folder they sit in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from studio.models.hashing import HashCache, folder_hash
from studio.models.inspect import CHECKPOINT, EMBEDDING, LORA, TEXT_ENCODER, UNKNOWN, UPSCALER, VAE, inspect_file
from studio.models.pickles import is_pickle
from studio.models import taesd
from studio.models.safetensors_header import HeaderError, read_header
from studio.models.taesd import FOLDERS as TAESD_FOLDERS, PREVIEW_DECODER
from studio.models.upscaler_arch import upscaler_architecture

WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".ckpt", ".pt", ".pth", ".bin")
MAX_DEPTH = 4

# Sub-folders of a models/ folder and the kind a file found there is assumed to be.
LAYOUT: dict[str, str] = {
    # AUTOMATIC1111 (models/...)
    "Stable-diffusion": CHECKPOINT, "Lora": LORA, "LyCORIS": LORA, "VAE": VAE,
    # ComfyUI (models/...)
    "checkpoints": CHECKPOINT, "diffusion_models": CHECKPOINT, "unet": CHECKPOINT,
    "loras": LORA, "vae": VAE, "embeddings": EMBEDDING, "text_encoders": TEXT_ENCODER, "clip": TEXT_ENCODER,
    # upscalers: A1111's models/ESRGAN, RealESRGAN, SwinIR; ComfyUI's models/upscale_models
    "ESRGAN": UPSCALER, "RealESRGAN": UPSCALER, "SwinIR": UPSCALER, "upscale_models": UPSCALER,
    # TAESD-family preview decoders: A1111's models/VAE-taesd, ComfyUI's models/vae_approx
    **{folder: PREVIEW_DECODER for folder in TAESD_FOLDERS},
}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    kind: str  # checkpoint, LoRA, embedding, VAE, text encoder, upscaler or unknown
    architecture: str
    size: int
    dtype: str
    format: str  # safetensors, gguf, pickle or diffusers
    source: str  # the folder (or "hf-cache") it was found in
    hash: str = ""  # AutoV2; filled in by `with_hashes`
    license: str = ""  # the license as one line, flagged (`License.label`); "" when none is declared
    safety_checker: bool = False  # a folder that ships one


EntryProgress = Callable[[ModelEntry, int, int], None]  # (entry, bytes done, bytes total)


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps downloads, by its own variables (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


ORDER = (CHECKPOINT, LORA, EMBEDDING, VAE, TEXT_ENCODER, UPSCALER, UNKNOWN)


def scan_folders(dirs: Iterable[Path]) -> list[ModelEntry]:
    """Every model under `dirs`, each file once (the first folder that holds it names its source)."""
    entries: list[ModelEntry] = []
    seen: set[Path] = set()
    for root in dirs:
        for path, hint in _candidates(root):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            entry = _entry(path, hint, str(root))
            if entry:
                entries.append(entry)
    return entries


def scan_hf_cache(cache: Path) -> list[ModelEntry]:
    """The diffusers pipelines in the Hugging Face hub cache at `cache`, named "org/name"."""
    entries = [_entry(path, CHECKPOINT, "hf-cache", name=name) for path, name in hf_cache_models(cache)]
    return [entry for entry in entries if entry]


def sort_entries(entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    """Checkpoints, LoRAs, embeddings, VAEs, then the rest; by name within each kind."""
    rank = {kind: i for i, kind in enumerate(ORDER)}
    return sorted(entries, key=lambda e: (rank.get(e.kind, len(ORDER)), e.name.lower()))


def _candidates(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, kind hint) for every weights file or diffusers folder under `root`."""
    if not root.is_dir():
        return
    models = root / "models"
    if models.is_dir() and any((models / sub).is_dir() for sub in LAYOUT):
        # An A1111 or ComfyUI install: look only where it keeps weights, not in its code.
        if (root / "embeddings").is_dir():
            yield from _walk(root / "embeddings", EMBEDDING, 1)
        root = models
    yield from _walk(root, "", 0)


def _walk(folder: Path, hint: str, depth: int) -> Iterator[tuple[Path, str]]:
    if (folder / "model_index.json").is_file():
        yield folder, CHECKPOINT
        return
    if depth > MAX_DEPTH:
        return
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child, hint or LAYOUT.get(child.name, ""), depth + 1)
        elif child.suffix.lower() in WEIGHT_SUFFIXES and child.is_file():
            yield child, hint


def hf_cache_models(cache: Path) -> Iterator[tuple[Path, str]]:
    """(snapshot folder, "org/name") for each diffusers pipeline in the HF hub cache."""
    if not cache.is_dir():
        return
    for repo in sorted(cache.glob("models--*")):
        snapshot = _current_snapshot(repo)
        if snapshot and (snapshot / "model_index.json").is_file():
            yield snapshot, repo.name.removeprefix("models--").replace("--", "/")


def _current_snapshot(repo: Path) -> Path | None:
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = [p for p in (repo / "snapshots").glob("*") if p.is_dir()]
    return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None


_MEMO: dict[tuple, ModelEntry | None] = {}  # rescans only stat unchanged files


def _entry(path: Path, hint: str, source: str, name: str | None = None) -> ModelEntry | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), hint, source, name, stat.st_size, stat.st_mtime_ns, path.is_dir())
    if key not in _MEMO:
        if len(_MEMO) > 10_000:
            _MEMO.clear()
        _MEMO[key] = _read_entry(path, hint, source, name)
    return _MEMO[key]


def _read_entry(path: Path, hint: str, source: str, name: str | None) -> ModelEntry | None:
    name = name or (path.name if path.is_dir() else path.stem)
    if path.is_file() and is_pickle(path):
        if path.suffix.lower() == ".bin" and not hint:
            return None  # loose .bin files are usually diffusers/transformers parts
        kind = hint or (EMBEDDING if path.suffix.lower() == ".pt" and path.stat().st_size < 1 << 20 else CHECKPOINT)
        return ModelEntry(name, path, kind, "pickle (not opened)", path.stat().st_size, "", "pickle", source)
    if hint == UPSCALER and path.is_file():
        return _upscaler_entry(path, name, source)
    if hint == PREVIEW_DECODER:
        return _preview_decoder_entry(path, name, source)
    try:
        found = inspect_file(path)
    except (HeaderError, OSError):
        # Listed, not hidden: the user should learn that a file they own is damaged.
        return ModelEntry(name, path, hint or UNKNOWN, "damaged (studio inspect says why)", _size(path), "", "damaged", source)
    if found.kind == UNKNOWN and path.is_file() and not hint:
        return None  # a stray component or unrelated tensor file
    return ModelEntry(
        name, path, found.kind, found.architecture, found.size, found.dtype, found.format, source,
        license=found.license.label(), safety_checker=found.safety_checker,
    )


def _upscaler_entry(path: Path, name: str, source: str) -> ModelEntry:
    try:
        header = read_header(path)
    except HeaderError:
        return ModelEntry(name, path, UPSCALER, "damaged (studio inspect says why)", _size(path), "", "damaged", source)
    arch, scale = upscaler_architecture({k: t.shape for k, t in header.tensors.items()}, header.metadata)
    described = f"{arch} {scale}x" if arch and scale else arch or "unknown upscaler"
    dtypes = {t.dtype for t in header.tensors.values()}
    return ModelEntry(name, path, UPSCALER, described, header.file_size, "/".join(sorted(dtypes)), "safetensors", source)


def _preview_decoder_entry(path: Path, name: str, source: str) -> ModelEntry | None:
    if path.name.startswith(("diffusion_pytorch_model", "model.")) and path.parent.name not in TAESD_FOLDERS:
        name = path.parent.name  # a diffusers AutoencoderTiny folder: named by its folder
    try:
        info = taesd.describe(path)
    except taesd.PreviewDecoderError:
        return ModelEntry(name, path, PREVIEW_DECODER, "damaged or not a TAESD decoder", _size(path), "", "damaged", source)
    return ModelEntry(name, path, PREVIEW_DECODER, taesd.architecture_label(info), _size(path), "", "safetensors", source)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def with_hashes(
    entries: Iterable[ModelEntry], cache: HashCache, progress: EntryProgress | None = None
) -> list[ModelEntry]:
    """The same entries with AutoV2 hashes of their files, and studio's folder hash for diffusers folders."""
    hashed = []
    for entry in entries:
        if entry.path.is_file():
            report = (lambda done, total, e=entry: progress(e, done, total)) if progress else None
            entry = replace(entry, hash=cache.sha256(entry.path, report)[:10])
        elif (entry.path / "model_index.json").is_file():
            entry = replace(entry, hash=folder_hash(entry.path, cache))
        hashed.append(entry)
    return hashed


def with_cached_hashes(entries: Iterable[ModelEntry], cache: HashCache) -> list[ModelEntry]:
    """The same entries with the hashes already in the cache; hashes nothing."""
    return [replace(entry, hash=(cache.cached(entry.path) or "")[:10]) for entry in entries]


def find(name: str, entries: Iterable[ModelEntry], cache: HashCache, kinds: tuple[str, ...] = ()) -> ModelEntry | None:
    """An entry by name, file name, path stem or AutoV2 hash prefix (case-insensitive).

    A hash prefix matches only files hashed before: finding hashes nothing.
    """
    wanted = name.lower()
    pool = [e for e in entries if not kinds or e.kind in kinds]
    for match in (
        lambda e: e.name.lower() == wanted,
        lambda e: e.path.name.lower() == wanted,
        lambda e: e.name.lower().split("/")[-1] == wanted,
    ):
        hits = [e for e in pool if match(e)]
        if hits:
            return hits[0]
    if len(wanted) >= 6 and all(c in "0123456789abcdef" for c in wanted):
        hits = [e for e in pool if e.path.is_file() and (cache.cached(e.path) or "").startswith(wanted)]
        if len(hits) == 1:
            return hits[0]
    return None

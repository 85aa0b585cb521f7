"""Flux as ComfyUI keeps it: a transformer file, text encoders and a VAE in their own folders.

`models/diffusion_models/flux1-dev.safetensors` (or `.gguf`, or under `models/unet`),
`models/text_encoders/clip_l.safetensors` and `t5xxl_fp16.safetensors` (or `models/clip`),
`models/vae/ae.safetensors`. studio ships the diffusers configs these need
(`configs/flux-dev`, `configs/flux-schnell`: FLUX.1-schnell's Apache-2.0 configs, dev
differing only in its guidance embedder and scheduler shift) and finds the CLIP BPE and
the T5 tokenizer on disk, so nothing is fetched.

Before a job loads, `with_companions` pairs the transformer with its text encoders and
VAE and writes their names into the recipe, so the image records what made it and a
re-run loads the same files even after others are added beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from studio.bounded import read_json_config
from studio.errors import first_line
from studio.models.file_memo import FileMemo
from studio.models.components import (
    ComponentError, ComponentMissing, comfy_models_roots, encoder_slots, find_vae, load_encoder, pair_encoders,
)
from studio.models.gguf import (
    GGUFError, GGUFUnavailable, gguf_architecture, gguf_quantization, read_gguf_state,
)
from studio.models.flux_keys import FluxKeyError, bfl_to_diffusers, is_bfl_layout, transformer_shape
from studio.models.inspect import TEXT_ENCODER, VAE, classify
from studio.models.safetensors_header import HeaderError, read_header
from studio.models.sd3_file import SD3_CONFIGS, needed_encoders, parts_inside
from studio.models.sd3_file import VAE_HINTS as SD3_VAE_HINTS
from studio.models.tokenizers import (
    TokenizerMissing, find_clip_tokenizer, find_t5_tokenizer, missing_message, t5_missing_message,
    t5_tokenizer,
)


if TYPE_CHECKING:
    from studio.recipe import Recipe


class Library(Protocol):
    """What pairing needs of a ModelLibrary (which imports this module, so it is not imported here)."""

    dirs: tuple[Path, ...]

    def locate(self, name: str, kind: str = ...) -> Path | None: ...

    def looked_in(self, name: str, kind: str = ...) -> str: ...


# What loading a transformer file raises; each message is one line for the user.
LOAD_ERRORS = (ComponentMissing, ComponentError, FluxKeyError, TokenizerMissing, GGUFError, GGUFUnavailable)

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
# Architecture (as inspect names it) -> the config folder a transformer file loads against.
# Tests point these at shrunken copies; the shipped ones describe the real models.
TRANSFORMER_CONFIGS: dict[str, Path] = {
    "Flux dev": CONFIGS_DIR / "flux-dev",
    "Flux schnell": CONFIGS_DIR / "flux-schnell",
}
VAE_HINTS = {"Flux dev": ("ae", "flux"), "Flux schnell": ("ae", "flux")}


_ARCHITECTURES = FileMemo()  # asked for three times before a generate's job is queued, twice after


def file_architecture(path: Path) -> str:
    """'Flux dev', 'Flux schnell', 'SD3 Medium', 'SD3.5 Medium', 'SD3.5 Large' for such a file, else ''."""
    if path.suffix.lower() == ".gguf":
        return gguf_architecture(path)

    def classified() -> str:
        return classify({k: t.shape for k, t in read_header(path).tensors.items()})[1]

    try:
        arch = _ARCHITECTURES.get(path, classified)
    except (HeaderError, OSError):
        return ""
    return arch if arch in TRANSFORMER_CONFIGS or arch in SD3_CONFIGS else ""


def transformer_architecture(path: Path) -> str:
    """'Flux dev'/'Flux schnell' for a Flux transformer file (.safetensors or .gguf), else ''."""
    arch = file_architecture(path)
    return arch if arch in TRANSFORMER_CONFIGS else ""


def with_companions(recipe: Recipe, library: Library) -> Recipe:
    """`recipe` with the text encoders and VAE its transformer file is paired with, by name.

    A recipe whose model is not a Flux or SD3 file comes back with no text encoders named
    (they were not used). ComponentMissing/ComponentError (one line) when a needed file is not found.
    """
    path = library.locate(recipe.model)
    try:
        arch = file_architecture(path) if path is not None and path.is_file() else ""
    except GGUFUnavailable as exc:  # a .gguf model without the gguf package: one line, before any job
        raise ComponentError(str(exc)) from None
    if not arch:
        return recipe.replace(text_encoders=())
    roots = comfy_models_roots(path, library.dirs)
    named = [_located(library, name, TEXT_ENCODER) for name in recipe.text_encoders]
    if arch in SD3_CONFIGS:  # only what the file lacks, and T5 only when kept
        config_dir = SD3_CONFIGS[arch]
        slots, needs_vae, hints = needed_encoders(path, config_dir, recipe.t5), "vae" not in parts_inside(path), SD3_VAE_HINTS
    else:
        config_dir = TRANSFORMER_CONFIGS[arch]
        slots, needs_vae, hints = encoder_slots(config_dir), True, VAE_HINTS.get(arch, ())
    paired = pair_encoders(slots, named, roots, path.stem)
    vae = recipe.vae
    if not vae and needs_vae:
        latent = int(_vae_config(config_dir).get("latent_channels", 16))
        vae = _name_in(library, find_vae(roots, latent, hints, path.stem), VAE)
    encoders = tuple(_name_in(library, p, TEXT_ENCODER) for p in paired.values())
    return recipe.replace(text_encoders=encoders, vae=vae)


def _located(library: Library, name: str, kind: str) -> Path:
    path = library.locate(name, kind)
    if path is None:
        raise ComponentMissing(f"{kind} {name!r} not found (looked in: {library.looked_in(name, kind)})")
    return path


def _name_in(library: Library, path: Path, kind: str) -> str:
    """The name `path` is listed under in the library, or the path itself when it is not in it."""
    found = library.locate(path.stem, kind)
    return path.stem if found is not None and found.resolve() == path.resolve() else str(path)


def _vae_config(config_dir: Path) -> dict:
    return read_json_config(config_dir / "vae" / "config.json")


def load_transformer_file(
    path: Path,
    torch_dtype: Any,
    arch: str,
    *,
    config_dir: Path | None = None,
    text_encoders: Iterable[Path] = (),
    vae: Path | None = None,
    tokenizer_dirs: Iterable[Path] = (),
    model_dirs: Iterable[Path] = (),
    hf_cache: Path | None = None,
) -> Any:
    """A FluxPipeline from a transformer file and the encoders and VAE beside it (or named).

    Raises one of LOAD_ERRORS, each one line, for what is missing or unusable.
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline

    named_tokenizers = tuple(tokenizer_dirs)
    config_dir = Path(config_dir or TRANSFORMER_CONFIGS[arch])
    model_dirs = tuple(model_dirs)
    roots = comfy_models_roots(path, model_dirs)
    paired = pair_encoders(encoder_slots(config_dir), text_encoders, roots, path.stem)
    vae_path = Path(vae) if vae else find_vae(
        roots, int(_vae_config(config_dir).get("latent_channels", 16)), VAE_HINTS.get(arch, ()), path.stem
    )
    # The tokenizers first: a missing one is found out before gigabytes are read.
    near = (path.parent, *model_dirs)
    try:
        tokenizer = find_clip_tokenizer(config_dir / "tokenizer", named_tokenizers, near, hf_cache)
    except TokenizerMissing:
        raise TokenizerMissing(missing_message(arch)) from None
    try:
        t5_folder = find_t5_tokenizer(named_tokenizers, near, hf_cache)
    except TokenizerMissing:
        raise TokenizerMissing(t5_missing_message(path.stem)) from None
    tokenizer_2 = t5_tokenizer(t5_folder, config_dir / "tokenizer_2")
    transformer = load_flux_transformer(path, config_dir, torch_dtype)
    encoders = {slot: load_encoder(file, config_dir / slot, torch_dtype) for slot, file in paired.items()}
    try:
        vae_model = AutoencoderKL.from_single_file(
            str(vae_path), config=str(config_dir), subfolder="vae", local_files_only=True, torch_dtype=torch_dtype
        )
    except Exception as exc:
        raise ComponentError(f"{vae_path.name}: cannot load as the Flux VAE: {first_line(exc)}") from exc
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(config_dir), subfolder="scheduler")
    return FluxPipeline(
        scheduler=scheduler, vae=vae_model, transformer=transformer,
        text_encoder=encoders["text_encoder"], tokenizer=tokenizer,
        text_encoder_2=encoders["text_encoder_2"], tokenizer_2=tokenizer_2,
    )


def load_flux_transformer(path: Path, config_dir: Path, torch_dtype: Any) -> Any:
    """FluxTransformer2DModel from BFL-layout (or diffusers-layout) weights; GGUF files stay quantised."""
    from diffusers import FluxTransformer2DModel

    quantization: dict[str, Any] = {}
    if path.suffix.lower() == ".gguf":
        state = read_gguf_state(path)
        quantization = gguf_quantization(torch_dtype)
    else:
        from safetensors.torch import load_file

        state = load_file(str(path))
    shape = transformer_shape(state) if is_bfl_layout(state) else {}
    if shape:
        state = bfl_to_diffusers(state)
    try:
        return FluxTransformer2DModel.from_single_file(
            state, config=str(config_dir), subfolder="transformer", local_files_only=True,
            torch_dtype=torch_dtype, **shape, **quantization,
        )
    except Exception as exc:
        raise ComponentError(f"{path.name}: cannot load as a Flux transformer: {first_line(exc)}") from exc

"""Load a pipeline for a ModelRef: offline, without running pickles, with memory options.

Single-file SD1.x/SD2.x/SDXL checkpoints are loaded against the diffusers
configs studio ships in `configs/<arch>/`, so diffusers never asks the hub
for them; the CLIP tokenizer files come from `tokenizers.find_clip_bpe`.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from studio.bounded import read_json_file
from studio.errors import first_line
from studio.models.discovery import hf_hub_cache
from studio.models.comfy_layout import LOAD_ERRORS, load_transformer_file, transformer_architecture
from studio.models.inspect import CHECKPOINT, TEXT_ENCODER, VAE, classify
from studio.models.library import ModelLibrary
from studio.models.pickles import ALLOW_PICKLE_HINT, PickleRefused, is_pickle, load_pickle_state_dict
from studio.models.resolve import ModelRef
from studio.models.safetensors_header import read_header
from studio.models.architectures import folder_has_t5, optional_components
from studio.models.cascade import load_stage, stage_of
from studio.models.safety import component_overrides
from studio.models.sd3_file import SD3_CONFIGS, sd3_components
from studio.models.tokenizers import TokenizerMissing, find_clip_tokenizer, missing_message
from studio.recipe import Recipe

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"

# Architecture (as inspect names it) -> shipped config folder.
SINGLE_FILE_CONFIGS = {"SD1.x": "sd1", "SD1.x inpainting": "sd1-inpainting", "SD2.x": "sd2", "SDXL base": "sdxl"}


class LoadError(RuntimeError):
    """A model that cannot be loaded as asked; the message is one line for the user."""


def load_pipeline(
    ref: ModelRef,
    device: str,
    dtype: str,
    *,
    vae: ModelRef | Path | str | None = None,
    allow_pickle: bool = False,
    attention_slicing: bool = False,
    vae_tiling: bool = False,
    cpu_offload: bool = False,
    sequential_offload: bool = False,
    safety_checker: bool = False,
    text_encoders: Iterable[Path] = (),
    t5: bool = True,
    config_dir: Path | None = None,
    tokenizer_dir: Path | None = None,
    tokenizer_dirs: Iterable[Path] = (),
    model_dirs: Iterable[Path] = (),
    hf_cache: Path | None = None,
) -> Any:
    """A ready diffusers pipeline on `device`; never touches the network.

    `config_dir` overrides the shipped config for a single file (the tests'
    tiny models use it). A single file's CLIP tokenizer is looked for in
    `tokenizer_dir` and `tokenizer_dirs` (where vocab.json/merges.txt are),
    studio's data folder, the HF cache (default: huggingface_hub's) and
    ComfyUI installs near the checkpoint or `model_dirs`. A Flux transformer file is
    paired with `text_encoders` (or those in its ComfyUI tree) and `vae` (studio/models/comfy_layout.py).
    """
    import torch

    torch_dtype = getattr(torch, dtype)
    path = Path(ref.path)
    if path.is_dir():
        pipe = _load_diffusers_folder(path, torch_dtype, allow_pickle, safety_checker, t5)
    else:
        search = TokenizerSearch(
            (*([tokenizer_dir] if tokenizer_dir else []), *tokenizer_dirs),
            (path.parent, *model_dirs),
            hf_cache or hf_hub_cache(),
        )
        try:
            arch = transformer_architecture(path)  # "" unless a Flux transformer file (.safetensors or .gguf)
        except LOAD_ERRORS as exc:
            raise LoadError(str(exc)) from None
        if not arch and path.suffix.lower() == ".gguf":
            raise LoadError(f"{path.name}: studio loads GGUF files of Flux transformers only")
        if arch:
            pipe = _load_transformer_file(path, arch, torch_dtype, config_dir, text_encoders, vae, search)
            vae = None  # the pipeline was built with it
        else:
            pipe = load_single_file(
                path, torch_dtype, allow_pickle=allow_pickle, config_dir=config_dir, tokenizers=search,
                t5=t5, text_encoders=text_encoders, vae=vae,
            )
            if type(pipe).__name__.startswith("StableDiffusion3"):  # the header is not read again for this
                vae = None  # SD3: loaded with the pipeline (studio/models/sd3_file.py)
    if vae:
        pipe.vae = load_vae(vae, pipe, torch_dtype, allow_pickle=allow_pickle)
    apply_memory_options(
        pipe, device, attention_slicing=attention_slicing, vae_tiling=vae_tiling, cpu_offload=cpu_offload,
        sequential_offload=sequential_offload,
    )
    return pipe


def load_pipeline_for_recipe(
    ref: ModelRef, device: str, dtype: str, recipe: Recipe, library: ModelLibrary, **extra: Any
) -> Any:
    """`load_pipeline` with the recipe's VAE, pickle and memory choices, and the library's folders."""
    vae = library.resolve(recipe.vae, kind=VAE) if recipe.vae else None
    encoders = [library.locate(name, TEXT_ENCODER) or Path(name) for name in recipe.text_encoders]
    return load_pipeline(
        ref, device, dtype,
        vae=vae,
        allow_pickle=recipe.allow_pickle,
        attention_slicing=recipe.attention_slicing,
        vae_tiling=recipe.vae_tiling,
        cpu_offload=recipe.cpu_offload,
        sequential_offload=recipe.sequential_offload,
        safety_checker=recipe.safety_checker,
        text_encoders=encoders,
        t5=recipe.t5,
        tokenizer_dirs=library.tokenizer_dirs,
        model_dirs=library.dirs,
        hf_cache=library.hf_cache,
        **extra,
    )


@dataclass(frozen=True)
class TokenizerSearch:
    """Where a single file's CLIP tokenizer files may be: see `tokenizers.find_clip_bpe`."""

    named: tuple[Path, ...] = ()  # folders the user named: any vocabulary there is taken
    model_dirs: tuple[Path, ...] = ()  # model folders, for a ComfyUI install around them
    hf_cache: Path | None = None


def _load_transformer_file(
    path: Path, arch: str, torch_dtype: Any, config_dir: Path | None, text_encoders: Iterable[Path],
    vae: ModelRef | Path | str | None, search: TokenizerSearch,
) -> Any:
    vae_path = Path(vae.path if isinstance(vae, ModelRef) else vae) if vae else None
    try:
        return load_transformer_file(
            path, torch_dtype, arch, config_dir=config_dir, text_encoders=text_encoders, vae=vae_path,
            tokenizer_dirs=search.named, model_dirs=search.model_dirs, hf_cache=search.hf_cache,
        )
    except LOAD_ERRORS as exc:
        raise LoadError(str(exc)) from None


def _load_diffusers_folder(
    path: Path, torch_dtype: Any, allow_pickle: bool, safety_checker: bool = False, t5: bool = True
) -> Any:
    """A folder's pipeline; its safety checker only if asked for (never loaded otherwise); SD3's T5 if `t5`."""
    from diffusers import DiffusionPipeline

    if stage_of(path):  # diffusers 0.42 cannot from_pretrained these folders: studio/models/cascade.py
        return load_stage(path, torch_dtype)
    if t5 and folder_has_t5(path) is False:
        raise LoadError(
            f"{path.name} has no T5 encoder (text_encoder_3): run it with --no-t5 (t5 = false in a recipe)"
            " to go without, as a recorded choice"
        )

    has_safetensors = any(path.rglob("*.safetensors"))
    if not has_safetensors and any(path.rglob("*.bin")) and not allow_pickle:
        raise PickleRefused(
            f"{path.name} stores its weights as pickled .bin files: loading them can run code inside,"
            f" so studio refuses pickles. Use a .safetensors version; if you trust it, {ALLOW_PICKLE_HINT}"
        )
    return DiffusionPipeline.from_pretrained(
        path,
        torch_dtype=torch_dtype,
        local_files_only=True,
        # With --allow-pickle diffusers may read .bin files; it does so with weights_only=True.
        use_safetensors=True if has_safetensors or not allow_pickle else None,
        **component_overrides(path, safety_checker),
        **optional_components(path, t5),  # SD3 without T5
    )


def single_file_architecture(path: Path, allow_pickle: bool = False) -> str:
    """The architecture of a single-file checkpoint, or LoadError if it is not one."""
    if is_pickle(path):
        # The gate: torch's restricted unpickler refuses any payload that is not weights.
        state = load_pickle_state_dict(path, allow_pickle=allow_pickle)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        del state
    else:
        shapes = {k: t.shape for k, t in read_header(path).tensors.items()}
    kind, arch, _ = classify(shapes)
    if kind != CHECKPOINT:
        raise LoadError(f"{path.name} is a {kind} ({arch}), not a model to generate with")
    return arch


def load_single_file(
    path: Path,
    torch_dtype: Any,
    *,
    allow_pickle: bool = False,
    config_dir: Path | None = None,
    tokenizers: TokenizerSearch = TokenizerSearch(),
    t5: bool = True,
    text_encoders: Iterable[Path] = (),
    vae: ModelRef | Path | str | None = None,
) -> Any:
    """A single-file checkpoint's pipeline; an SD3 file gets what it lacks from files beside it."""
    import diffusers

    arch = single_file_architecture(path, allow_pickle)
    if config_dir is None and arch in SD3_CONFIGS:
        config_dir = SD3_CONFIGS[arch]
    if config_dir is None:
        if arch not in SINGLE_FILE_CONFIGS:
            supported = ", ".join([*SINGLE_FILE_CONFIGS, *SD3_CONFIGS])
            raise LoadError(
                f"{path.name} is {arch}; studio loads single files of {supported} only."
                " Use a diffusers folder of this model (e.g. from the Hugging Face cache)"
            )
        config_dir = CONFIGS_DIR / SINGLE_FILE_CONFIGS[arch]
    try:
        index = read_json_file(config_dir / "model_index.json", max_chars=1 << 20)
    except (OSError, ValueError) as exc:
        raise LoadError(f"{config_dir}: cannot read model_index.json ({first_line(exc)})") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise LoadError(f"{config_dir}: model_index.json names no pipeline class")
    pipeline_class = getattr(diffusers, index["_class_name"])
    components = _tokenizers(config_dir, index, arch, tokenizers)
    if arch in SD3_CONFIGS:
        vae_path = Path(vae.path if isinstance(vae, ModelRef) else vae) if vae else None
        try:
            components.update(sd3_components(
                path, config_dir, torch_dtype, t5=t5, text_encoders=text_encoders, vae=vae_path,
                tokenizer_dirs=tokenizers.named, model_dirs=tokenizers.model_dirs, hf_cache=tokenizers.hf_cache,
            ))
        except LOAD_ERRORS as exc:
            raise LoadError(str(exc)) from None
    try:
        pipe = pipeline_class.from_single_file(
            str(path), config=str(config_dir), local_files_only=True, torch_dtype=torch_dtype, **components
        )
    except Exception as exc:  # diffusers' messages are long; keep the first line
        first = first_line(exc)
        if "missing in the checkpoint" in first:
            raise LoadError(f"{path.name}: {first} (a checkpoint without a VAE needs --vae)") from exc
        raise LoadError(f"{path.name}: cannot load as {arch}: {first}") from exc
    if arch == "SD2.x":
        prediction = sd2_prediction_type(path)
        if pipe.scheduler.config.get("prediction_type") != prediction:
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction)
    return pipe


def sd2_prediction_type(path: Path) -> str:
    """SD2 768-v models predict v, 512-base ones noise; the weights cannot tell.

    The original configs say it (`parameterization: "v"`), and SD2 files are
    usually shared with that .yaml beside them; without one, studio assumes v (2.0/2.1 768).
    """
    for sidecar in (path.with_suffix(".yaml"), path.with_suffix(".yml")):
        try:
            text = sidecar.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        return "v_prediction" if re.search(r"parameterization:\s*[\"']?v[\"']?\s*$", text, re.M) else "epsilon"
    return "v_prediction"


def _tokenizers(config_dir: Path, index: dict, arch: str, search: TokenizerSearch) -> dict[str, Any]:
    components: dict[str, Any] = {}
    for name in ("tokenizer", "tokenizer_2"):
        entry = index.get(name)
        if not entry or entry[0] is None:
            continue
        folder = config_dir / name
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            continue  # a complete tokenizer folder: diffusers loads it itself
        try:
            components[name] = find_clip_tokenizer(folder, search.named, search.model_dirs, search.hf_cache)
        except TokenizerMissing:
            raise TokenizerMissing(missing_message(arch)) from None
    return components


def load_vae(vae: ModelRef | Path | str, pipe: Any, torch_dtype: Any, *, allow_pickle: bool = False) -> Any:
    """A VAE override, configured like the pipeline's own VAE (same scaling factor)."""
    from diffusers import AutoencoderKL

    path = Path(vae.path if isinstance(vae, ModelRef) else vae)
    if path.is_dir():
        return AutoencoderKL.from_pretrained(path, torch_dtype=torch_dtype, local_files_only=True, use_safetensors=True)
    if is_pickle(path):
        load_pickle_state_dict(path, allow_pickle=allow_pickle)  # the gate, as for checkpoints
    with tempfile.TemporaryDirectory(prefix="studio-vae-") as folder:
        config = {k: v for k, v in dict(pipe.vae.config).items() if not k.startswith("_")}
        config["_class_name"] = "AutoencoderKL"
        (Path(folder) / "config.json").write_text(json.dumps(config))
        return AutoencoderKL.from_single_file(str(path), config=folder, local_files_only=True, torch_dtype=torch_dtype)


def apply_memory_options(
    pipe: Any, device: str, *, attention_slicing: bool = False, vae_tiling: bool = False, cpu_offload: bool = False,
    sequential_offload: bool = False,
) -> None:
    """Trade speed for memory; CPU offload replaces moving the whole pipeline to `device`.

    The same for every architecture: diffusers' offloads work on any pipeline, and
    every VAE studio loads (SD1/SD2, SDXL, SD3, Flux) tiles."""
    if attention_slicing:
        pipe.enable_attention_slicing()
    if vae_tiling:
        pipe.vae.enable_tiling()  # the pipeline-level enable_vae_tiling is gone in current diffusers
    if sequential_offload and not device.startswith("cpu"):  # the stronger of the two wins
        pipe.enable_sequential_cpu_offload(device=device)
    elif cpu_offload and not device.startswith("cpu"):
        pipe.enable_model_cpu_offload(device=device)
    elif not device.startswith("cpu"):  # diffusers loads onto the CPU: moving there again only walks every module
        pipe.to(device)


def explain_oom(exc: BaseException) -> str:
    """One line for an out-of-memory error, with what to turn on."""
    return (
        "out of memory: try a smaller size or batch, or turn on attention slicing,"
        " VAE tiling (for large images) or model CPU offload (--attention-slicing,"
        " --vae-tiling, --cpu-offload, or [memory] in the config)"
    )


def is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


# --- LoRAs and textual-inversion embeddings ------------------------------------------------


def _adapter_name(index: int, name: str) -> str:
    return f"l{index}_" + re.sub(r"[^0-9A-Za-z_]", "_", name)[:40]


def apply_loras(pipe: Any, loras: Sequence[tuple[ModelRef, float]], *, allow_pickle: bool = False) -> list[str]:
    """Load each LoRA as its own adapter at its weight; returns the adapter names.

    Files are read with use_safetensors=True, so diffusers never falls back to
    pickle; a pickled LoRA goes through studio's weights-only gate instead.
    """
    unload_loras(pipe)
    names, weights = [], []
    for index, (ref, weight) in enumerate(loras):
        path = Path(ref.path)
        adapter = _adapter_name(index, ref.name)
        try:
            if is_pickle(path):
                state = load_pickle_state_dict(path, allow_pickle=allow_pickle)
                pipe.load_lora_weights(state, adapter_name=adapter)
            else:
                pipe.load_lora_weights(
                    str(path.parent), weight_name=path.name, adapter_name=adapter,
                    use_safetensors=True, local_files_only=True,
                )
        except PickleRefused:
            raise
        except Exception as exc:
            first = first_line(exc)
            raise LoadError(f"LoRA {ref.name}: cannot apply to this model: {first}") from exc
        names.append(adapter)
        weights.append(float(weight))
    if names:
        pipe.set_adapters(names, adapter_weights=weights)
    return names


def unload_loras(pipe: Any) -> None:
    if hasattr(pipe, "unload_lora_weights"):
        pipe.unload_lora_weights()


def load_embeddings(pipe: Any, embeddings: Iterable[ModelRef], *, allow_pickle: bool = False) -> list[str]:
    """Textual-inversion embeddings, each usable in the prompt by its name."""
    loaded = []
    for ref in embeddings:
        path = Path(ref.path)
        token = ref.name
        if token in getattr(pipe.tokenizer, "get_vocab", dict)():
            loaded.append(token)  # already loaded into this pipeline
            continue
        if is_pickle(path):
            state = load_pickle_state_dict(path, allow_pickle=allow_pickle)
        else:
            from safetensors.torch import load_file

            state = load_file(str(path))
        try:
            if "clip_l" in state and "clip_g" in state:  # SDXL embeddings carry one part per text encoder
                pipe.load_textual_inversion(
                    state["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
                )
                pipe.load_textual_inversion(
                    state["clip_g"], token=token, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
                )
            else:
                tensor = next(v for k, v in state.items() if k in ("emb_params",) or k.startswith("string_to_param"))
                pipe.load_textual_inversion({token: tensor}, token=token)
        except StopIteration:
            raise LoadError(f"embedding {ref.name}: no emb_params or string_to_param tensor in it") from None
        except Exception as exc:
            first = first_line(exc)
            raise LoadError(f"embedding {ref.name}: cannot load into this model: {first}") from exc
        loaded.append(token)
    return loaded

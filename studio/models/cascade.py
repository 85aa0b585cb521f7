"""Stable Cascade: its stages as the user has them, paired; its single files recognised.

Stable Cascade runs in three stages: the prior (stage C) turns the prompt into 16-channel
image embeddings at 1/42.67 of the image's side, the decoder (stage B) turns those into
Paella VQ latents, and stage A (the VQ model, shipped inside the decoder folder) into
pixels. diffusers ships two folders, `stable-cascade-prior` (StableCascadePriorPipeline) and
`stable-cascade` (StableCascadeDecoderPipeline), whose card names its prior
(`prior: [stabilityai/stable-cascade-prior]`); a saved StableCascadeCombinedPipeline holds
both in one folder. A recipe's `model` is the decoder (or the combined folder) and `prior`
the stage C folder, found in the model library when the user names none.

Loading builds each component from its subfolder (`load_stage`): diffusers 0.42 moved
PaellaVQModel under pipelines/deprecated, so `DiffusionPipeline.from_pretrained` refuses
every decoder folder, the hub's own included ("diffusers has no class PaellaVQModel").
Plain Python at import: torch and diffusers are imported where used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from studio.bounded import open_regular, read_json_file
from studio.models.license import CARD_BYTES, front_matter

PRIOR, DECODER, COMBINED = "prior", "decoder", "combined"
_STAGES = {
    "StableCascadePriorPipeline": PRIOR,
    "StableCascadeDecoderPipeline": DECODER,
    "StableCascadeCombinedPipeline": COMBINED,
}
ARCHITECTURES = {
    PRIOR: "Stable Cascade prior (stage C)",
    DECODER: "Stable Cascade decoder (stage B)",
    COMBINED: "Stable Cascade (stages C, B and A)",
}
# The model card's recommended settings: the decoder's own steps and guidance (`steps`,
# `cfg_scale`), the prior's in `prior_steps`, `prior_cfg_scale`.
DEFAULTS = {"steps": 10, "cfg_scale": 0.0, "prior_steps": 20, "prior_cfg_scale": 4.0, "width": 1024, "height": 1024}


class CascadeError(ValueError):
    """A Stable Cascade stage that cannot be paired or loaded; the message is one line."""


def _index(folder: Path) -> dict:
    try:
        data = read_json_file(Path(folder) / "model_index.json", max_chars=1 << 20)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stage_of(path: Path | str) -> str:
    """'prior', 'decoder', 'combined', or '' for anything that is not a Stable Cascade folder."""
    path = Path(path)
    if not path.is_dir():
        return ""
    return _STAGES.get(str(_index(path).get("_class_name", "")), "")


def cascade_defaults(path: Path | None) -> dict[str, Any]:
    return dict(DEFAULTS) if path is not None and stage_of(path) in (DECODER, COMBINED, PRIOR) else {}


def card_prior(decoder: Path) -> str:
    """The prior repository the decoder's model card names ('stabilityai/stable-cascade-prior'), or ''."""
    try:
        with open_regular(Path(decoder) / "README.md") as handle:
            head = handle.read(CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""
    return front_matter(head).get("prior", "")


def _repo_folder_names(repo: str) -> tuple[str, ...]:
    """The folder names a hub repo may have locally: its name, and the hub cache's models--owner--name."""
    owner, _, name = repo.strip().rpartition("/")
    names = (name,) if name else ()
    return (*names, f"models--{owner}--{name}") if owner and name else names


def _mentions(path: Path, names: tuple[str, ...]) -> bool:
    return any(part in names for part in Path(path).parts)


def pair(named: Path, want: str, candidates: Iterable[tuple[str, Path]]) -> tuple[str, Path]:
    """The (name, path) among `candidates` that is the `want` stage ('prior' or 'decoder') for `named`.

    In order: the repo the decoder's card names, a folder beside `named`, the only one found.
    """
    found = [(name, Path(path)) for name, path in candidates if stage_of(path) == want]
    unique: dict[Path, tuple[str, Path]] = {}
    for name, path in found:
        unique.setdefault(path.resolve(), (name, path))  # the first name: the library's, not a path
    found = list(unique.values())
    if want == PRIOR:
        names = _repo_folder_names(card_prior(named))
        carded = [item for item in found if names and _mentions(item[1], names)]
        if len(carded) >= 1:
            return carded[0]
    else:  # a decoder whose card names this prior's repo, or its folder name
        carded = [item for item in found if Path(named).name in _repo_folder_names(card_prior(item[1]))
                  or _mentions(named, _repo_folder_names(card_prior(item[1])))]
        if len(carded) == 1:
            return carded[0]
    beside = [item for item in found if item[1].resolve().parent == Path(named).resolve().parent]
    if len(beside) == 1:
        return beside[0]
    if len(found) == 1:
        return found[0]
    stage = "prior (stage C)" if want == PRIOR else "decoder (stage B)"
    option = "--prior NAME" if want == PRIOR else "the decoder as --model and this as --prior"
    if not found:
        repo = "stabilityai/stable-cascade-prior" if want == PRIOR else "stabilityai/stable-cascade"
        raise CascadeError(
            f"{Path(named).name} is Stable Cascade's {'decoder (stage B)' if want == PRIOR else 'prior (stage C)'};"
            f" no {stage} was found in the model folders"
            f" or the Hugging Face cache: put a diffusers folder of it (e.g. {repo}) beside it"
        )
    listed = ", ".join(name for name, _ in found[:6])
    raise CascadeError(f"several Stable Cascade {stage} folders were found ({listed}): name one with {option}")


# --- single files ------------------------------------------------------------------


def stage_file(shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, str, list[str]] | None:
    """(stage letter, architecture, notes) for Stable Cascade's stage files (original and diffusers layouts).

    Stage C maps CLIP text into its blocks (`clip_txt_mapper`, 2048 wide; 1536 for lite);
    stage B maps the EfficientNet features in (`effnet_mapper`; its second level is 640 wide,
    576 for lite); stage A is the Paella VQ model (`vquantizer`: `codebook` in the original files, `embedding` in diffusers').
    """
    keys = shapes.keys()
    note = ["one stage of Stable Cascade: studio runs it from the diffusers folders"]
    if "clip_txt_mapper.weight" in keys and "effnet_mapper.0.weight" not in keys:
        width = (shapes["clip_txt_mapper.weight"] or (0,))[0]
        lite = " lite" if width == 1536 else ""
        return "C", f"Stable Cascade stage C{lite} (prior)", [*note, f"{width}-wide"]
    if "effnet_mapper.0.weight" in keys:
        level = shapes.get("down_blocks.1.0.channelwise.0.weight") or (0,)
        lite = " lite" if level[-1] == 576 else ""
        return "B", f"Stable Cascade stage B{lite} (decoder)", note
    if "vquantizer.codebook.weight" in keys or "vquantizer.embedding.weight" in keys:
        return "A", "Stable Cascade stage A (Paella VQ)", note
    return None


# --- loading ---------------------------------------------------------------------

# Components studio never runs: the prior's image encoder conditions on a reference image.
_SKIPPED = {"image_encoder", "feature_extractor", "prior_image_encoder", "prior_feature_extractor"}


def _component_class(library: str, name: str) -> Any:
    import diffusers
    import transformers

    if name == "PaellaVQModel":
        from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import (
            PaellaVQModel,
        )

        return PaellaVQModel
    module = {"diffusers": diffusers, "transformers": transformers}.get(library)
    cls = getattr(module, name, None) if module else None
    if cls is None:
        raise CascadeError(f"Stable Cascade component class {library}.{name} is not one studio loads")
    return cls


def load_components(folder: Path, torch_dtype: Any) -> dict[str, Any]:
    """Every component a Stable Cascade folder names, from its subfolder, safetensors only, offline."""
    from studio.errors import first_line

    index = _index(folder)
    components: dict[str, Any] = {}
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) != 2 or entry[0] is None:
            continue
        if name in _SKIPPED:
            components[name] = None
            continue
        cls = _component_class(*entry)
        sub = Path(folder) / name
        kwargs: dict[str, Any] = {"local_files_only": True}
        if not name.endswith(("tokenizer", "scheduler")):
            kwargs.update(torch_dtype=torch_dtype, use_safetensors=True)
        try:
            components[name] = cls.from_pretrained(sub, **kwargs)
        except Exception as exc:
            raise CascadeError(f"{Path(folder).name}/{name}: cannot load ({first_line(exc)})") from exc
    return components


def load_stage(folder: Path, torch_dtype: Any) -> Any:
    """The folder's StableCascadePriorPipeline, StableCascadeDecoderPipeline or both (combined: a tuple)."""
    from diffusers import StableCascadeDecoderPipeline, StableCascadePriorPipeline

    stage = stage_of(folder)
    index = _index(folder)
    parts = load_components(folder, torch_dtype)
    if stage == PRIOR:
        return StableCascadePriorPipeline(
            tokenizer=parts["tokenizer"], text_encoder=parts["text_encoder"], prior=parts["prior"],
            scheduler=parts["scheduler"], resolution_multiple=float(index.get("resolution_multiple", 42.67)),
        )
    decoder = StableCascadeDecoderPipeline(
        decoder=parts["decoder"], tokenizer=parts["tokenizer"], text_encoder=parts["text_encoder"],
        scheduler=parts["scheduler"], vqgan=parts["vqgan"],
        latent_dim_scale=float(index.get("latent_dim_scale", 10.67)),
    )
    if stage == COMBINED:
        decoder.studio_prior = StableCascadePriorPipeline(  # the worker's cache holds one object
            tokenizer=parts["prior_tokenizer"], text_encoder=parts["prior_text_encoder"], prior=parts["prior_prior"],
            scheduler=parts["prior_scheduler"],
        )
    return decoder

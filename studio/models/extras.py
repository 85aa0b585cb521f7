"""What a recipe adds to its model: LoRAs, textual-inversion embeddings, a VAE.

`prepare_extras` resolves them all to files, fills in the hashes A1111 writes
(`Lora hashes`, `TI hashes`, `VAE hash`), and hands back the prompt with the
`<lora:...>` tags taken out for the pipeline. The recipe keeps the prompt as
typed, so the image's metadata reads as it would in A1111.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio.formats.lora_tags import extract_loras, merge_loras
from studio.models.architectures import model_architecture
from studio.models.comfy_layout import with_companions
from studio.models.inspect import EMBEDDING, LORA, VAE
from studio.models.library import ModelLibrary
from studio.models.resolve import ModelRef
from studio.recipe import LoraRef, Recipe


@dataclass(frozen=True)
class Extras:
    recipe: Recipe  # with every LoRA listed and hashed, the VAE hash and the embeddings used
    prompt: str  # the prompt for the pipeline: no <lora:...> tags
    negative_prompt: str
    loras: list[tuple[ModelRef, float]] = field(default_factory=list)
    embeddings: list[ModelRef] = field(default_factory=list)
    vae: ModelRef | None = None

    @property
    def embedding_hashes(self) -> dict[str, str]:
        """name -> hash, for A1111's `TI hashes`."""
        return {ref.name: ref.hash for ref in self.embeddings}


def prepare_extras(recipe: Recipe, library: ModelLibrary) -> Extras:
    """Resolve a recipe's LoRAs (list and prompt tags), embeddings and VAE; ModelNotFound if one is missing.

    A transformer file (Flux in ComfyUI's layout) is first paired with its text encoders and VAE.
    """
    recipe = with_companions(recipe, library)
    prompt, prompt_loras = extract_loras(recipe.prompt)
    negative, negative_loras = extract_loras(recipe.negative_prompt)
    loras: list[tuple[ModelRef, float]] = []
    recorded: list[LoraRef] = []
    for lora in merge_loras(prompt_loras + negative_loras, recipe.loras):
        ref = library.resolve(lora.name, kind=LORA)
        loras.append((ref, lora.weight))
        recorded.append(LoraRef(lora.name, lora.weight, ref.hash))

    names = list(recipe.embeddings)
    for name in embeddings_named_in(f"{prompt}\n{negative}", library):
        if name not in names:
            names.append(name)
    embeddings = [library.resolve(name, kind=EMBEDDING) for name in names]

    vae = library.resolve(recipe.vae, kind=VAE) if recipe.vae else None
    path = library.locate(recipe.model)
    updated = recipe.replace(
        model_architecture=model_architecture(path) if path else "",
        loras=tuple(recorded),
        embeddings=tuple(names),
        embedding_hashes=tuple(ref.hash for ref in embeddings),
        vae_hash=vae.hash if vae else recipe.vae_hash,
    )
    return Extras(updated, prompt, negative, loras, embeddings, vae)


def embeddings_named_in(text: str, library: ModelLibrary) -> list[str]:
    """Names of known embeddings that appear as words in `text`, as A1111 picks them up."""
    found = []
    for entry in library.scan(hf_cache=False):
        if entry.kind == EMBEDDING and re.search(rf"(?<![\w-]){re.escape(entry.name)}(?![\w-])", text):
            found.append(entry.name)
    return found

"""Prompt embeddings the A1111 way, for SD1, SD2 and SDXL pipelines.

Each step's text (see `studio.prompts.schedule`) is cut into chunks of the
encoder's window (`studio.prompts.chunks`), each chunk encoded on its own as
BOS + tokens + EOS + padding, and the chunks concatenated. Weights are applied
A1111's "original" way: multiply each token's vector by its weight, then
scale the chunk back to its mean before weighting. SDXL concatenates both
encoders' penultimate layers and takes the pooled embedding from the first
chunk. The negative prompt is padded with empty chunks to the positive's
length (and every step's texts to the longest).

A plain prompt (no weights, one chunk) goes through exactly the calls
diffusers' own `encode_prompt` makes, so its embeddings are bit-identical and
an image is the same as bare diffusers makes. Embeddings are cached on the
loaded pipeline per distinct text, so a batch or a sweep encodes each text once.

Runs on the engine's worker thread; torch is imported by the caller's module.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from studio.engine.pipelines import LoadedPipeline
from studio.prompts.attention import parse_attention
from studio.prompts.chunks import Chunk, chunk_tokens
from studio.prompts.schedule import prompt_schedule
from studio.recipe import Recipe

CACHE_SIZE = 64  # distinct texts kept per loaded pipeline

Notice = Callable[[str], None]


@dataclass(frozen=True)
class Encoded:
    embeds: Any  # (1, chunks * window, width)
    pooled: Any = None  # (1, projection) for SDXL, else None

    @property
    def length(self) -> int:
        """Tokens: chunks times the window."""
        return self.embeds.shape[1]


class PromptEncoder:
    """The text encoders of one pipeline, read as A1111 reads a prompt."""

    def __init__(self, loaded: LoadedPipeline, clip_skip: int) -> None:
        pipe = loaded.pipe
        self.pipe = pipe
        self.xl = hasattr(pipe, "text_encoder_2")
        pairs = [(getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None))]
        if self.xl:
            pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
        self.encoders = [(tok, enc) for tok, enc in pairs if tok is not None and enc is not None]
        # A1111 counts the last layer as clip skip 1; diffusers counts layers skipped.
        self.skip = clip_skip - 1 if clip_skip > 1 else None
        state = (clip_skip, repr(loaded.extras.get("loras")), tuple(len(tok) for tok, _ in self.encoders))
        cache = loaded.extras.setdefault("prompt_cache", {})
        self.cache: OrderedDict[str, Encoded] = cache.setdefault(state, OrderedDict())
        self.encodings = 0  # texts actually sent to the encoders (the rest came from the cache)

    @staticmethod
    def supports(pipe: Any) -> bool:
        encoder = getattr(pipe, "text_encoder_2", None) or getattr(pipe, "text_encoder", None)
        return encoder is not None and type(encoder).__name__.startswith("CLIPText") and hasattr(pipe, "unet")

    def encode(self, text: str) -> Encoded:
        if text in self.cache:
            self.cache.move_to_end(text)
            return self.cache[text]
        self.encodings += 1
        fragments = parse_attention(text).fragments
        parts, pooled = [], None
        per_encoder = [self._chunks(tok, fragments) for tok, _ in self.encoders]
        count = max(len(chunks) for chunks in per_encoder)
        for (tokenizer, encoder), chunks in zip(self.encoders, per_encoder):
            chunks += [Chunk()] * (count - len(chunks))
            hidden, first_pooled = self._run(tokenizer, encoder, chunks)
            parts.append(hidden)
            if first_pooled is not None and pooled is None and encoder is self.encoders[-1][1]:
                pooled = first_pooled
        embeds = torch.concat(parts, dim=-1) if len(parts) > 1 else parts[0]
        dtype = self.encoders[-1][1].dtype
        embeds = embeds.to(dtype=dtype)  # on the encoder's device; the pipeline's own lookup is slow
        result = Encoded(embeds, pooled)
        self.cache[text] = result
        if len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return result

    def _chunks(self, tokenizer: Any, fragments: list) -> list[Chunk]:
        convert = getattr(self.pipe, "maybe_convert_prompt", None)

        def tokenize(text: str) -> list[int]:
            if convert is not None:
                text = convert(text, tokenizer)  # textual inversion: a multi-vector name becomes its tokens
            return tokenizer(text, add_special_tokens=False, truncation=False).input_ids

        comma = tokenizer.convert_tokens_to_ids(",</w>")
        return chunk_tokens(fragments, tokenize, tokenizer.model_max_length - 2, comma)

    def _run(self, tokenizer: Any, encoder: Any, chunks: list[Chunk]) -> tuple[Any, Any]:
        size = tokenizer.model_max_length - 2
        ids, weights = [], []
        for chunk in chunks:
            pad = size - len(chunk.ids)
            ids.append([tokenizer.bos_token_id, *chunk.ids, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * pad)
            weights.append([1.0, *chunk.weights, 1.0] + [1.0] * pad)
        device = _execution_device(encoder, self.pipe)
        tokens = torch.tensor(ids, dtype=torch.long, device=device)
        if self.xl:
            out = encoder(tokens, output_hidden_states=True)
            hidden = out.hidden_states[-(self.skip + 2) if self.skip is not None else -2]
            pooled = out[0][:1] if out[0].ndim == 2 else None
        elif self.skip is None:
            out = encoder(tokens, attention_mask=None)
            hidden, pooled = out[0], None
        else:
            out = encoder(tokens, attention_mask=None, output_hidden_states=True)
            # transformers 5 flattened CLIPTextModel (no `.text_model`), which diffusers 0.42's own
            # clip_skip path still expects; the final norm sits on either.
            final_norm = getattr(encoder, "text_model", encoder).final_layer_norm
            hidden = final_norm(out.hidden_states[-(self.skip + 1)])
            pooled = None
        if any(w != 1.0 for row in weights for w in row):
            hidden = _weighted(hidden, torch.tensor(weights, dtype=hidden.dtype, device=hidden.device))
        return hidden.reshape(1, -1, hidden.shape[-1]), pooled


def _weighted(hidden: Any, weights: Any) -> Any:
    """A1111's "original" emphasis: scale each token, then restore each chunk's mean."""
    means = hidden.mean(dim=(1, 2), keepdim=True)
    scaled = hidden * weights.unsqueeze(-1)
    return scaled * (means / scaled.mean(dim=(1, 2), keepdim=True))


def _execution_device(encoder: Any, pipe: Any) -> Any:
    try:
        from diffusers.utils.torch_utils import get_module_execution_device

        return get_module_execution_device(encoder)
    except ImportError:  # an older diffusers
        return pipe._execution_device


class Conditioning:
    """Every step's embeddings for one job, and the step callback's switch between them."""

    def __init__(self, encoder: PromptEncoder, prompt: str, negative: str, steps: int) -> None:
        pipe = encoder.pipe
        self.xl = encoder.xl
        positives = prompt_schedule(prompt, steps)
        negatives = prompt_schedule(negative, steps)
        self.warnings = _unique(positives.warnings + negatives.warnings + _attention_warnings(positives, negatives))
        # diffusers' SDXL uses zeros, not the encoded "", for an empty negative prompt
        zero_negative = self.xl and not negative and getattr(pipe.config, "force_zeros_for_empty_prompt", False)
        pairs = [(positives.text_at(i), negatives.text_at(i)) for i in range(steps)]
        distinct = list(dict.fromkeys(pairs))
        self.step_pair = [distinct.index(pair) for pair in pairs]
        texts = {pos for pos, _ in distinct} | (set() if zero_negative else {neg for _, neg in distinct})
        encoded = {text: encoder.encode(text) for text in sorted(texts)}
        longest = max(e.length for e in encoded.values())
        empty = encoder.encode("") if any(e.length < longest for e in encoded.values()) else None
        padded = {text: _pad(e, longest, empty) for text, e in encoded.items()}
        self.pairs: list[tuple[Encoded, Encoded]] = []
        for pos_text, neg_text in distinct:
            pos = padded[pos_text]
            neg = _zeros_like(pos) if zero_negative else padded[neg_text]
            self.pairs.append((pos, neg))
        self.changes = len(distinct) > 1
        self.current = self.step_pair[0]
        self.encodings = encoder.encodings

    def pipe_inputs(self) -> dict[str, Any]:
        pos, neg = self.pairs[self.step_pair[0]]
        inputs = {"prompt_embeds": pos.embeds, "negative_prompt_embeds": neg.embeds}
        if self.xl:
            inputs.update(pooled_prompt_embeds=pos.pooled, negative_pooled_prompt_embeds=neg.pooled)
        return inputs

    @property
    def tensor_inputs(self) -> list[str]:
        """What the step callback must see to switch embeddings."""
        if not self.changes:
            return ["latents"]
        return ["latents", "prompt_embeds", "add_text_embeds"] if self.xl else ["latents", "prompt_embeds"]

    def switch(self, pipe: Any, index: int, kwargs: dict) -> None:
        """After callback `index`, put the next step's embeddings in `kwargs` if they change."""
        if not self.changes:
            return
        total = getattr(pipe, "_num_timesteps", None) or len(self.step_pair)
        step = min((index + 1) * len(self.step_pair) // max(total, 1), len(self.step_pair) - 1)
        wanted = self.step_pair[step]
        if wanted == self.current or "prompt_embeds" not in kwargs:
            return
        self.current = wanted
        pos, neg = self.pairs[wanted]
        batch = kwargs["prompt_embeds"].shape[0]
        guided = getattr(pipe, "do_classifier_free_guidance", False)
        copies = batch // 2 if guided else batch
        embeds = [neg.embeds, pos.embeds] if guided else [pos.embeds]
        kwargs["prompt_embeds"] = torch.cat([e.repeat(copies, 1, 1) for e in embeds])
        if self.xl and "add_text_embeds" in kwargs:
            pooled = [neg.pooled, pos.pooled] if guided else [pos.pooled]
            kwargs["add_text_embeds"] = torch.cat([p.repeat(copies, 1) for p in pooled]).to(kwargs["add_text_embeds"].dtype)


def _pad(encoded: Encoded, length: int, empty: Encoded | None) -> Encoded:
    """`encoded` followed by empty chunks up to `length` tokens."""
    if empty is None or encoded.length >= length:
        return encoded
    missing = (length - encoded.length) // empty.length
    return Encoded(torch.cat([encoded.embeds] + [empty.embeds] * missing, dim=1), encoded.pooled)


def _zeros_like(encoded: Encoded) -> Encoded:
    pooled = None if encoded.pooled is None else torch.zeros_like(encoded.pooled)
    return Encoded(torch.zeros_like(encoded.embeds), pooled)


def _attention_warnings(*schedules: Any) -> list[str]:
    found: list[str] = []
    for schedule in schedules:
        for text in dict.fromkeys(schedule.texts):
            found += parse_attention(text).warnings
    return found


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class PromptInputs:
    """What the pipeline call gets for its prompts, and the step callback's switch (None: none needed)."""

    kwargs: dict[str, Any]
    switch: Callable[[Any, int, dict], None] | None = None


def conditioning_for(loaded: LoadedPipeline, prompt: str, negative: str, recipe: Recipe, notice: Notice) -> PromptInputs:
    """The pipeline's prompt inputs for `recipe`.

    Pipelines without a CLIP text encoder (Flux, SD3…) get the text as typed;
    where that loses weights, editing or clip skip, `notice` says so.
    """
    if not PromptEncoder.supports(loaded.pipe):
        plain = prompt_schedule(prompt, recipe.steps).is_static and parse_attention(prompt).is_plain
        if not plain:
            notice("this model's pipeline reads the prompt as plain text: weights, BREAK and editing are not applied")
        if recipe.clip_skip > 1:
            notice(f"clip skip {recipe.clip_skip} is not applied to this model")
        return PromptInputs({"prompt": prompt, "negative_prompt": negative or None})
    conditioning = Conditioning(PromptEncoder(loaded, recipe.clip_skip), prompt, negative, recipe.steps)
    for warning in conditioning.warnings:
        notice(warning)
    kwargs = {**conditioning.pipe_inputs(), "callback_on_step_end_tensor_inputs": conditioning.tensor_inputs}
    return PromptInputs(kwargs, conditioning.switch if conditioning.changes else None)

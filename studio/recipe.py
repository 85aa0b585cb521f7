"""The Recipe: every parameter needed to make one image (or one batch) again.

A Recipe is a frozen, validated value. It travels with the image (PNG metadata),
with the session record (TOML) and through the engine, so all of them agree on
what was made and how. Plain Python only: importing it must not pull in torch.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

from studio import __version__
from studio.builtin import DEFAULT_MODEL
from studio.errors import RecipeError  # noqa: F401  (defined there, so a face can catch it without this module)
from studio.samplers import DEFAULT_SAMPLER, SAMPLERS

MAX_SEED = 2**63 - 1  # TOML integers are signed 64-bit
MAX_SIDE = 8192
MAX_CLIP_SKIP = 12  # CLIP ViT-L has 12 layers
# A1111 has no cap on a prompt; the longest real ones run to a few thousand characters
# (CLIP reads 75 tokens a chunk). 65,536 is far past any of them, and keeps a 50 MB
# "prompt" from a hostile file from ever reaching the encoder, a session or a screen.
MAX_PROMPT_CHARS = 65_536
MAX_HIRES_SCALE = 4
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
RESIZE_MODES = ("crop", "resize", "pad")  # an init image of another size: crop and resize, stretch, or pad
INPAINT_AREAS = ("whole", "masked")  # repaint at the whole picture's scale, or only the masked region, enlarged


@dataclass(frozen=True)
class LoraRef:
    """A LoRA applied at `weight`, as in A1111's `<lora:name:weight>`."""

    name: str
    weight: float = 1.0
    hash: str = ""


@dataclass(frozen=True)
class Recipe:
    prompt: str
    negative_prompt: str = ""
    model: str = DEFAULT_MODEL
    model_hash: str = ""
    sampler: str = DEFAULT_SAMPLER
    steps: int = 20
    cfg_scale: float = 7.0
    clip_skip: int = 1  # A1111's count: 1 is the encoder's last layer, 2 the one before
    width: int = 512
    height: int = 512
    seed: int = 0
    batch_size: int = 1
    device: str = "auto"
    dtype: str = "auto"
    loras: tuple[LoraRef, ...] = ()
    embeddings: tuple[str, ...] = ()
    embedding_hashes: tuple[str, ...] = ()  # parallel to `embeddings`, for A1111's "TI hashes"
    vae: str = ""
    vae_hash: str = ""
    # Text encoders kept as their own files (ComfyUI's models/text_encoders), by name; a Flux
    # transformer file is paired with them (studio/models/comfy_layout.py), and the pairing recorded.
    text_encoders: tuple[str, ...] = ()
    text_encoder_hashes: tuple[str, ...] = ()  # parallel to `text_encoders`: which weights they were
    t5: bool = True  # SD3: False runs without its T5 encoder to save memory, as diffusers allows
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    sequential_offload: bool = False  # diffusers' sequential CPU offload: least memory, slowest
    allow_pickle: bool = False
    safety_checker: bool = False  # opt-in only: load a folder's safety checker (studio/models/safety.py)
    model_license: str = ""  # the model's license id, as its card or header declares it
    model_architecture: str = ""  # recorded: "flux-dev", "flux-schnell", "sd3" or "" (studio/models/architectures.py)
    # Taking an image further (studio/iterate.py): img2img with `init_image`, inpainting with `mask`.
    init_image: str = ""  # a path; its content hash is checked before every run
    init_image_hash: str = ""
    strength: float = 0.75  # denoising strength, as in A1111
    resize_mode: str = "crop"
    mask: str = ""  # white repaints, as in A1111
    mask_hash: str = ""
    mask_blur: int = 4
    inpaint_area: str = "whole"
    inpaint_padding: int = 32
    variation_seed: int = 0
    variation_strength: float = 0.0
    # Hires fix (studio/engine/hires.py): a second, img2img pass over the first, upscaled.
    hires_scale: float = 0.0  # 0: off; else the final size over the first pass's
    hires_upscaler: str = "Latent"  # a latent mode (A1111's names), "Lanczos", or an upscaler model
    hires_steps: int = 0  # 0: as many as the first pass
    hires_denoise: float = 0.7
    hires_prompt: str = ""  # "": the first pass's
    hires_negative_prompt: str = ""
    # An upscale (studio/upscale/job.py): `init_image` made `upscale_scale` times bigger, no diffusion.
    upscaler: str = ""  # "": not an upscale
    upscaler_hash: str = ""  # of `upscaler`, or of `hires_upscaler` when that is a network
    upscale_scale: float = 2.0
    upscale_tile: int = 512  # input pixels a side, halved on out-of-memory
    # Stable Cascade (studio/engine/cascade.py): `model` is the decoder (stage B), run with
    # `steps` and `cfg_scale`, after the prior (stage C) with its own steps and guidance.
    prior: str = ""  # "": the model library pairs one with the decoder (recorded as found)
    prior_hash: str = ""
    prior_steps: int = 20
    prior_cfg_scale: float = 4.0
    # SDXL refiner (studio/engine/refiner.py): the base runs to `refiner_switch` of the steps,
    # the refiner the rest, on the base's latents (A1111's "Refiner switch at").
    refiner: str = ""  # "": no refiner
    refiner_hash: str = ""
    refiner_switch: float = 0.8
    studio_version: str = field(default=__version__)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def hires_size(self) -> tuple[int, int]:
        """The hires pass's width and height: the first pass's times `hires_scale`, down to a multiple of 8."""
        if not self.hires_scale:
            return self.width, self.height
        return int(self.width * self.hires_scale) // 8 * 8, int(self.height * self.hires_scale) // 8 * 8

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def for_image(self, index: int) -> Recipe:
        """The single-image recipe for image `index` of this batch (seed + index, variation seed + index)."""
        varied = self.variation_seed + index if self.variation_strength else self.variation_seed
        return self.replace(seed=self.seed + index, variation_seed=varied, batch_size=1)

    def series(self, count: int) -> list[Recipe]:
        """`count` jobs from this one: job i starts at seed + i * batch size, so no image repeats a seed."""
        if not 1 <= count <= 10_000:
            raise RecipeError(f"count must be between 1 and 10000 (got {count})")
        step = self.batch_size if self.variation_strength else 0
        return [
            self.replace(seed=self.seed + i * self.batch_size, variation_seed=self.variation_seed + i * step)
            for i in range(count)
        ]

    def to_dict(self) -> dict[str, Any]:
        """A TOML-ready dict: no None values, LoRAs as tables."""
        data = dataclasses.asdict(self)
        data["loras"] = [dataclasses.asdict(lora) for lora in self.loras]
        data["embeddings"] = list(self.embeddings)
        data["embedding_hashes"] = list(self.embedding_hashes)
        data["text_encoders"] = list(self.text_encoders)
        data["text_encoder_hashes"] = list(self.text_encoder_hashes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Build from a dict read from TOML or JSON; unknown keys are an error."""
        unknown = sorted(set(data) - _FIELD_NAMES)
        if unknown:
            raise RecipeError(f"unknown recipe field(s): {', '.join(unknown)}")
        if "prompt" not in data:
            raise RecipeError("recipe has no prompt")
        values = dict(data)
        try:
            values["loras"] = tuple(LoraRef(**lora) for lora in data.get("loras", ()))
        except TypeError as exc:
            raise RecipeError(f"bad lora entry: {exc}") from None
        values["embeddings"] = tuple(data.get("embeddings", ()))
        values["embedding_hashes"] = tuple(data.get("embedding_hashes", ()))
        values["text_encoders"] = tuple(data.get("text_encoders", ()))
        values["text_encoder_hashes"] = tuple(data.get("text_encoder_hashes", ()))
        return cls(**values)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Recipe))


def random_seed() -> int:
    # 32 bits keeps seeds typeable and valid in every other tool (A1111, ComfyUI).
    return random.SystemRandom().randrange(2**32)


def parse_size(text: str) -> tuple[int, int]:
    """'768x512' -> (768, 512); a bare '512' means square."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        if len(parts) == 1:
            side = int(parts[0])
            return side, side
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise RecipeError(f"size must look like WIDTHxHEIGHT, e.g. 512x768 (got {text!r})")


# A scalar field's annotation (a string under `from __future__ import annotations`)
# -> the types a value may have; the tuples (LoRAs, embeddings) are checked below.
_SCALARS: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "float": (int, float), "bool": bool}
_TYPES = {f.name: _SCALARS[f.type] for f in dataclasses.fields(Recipe) if f.type in _SCALARS}


def _validate(r: Recipe) -> None:
    for name, expected in _TYPES.items():
        value = getattr(r, name)
        # bool is an int subclass; a `true` where a number belongs is a mistake.
        wrong_bool = isinstance(value, bool) and expected is not bool
        if wrong_bool or not isinstance(value, expected):
            raise RecipeError(f"{name} has the wrong type: {value!r}")
    for name, text in (("prompt", r.prompt), ("negative prompt", r.negative_prompt)):
        if len(text) > MAX_PROMPT_CHARS:
            raise RecipeError(f"{name} is {len(text):,} characters, over the {MAX_PROMPT_CHARS:,}-character cap")
    if not r.model:
        raise RecipeError("model must not be empty")
    if r.sampler not in SAMPLERS:
        known = ", ".join(SAMPLERS)
        raise RecipeError(f"unknown sampler {r.sampler!r}; known samplers: {known}")
    if not 1 <= r.steps <= 1000:
        raise RecipeError(f"steps must be between 1 and 1000 (got {r.steps})")
    if not 0 <= r.cfg_scale <= 100 or r.cfg_scale != r.cfg_scale:
        raise RecipeError(f"CFG scale must be between 0 and 100 (got {r.cfg_scale})")
    for side, value in (("width", r.width), ("height", r.height)):
        if value < 8 or value > MAX_SIDE or value % 8:
            raise RecipeError(
                f"{side} must be a multiple of 8 between 8 and {MAX_SIDE} (got {value})"
            )
    if not 0 <= r.seed <= MAX_SEED - 1024:
        raise RecipeError(f"seed must be between 0 and {MAX_SEED - 1024} (got {r.seed})")
    if not 1 <= r.clip_skip <= MAX_CLIP_SKIP:
        raise RecipeError(f"clip skip must be between 1 and {MAX_CLIP_SKIP} (got {r.clip_skip})")
    if not 1 <= r.batch_size <= 64:
        raise RecipeError(f"batch size must be between 1 and 64 (got {r.batch_size})")
    if r.device.split(":")[0] not in DEVICES:
        raise RecipeError(f"unknown device {r.device!r}; use one of {', '.join(DEVICES)}")
    if r.dtype not in DTYPES:
        raise RecipeError(f"unknown dtype {r.dtype!r}; use one of {', '.join(DTYPES)}")
    for lora in r.loras:
        if not isinstance(lora, LoraRef) or not lora.name:
            raise RecipeError(f"bad LoRA entry: {lora!r}")
        if isinstance(lora.weight, bool) or not isinstance(lora.weight, (int, float)):
            raise RecipeError(f"LoRA {lora.name} weight must be a number")
    if not all(isinstance(name, str) and name for name in r.text_encoders):
        raise RecipeError(f"text encoders must be names: {r.text_encoders!r}")
    hashes = r.text_encoder_hashes
    if not all(isinstance(digest, str) for digest in hashes) or len(hashes) not in (0, len(r.text_encoders)):
        raise RecipeError(f"text encoder hashes must be one text per text encoder: {hashes!r}")
    _validate_iteration(r)
    _validate_hires(r)
    _validate_stages(r)


def _validate_stages(r: Recipe) -> None:
    """Two-model recipes: Stable Cascade's prior, the SDXL refiner."""
    if not 1 <= r.prior_steps <= 1000:
        raise RecipeError(f"prior steps must be between 1 and 1000 (got {r.prior_steps})")
    if not 0 <= r.prior_cfg_scale <= 100 or r.prior_cfg_scale != r.prior_cfg_scale:
        raise RecipeError(f"prior CFG scale must be between 0 and 100 (got {r.prior_cfg_scale})")
    if not 0 < r.refiner_switch < 1:
        raise RecipeError(f"refiner switch must be between 0 and 1, e.g. 0.8 (got {r.refiner_switch})")
    if r.refiner and (r.prior or r.upscaler):
        raise RecipeError("a refiner applies to SDXL text-to-image, not to Stable Cascade or an upscale")
    if r.refiner and r.refiner == r.model:
        raise RecipeError("the refiner must be another model than the base")


def _validate_upscale(r: Recipe) -> None:
    if not 1 <= r.upscale_scale <= 8:
        raise RecipeError(f"upscale scale must be between 1 and 8 (got {r.upscale_scale})")
    if not 32 <= r.upscale_tile <= MAX_SIDE:
        raise RecipeError(f"upscale tile must be between 32 and {MAX_SIDE} pixels (got {r.upscale_tile})")
    if r.upscaler and not r.init_image:
        raise RecipeError("an upscale needs a source image")
    if r.upscaler and (r.hires_scale or r.mask):
        raise RecipeError("an upscale has no hires fix or mask: it runs no diffusion")


def _validate_hires(r: Recipe) -> None:
    _validate_upscale(r)
    if not r.hires_scale:
        return
    if not 1 <= r.hires_scale <= MAX_HIRES_SCALE:
        raise RecipeError(f"hires scale must be 0 (off) or between 1 and {MAX_HIRES_SCALE} (got {r.hires_scale})")
    if r.init_image:
        raise RecipeError("hires fix works on text-to-image only, not with an init image")
    width, height = r.hires_size
    if max(width, height) > MAX_SIDE:
        raise RecipeError(f"hires size {width}x{height} is over {MAX_SIDE} pixels a side")
    if not 0 <= r.hires_steps <= 1000:
        raise RecipeError(f"hires steps must be between 0 (as the first pass) and 1000 (got {r.hires_steps})")
    if not 0 <= r.hires_denoise <= 1:
        raise RecipeError(f"hires denoising strength must be between 0 and 1 (got {r.hires_denoise})")
    if not r.hires_upscaler.strip():
        raise RecipeError("hires upscaler must not be empty (e.g. Latent, Lanczos, studio-2x)")


def _validate_iteration(r: Recipe) -> None:
    if not 0 <= r.strength <= 1:
        raise RecipeError(f"strength must be between 0 and 1 (got {r.strength})")
    if r.resize_mode not in RESIZE_MODES:
        raise RecipeError(f"unknown resize mode {r.resize_mode!r}; use one of {', '.join(RESIZE_MODES)}")
    if r.mask and not r.init_image:
        raise RecipeError("a mask needs an init image to paint over (--init)")
    if not 0 <= r.mask_blur <= 256:
        raise RecipeError(f"mask blur must be between 0 and 256 pixels (got {r.mask_blur})")
    if r.inpaint_area not in INPAINT_AREAS:
        raise RecipeError(f"unknown inpaint area {r.inpaint_area!r}; use one of {', '.join(INPAINT_AREAS)}")
    if not 0 <= r.inpaint_padding <= MAX_SIDE:
        raise RecipeError(f"inpaint padding must be between 0 and {MAX_SIDE} pixels (got {r.inpaint_padding})")
    if not 0 <= r.variation_seed <= MAX_SEED - 1024:
        raise RecipeError(f"variation seed must be between 0 and {MAX_SEED - 1024} (got {r.variation_seed})")
    if not 0 <= r.variation_strength <= 1:
        raise RecipeError(f"variation strength must be between 0 and 1 (got {r.variation_strength})")

"""Recover a Recipe from an image another tool (or studio) made.

Each reader turns one tool's metadata into Recipe fields plus notes on what it
could not carry over (hires fix, clip skip, an unknown sampler...). Order:
studio's own `studio-recipe` chunk (exact), InvokeAI, ComfyUI's prompt graph,
Fooocus and AUTOMATIC1111 `parameters`, then whatever sd-parsers recognises.
The model an image names is looked up only through the `locate` a caller passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.bounded import check_regular, open_regular
from studio.builtin import DEFAULT_MODEL
from studio.errors import first_line
from studio.formats.a1111 import PARAMETERS_KEY, read_a1111
from studio.formats.comfyui import read_comfyui
from studio.formats.fields import Reading, stem
from studio.formats.fooocus import is_fooocus, read_fooocus
from studio.formats.invokeai import INVOKEAI_KEY, LEGACY_KEY, read_invokeai, read_invokeai_legacy
from studio.formats.sdparsers import read_with_sd_parsers
from studio.formats.studio_recipe import RECIPE_KEY, read_studio_recipe
from studio.recipe import LoraRef, Recipe, RecipeError
from studio.samplers import DEFAULT_SAMPLER

# locate(name, hash) -> (model name, hash, note): the model an image names, found locally.
Locate = Callable[[str, str], tuple[str, str, str]]

# What a reader raises on metadata that is not what it claims; RecursionError is JSON nested too deep.
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError)

# Caps on what one image may hand us. Real A1111 text is a few KB and a big ComfyUI
# graph a few hundred KB (10,000 nodes, far past any real one, about 4 MB).
MAX_CHUNK_CHARS = 8 << 20  # one metadata text: room for a 10,000-node ComfyUI graph
MAX_NAME_CHARS = 1024  # a model, VAE, sampler or LoRA name
MAX_LORAS = 256
MAX_NOTES = 200
MAX_NOTE_CHARS = 500


class ImportFailed(Exception):
    """The image cannot be read or holds no recipe; the message is one line."""


@dataclass
class ImportResult:
    recipe: Recipe
    source: str  # the tool that made the image: studio, AUTOMATIC1111, ComfyUI...
    notes: list[str] = field(default_factory=list)  # what could not be mapped


# --- reading the image --------------------------------------------------------


def read_metadata(path: Path) -> dict[str, str]:
    """Every text the image carries that a generator may have written."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.is_dir():
            raise ImportFailed(f"{path}: is a folder, not an image")
        size = check_regular(path).st_size  # a FIFO or a device is refused before anything opens it
        if size == 0:
            raise ImportFailed(f"{path}: empty file")
        handle = open_regular(path)
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read ({exc.strerror or first_line(exc)})") from None
    try:
        image = Image.open(handle)
    except UnidentifiedImageError:
        handle.close()
        raise ImportFailed(f"{path}: not an image studio can read (PNG, JPEG or WebP)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        handle.close()
        raise ImportFailed(f"{path}: cannot open image ({first_line(exc)})") from None
    with handle, image:
        try:
            image.load()  # reads to the end: a truncated file fails here
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImportFailed(f"{path}: truncated or damaged image ({first_line(exc)})") from None
        texts: dict[str, str] = {}
        for key, value in {**image.info, **getattr(image, "text", {})}.items():
            if isinstance(value, str):
                texts[str(key)] = value
        comment = image.info.get("comment")
        if isinstance(comment, bytes):
            texts.setdefault("comment", comment.decode("utf-8", "replace"))
        texts.update(_exif_texts(image))
    return texts


def _exif_texts(image: Any) -> dict[str, str]:
    """A1111 and Fooocus write `parameters` to EXIF UserComment in JPEG and WebP;
    ComfyUI writes its graph to the Make/Model tags of WebP as 'Prompt:{...}'."""
    texts: dict[str, str] = {}
    try:
        exif = image.getexif()
        user_comment = exif.get_ifd(0x8769).get(0x9286)
    except Exception:  # malformed EXIF: nothing to read there
        return texts
    if isinstance(user_comment, bytes) and len(user_comment) > 8:
        texts[PARAMETERS_KEY] = _decode_user_comment(user_comment)
    elif isinstance(user_comment, str) and user_comment.strip():
        texts[PARAMETERS_KEY] = user_comment
    for tag in (0x010F, 0x0110):
        value = exif.get(tag)
        if isinstance(value, str) and ":" in value:
            key, _, text = value.partition(":")
            if key.lower() in ("prompt", "workflow"):
                texts[key.lower()] = text
    return texts


def _decode_user_comment(raw: bytes) -> str:
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        # piexif writes UTF-16 big-endian; some writers use little-endian.
        be, le = body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")
        return be if sum(c.isascii() for c in be) >= sum(c.isascii() for c in le) else le
    return body.decode("utf-8", "replace").rstrip("\x00")


# --- choosing a reader --------------------------------------------------------


def _read_studio(text: str) -> Reading:
    return read_studio_recipe(text), []


def _studio_fields(fields: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A studio chunk the Recipe refused, as reader fields: what no Recipe holds becomes a note."""
    if not isinstance(fields.get("prompt"), str):
        raise ValueError("studio recipe has no prompt")  # not a recipe at all: let another chunk try
    known = set(Recipe.__dataclass_fields__)
    for key in [k for k in fields if k not in known]:
        notes.append(f"{key}: not a recipe field; dropped")
        del fields[key]
    loras = []
    for entry in fields.get("loras") or []:
        try:
            loras.append({**LoraRef(**entry).__dict__})
        except TypeError:
            notes.append(f"loras: bad entry {entry!r}; dropped")
    fields["loras"] = loras
    for key in ("embeddings", "embedding_hashes", "text_encoders", "text_encoder_hashes"):
        if not isinstance(fields.get(key, []), list):
            notes.append(f"{key}: could not read {fields.pop(key)!r}")
    return fields


def _read_parameters(text: str) -> Reading:
    return read_fooocus(text) if is_fooocus(text) else read_a1111(text)


# (the text's key, the tool it names, its reader); a reader may name the tool better in `_source`.
_READERS: list[tuple[str, str, Callable[[str], Reading]]] = [
    (RECIPE_KEY, "studio", _read_studio),
    (INVOKEAI_KEY, "InvokeAI", read_invokeai),
    (LEGACY_KEY, "InvokeAI", read_invokeai_legacy),
    ("prompt", "ComfyUI", read_comfyui),
    (PARAMETERS_KEY, "", _read_parameters),
    ("comment", "", _read_parameters),
]


def import_recipe(path: Path, locate: Locate | None = None) -> ImportResult:
    """The recipe in the image at `path`; raises ImportFailed with a one-line reason.

    `locate(name, hash)` finds the model the image names and returns (name, hash, note),
    e.g. `model_locator(library.resolve)`; without it the name is kept as the image wrote it.
    """
    texts = read_metadata(path)
    failures = []
    for key, source, reader in _READERS:
        if key not in texts:
            continue
        if len(texts[key]) > MAX_CHUNK_CHARS:
            failures.append(f"{key}: {len(texts[key]):,} characters, over the {MAX_CHUNK_CHARS:,}-character cap")
            continue
        try:
            fields, notes = reader(texts[key])
            if key == RECIPE_KEY:
                try:  # exact when it is a whole recipe; else each field it cannot hold is a note
                    return ImportResult(Recipe.from_dict(dict(fields)), source, notes)
                except (RecipeError, TypeError):
                    fields = _studio_fields(fields, notes)
                    return ImportResult(_validated(fields, notes), source, _bounded(notes))
        except _UNREADABLE as exc:
            failures.append(f"{key}: {first_line(exc)}")
            continue
        source = fields.pop("_source", source)
        recipe = _finish(fields, notes, locate)
        return ImportResult(recipe, source, _bounded(notes))
    try:
        generic = read_with_sd_parsers(Path(path))
    except _UNREADABLE as exc:
        failures.append(f"sd-parsers: {first_line(exc)}")
        generic = None
    if generic is not None:
        (fields, notes), source = generic
        recipe = _finish(fields, notes, locate)
        return ImportResult(recipe, source, _bounded(notes))
    if failures:
        raise ImportFailed(f"{path}: metadata found but unreadable ({failures[0]})")
    raise ImportFailed(f"{path}: no generation metadata found (not made by a known tool)")


# --- finding the model --------------------------------------------------------


def model_locator(resolve: Callable[[str], Any]) -> Locate:
    """A `locate` for `import_recipe` built on `resolve(name)`.

    `resolve` returns an object with `.name` and `.hash`, and raises LookupError
    (or OSError, ValueError) when nothing matches. The image's model is tried as
    written, then by its stem, then by its hash; a hash that disagrees is a note.
    """

    def locate(name: str, model_hash: str = "") -> tuple[str, str, str]:
        for query in dict.fromkeys(q for q in (name, stem(name), model_hash) if q):
            try:
                ref = resolve(query)
            except (LookupError, OSError, ValueError):
                continue
            note = ""
            if model_hash and ref.hash and not ref.hash.startswith(model_hash[:10]):
                note = f"local model {ref.name} has hash {ref.hash}, the image says {model_hash}"
            elif query == model_hash and name:
                note = f"model {name!r} found by its hash as {ref.name}"
            return ref.name, ref.hash or model_hash, note
        return _as_written(name, model_hash, "not found locally")

    return locate


def _as_written(name: str, model_hash: str, why: str) -> tuple[str, str, str]:
    label = (f"{name!r}" + (f" (hash {model_hash})" if model_hash else "")) if name else f"hash {model_hash}"
    return stem(name) or model_hash, model_hash, f"model {label} {why}"


# --- from fields to a Recipe ---------------------------------------------------


def _finish(fields: dict[str, Any], notes: list[str], locate: Locate | None) -> Recipe:
    """Find the model, drop what the Recipe cannot hold, and validate."""
    name, model_hash = str(fields.pop("model", "") or ""), str(fields.pop("model_hash", "") or "")
    if len(name) > MAX_NAME_CHARS or len(model_hash) > MAX_NAME_CHARS:
        notes.append(f"model: its name or hash is over the {MAX_NAME_CHARS:,}-character cap; not looked up")
        name, model_hash = "", ""
    if not name and not model_hash:
        model, found_hash, note = DEFAULT_MODEL, "", f"no model named in the image; used {DEFAULT_MODEL}"
    elif locate is None:
        model, found_hash, note = _as_written(name, model_hash, "was not looked up")
    else:
        model, found_hash, note = locate(name, model_hash)
    fields["model"], fields["model_hash"] = model, found_hash
    if note:
        notes.append(note)
    for key in ("prior", "refiner"):  # a second model (formats/stages.py), looked up as the first
        value = str(fields.get(key) or "")
        if value and locate is not None and len(value) <= MAX_NAME_CHARS:
            fields[key], fields[f"{key}_hash"], note = locate(value, str(fields.get(f"{key}_hash") or ""))
            if note:
                notes.append(f"{key}: {note}")
    _cap_names(fields, notes)
    fields.setdefault("sampler", DEFAULT_SAMPLER)
    if not fields.get("prompt"):
        notes.append("the image has no prompt")
    for key in ("steps", "cfg_scale"):
        if key not in fields:
            notes.append(f"{key}: not in the image; used {getattr(Recipe(prompt=''), key)}")
    return _validated(fields, notes)


def _cap_names(fields: dict[str, Any], notes: list[str]) -> None:
    """Names too long for any real model, and LoRAs past `MAX_LORAS`, become notes."""
    for key, value in list(fields.items()):
        if key not in ("prompt", "negative_prompt") and isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            notes.append(f"{key}: {len(value):,} characters, over the {MAX_NAME_CHARS:,}-character cap; dropped")
            del fields[key]
    loras = [lora for lora in fields.get("loras", []) if len(str(lora.get("name", ""))) <= MAX_NAME_CHARS]
    if len(loras) > MAX_LORAS:
        notes.append(f"loras: {len(loras):,} of them; kept the first {MAX_LORAS}")
    fields["loras"] = loras[:MAX_LORAS]


def _validated(fields: dict[str, Any], notes: list[str]) -> Recipe:
    """A Recipe from reader fields; each value the Recipe refuses is dropped, with a note naming its field."""
    fields["loras"] = tuple(LoraRef(**lora) for lora in fields.get("loras", []))
    fields["embeddings"] = tuple(fields.get("embeddings", ()))
    for key in ("embedding_hashes", "text_encoders", "text_encoder_hashes"):
        fields[key] = tuple(fields.get(key, ()))
    try:
        return Recipe(**fields)
    except (RecipeError, TypeError):
        pass
    # Find the culprits one field at a time, so the note names the field, whatever the message says.
    for key in [k for k in fields if k != "prompt"]:
        try:
            Recipe(prompt="", **{key: fields[key]})
        except (RecipeError, TypeError) as exc:
            notes.append(f"{key}: {first_line(exc)}; used the default")
            del fields[key]
    try:
        return Recipe(**fields)
    except (RecipeError, TypeError) as exc:
        raise ImportFailed(f"recovered recipe is not usable: {first_line(exc)}") from None


def _bounded(notes: list[str]) -> list[str]:
    """The notes, each once, each at most a line's worth, at most `MAX_NOTES` of them."""
    unique = [n if len(n) <= MAX_NOTE_CHARS else n[: MAX_NOTE_CHARS - 3] + "..." for n in dict.fromkeys(notes)]
    if len(unique) > MAX_NOTES:
        unique = unique[:MAX_NOTES] + [f"... and {len(unique) - MAX_NOTES:,} more notes"]
    return unique

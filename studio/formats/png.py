"""PNG metadata in and out: A1111 `parameters`, the studio recipe, an AI disclosure.

Every image studio saves carries three things so it explains itself anywhere:
an AUTOMATIC1111-style `parameters` text (read by A1111, Civitai, sd-parsers),
the exact Recipe as TOML in a `studio-recipe` chunk (what `studio import` and
`studio rerun` trust first), and XMP marking it as made by a trained algorithm
(IPTC DigitalSourceType), as provenance guidance asks.
"""

from __future__ import annotations

import json
import re

from pathlib import Path
from typing import TYPE_CHECKING

from studio import __version__
from studio.atomic import atomic_writer
from studio.samplers import SAMPLERS

if TYPE_CHECKING:
    from PIL import Image

    from studio.recipe import Recipe

RECIPE_KEY = "studio-recipe"
PARAMETERS_KEY = "parameters"
XMP_KEY = "XML:com.adobe.xmp"
SOFTWARE = f"studio {__version__}"
TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)

_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="{software}">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    Iptc4xmpExt:DigitalSourceType="{source}"
    xmp:CreatorTool="{software}"
    tiff:Software="{software}"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


def xmp_packet() -> str:
    return _XMP.format(software=SOFTWARE, source=TRAINED_ALGORITHMIC_MEDIA)


def recipe_toml(recipe: Recipe) -> str:
    import tomli_w

    return tomli_w.dumps(recipe.to_dict())


def save_png(image: Image.Image, path: Path, recipe: Recipe) -> None:
    """Save `image` at `path` with its metadata; a crash never leaves half a PNG."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(recipe))
    info.add_itxt(RECIPE_KEY, recipe_toml(recipe))
    info.add_itxt(XMP_KEY, xmp_packet())
    info.add_text("Software", SOFTWARE)
    with atomic_writer(path) as handle:
        image.save(handle, format="PNG", pnginfo=info)


MAX_RECIPE_CHARS = 1 << 20  # a recipe is a few KB; a bigger chunk is not ours


def read_recipe(path: Path) -> Recipe | None:
    """The Recipe in a PNG's `studio-recipe` chunk; None when the file, the chunk or the recipe is not whole."""
    import tomllib

    from PIL import Image

    from studio.recipe import Recipe, RecipeError

    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                return None
            image.load()  # reads to IEND: a PNG cut short by a crash fails here
            text = getattr(image, "text", {}).get(RECIPE_KEY)
        if not isinstance(text, str) or len(text) > MAX_RECIPE_CHARS:
            return None
        return Recipe.from_dict(tomllib.loads(text))
    except (OSError, ValueError, SyntaxError, EOFError, RecursionError, TypeError, RecipeError):
        return None


# --- AUTOMATIC1111 `parameters` text ---------------------------------------


def a1111_quote(value: str) -> str:
    """Quote a value the way A1111 does: JSON-quoted only when it holds , : or a newline."""
    if any(c in value for c in ",:\n"):
        return json.dumps(value, ensure_ascii=False)
    return value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def a1111_prompt(recipe: Recipe) -> str:
    """The prompt as A1111 writes it: LoRAs appear as `<lora:name:weight>` tags."""
    tags = [
        f"<lora:{lora.name}:{_number(lora.weight)}>"
        for lora in recipe.loras
        if f"<lora:{lora.name}:" not in recipe.prompt  # typed in the prompt already
    ]
    return " ".join([recipe.prompt, *tags]) if tags else recipe.prompt


def a1111_parameters(recipe: Recipe) -> str:
    spec = SAMPLERS[recipe.sampler]
    fields: list[tuple[str, str]] = [
        ("Steps", str(recipe.steps)),
        ("Sampler", spec.a1111_name or recipe.sampler),
        ("Schedule type", spec.schedule_type),
        ("CFG scale", _number(recipe.cfg_scale)),
        ("Seed", str(recipe.seed)),
        ("Size", recipe.size),
    ]
    if recipe.model_hash:
        fields.append(("Model hash", recipe.model_hash))
    # A1111 names a checkpoint by its file stem; a path would leak the user's folders.
    fields.append(("Model", Path(recipe.model).stem if "/" in recipe.model else recipe.model))
    if recipe.vae_hash:
        fields.append(("VAE hash", recipe.vae_hash))
    if recipe.vae:
        fields.append(("VAE", recipe.vae))
    lora_hashes = [f"{lora.name}: {lora.hash}" for lora in recipe.loras if lora.hash]
    if lora_hashes:
        fields.append(("Lora hashes", ", ".join(lora_hashes)))
    ti_hashes = [f"{name}: {digest}" for name, digest in zip(recipe.embeddings, recipe.embedding_hashes) if digest]
    if ti_hashes:
        fields.append(("TI hashes", ", ".join(ti_hashes)))
    fields.append(("Version", SOFTWARE))
    line = ", ".join(f"{key}: {a1111_quote(value)}" for key, value in fields)
    text = a1111_prompt(recipe)
    if recipe.negative_prompt:
        text += f"\nNegative prompt: {recipe.negative_prompt}"
    return f"{text}\n{line}"


# A key is a word with spaces, dashes or slashes; a value is a JSON string or runs to the comma.
_PARAM = re.compile(r'\s*(\w[\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111_line(line: str) -> dict[str, str]:
    """`Steps: 20, Sampler: Euler, Lora hashes: "a: 1, b: 2"` -> a dict of unquoted values."""
    result: dict[str, str] = {}
    for match in _PARAM.finditer(line):
        key, value = match.group(1).strip(), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        result[key] = value
    return result


def parse_a1111(text: str) -> dict[str, str]:
    """Split A1111 `parameters` text into `prompt`, `negative_prompt` and its fields.

    Field names keep A1111's spelling ("Steps", "CFG scale", "Hires upscale", ...).
    Raises ValueError when the text has no line of settings.
    """
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    last = lines[-1] if lines else ""
    # The settings line is the last one and holds several `Key: value` pairs.
    if len(_PARAM.findall(last)) >= 3:
        params = parse_a1111_line(last)
        lines = lines[:-1]
    if "Steps" not in params:
        raise ValueError("no A1111 settings line (Steps: …, Sampler: …)")
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:") :].lstrip()
        target.append(line)
    return {
        "prompt": "\n".join(prompt).strip(),
        "negative_prompt": "\n".join(negative).strip(),
        **params,
    }


def parse_lora_hashes(value: str) -> dict[str, str]:
    """`a: 123, b: 456` -> {"a": "123", "b": "456"}."""
    result = {}
    for item in value.split(","):
        name, _, digest = item.partition(":")
        if name.strip():
            result[name.strip()] = digest.strip()
    return result


_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>")


def split_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """Remove `<lora:name:weight>` tags from a prompt; return the text and the LoRAs."""
    loras: list[tuple[str, float]] = []

    def take(match: re.Match[str]) -> str:
        try:
            weight = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            weight = 1.0
        loras.append((match.group(1).strip(), weight))
        return ""

    text = _LORA_TAG.sub(take, prompt)
    if not loras:
        return prompt, loras
    text = re.sub(r",[ \t]*(?=,)", "", text)  # "a, <lora:x:1>, b" leaves "a, , b"
    return re.sub(r"[ \t]{2,}", " ", text).strip().strip(",").strip(), loras

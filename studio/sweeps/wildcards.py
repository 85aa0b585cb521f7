"""Wildcards and dynamic prompts: `__name__` and `{a|b|c}`, drawn from the job's seed.

`__colours__` picks one line of `colours.txt` in the first wildcard folder that
has it; `__colours/warm__` reads `colours/warm.txt`. `{a|b|c}` picks one
variant, `{2$$a|b|c}` two different ones joined by ", ", `{1-3$$a|b|c}` one to
three, and `{2$$ and $$a|b|c}` joins them with " and ". A picked line or variant
may hold more of both. The choices come from a generator seeded with the job's
seed, so the same recipe gives the same prompt on every run and every machine;
the session records the resolved prompt, with the template beside it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path

from studio.recipe import Recipe, RecipeError

MAX_DEPTH = 20  # a wildcard file naming itself must end, not recurse forever
MAX_FILE_BYTES = 4 * 1024 * 1024
_WILDCARD = re.compile(r"__([\w.][\w./ -]*?)__")
_COUNT = re.compile(r"^\s*(\d+)(?:\s*-\s*(\d+))?\s*\$\$(?:(.*?)\$\$)?", re.DOTALL)

# Where A1111's and ComfyUI's wildcard extensions keep their files, under the home folder.
USUAL_FOLDERS = (
    "stable-diffusion-webui/extensions/sd-dynamic-prompts/wildcards",
    "stable-diffusion-webui/extensions/stable-diffusion-webui-wildcards/wildcards",
    "ComfyUI/custom_nodes/comfyui-dynamicprompts/wildcards",
    "ComfyUI/custom_nodes/ComfyUI-Impact-Pack/wildcards",
    "ComfyUI/wildcards",
)


class WildcardError(RecipeError):
    """A template that cannot be resolved; the message is one line."""


def is_template(text: str) -> bool:
    """Whether `text` has anything to draw."""
    return "{" in text or bool(_WILDCARD.search(text))


def usual_folders(home: Path | None = None) -> list[Path]:
    """A1111's and ComfyUI's usual wildcard folders that exist under `home`."""
    base = Path.home() if home is None else home
    return [base / folder for folder in USUAL_FOLDERS if (base / folder).is_dir()]


class Wildcards:
    """Wildcard files from `folders`, searched in order; files are read once."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = [Path(folder).expanduser() for folder in folders]
        self._lines: dict[str, list[str]] = {}

    @classmethod
    def for_user(cls, given: Iterable[Path], configured: Iterable[Path], home: Path | None = None) -> Wildcards:
        """`--wildcards` folders first, then the config's, then A1111's and ComfyUI's usual ones."""
        return cls([*given, *configured, *usual_folders(home)])

    def resolve(self, template: str, seed: int) -> str:
        """The prompt `template` stands for under `seed`; WildcardError naming what is wrong."""
        if "}" in _outside_braces(template):
            raise WildcardError("a '}' in the prompt closes no '{'")
        rng = random.Random(f"studio-wildcards:{seed}")
        return self._expand(template, rng, 0)

    def check(self, template: str) -> None:
        """Refuse now what would fail later: a missing wildcard file or a brace left open."""
        self.resolve(template, 0)
        for name in _WILDCARD.findall(template):
            self.lines(name)

    def lines(self, name: str) -> list[str]:
        if name not in self._lines:
            self._lines[name] = self._read(name)
        return self._lines[name]

    def _expand(self, text: str, rng: random.Random, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise WildcardError(f"wildcards nest more than {MAX_DEPTH} deep (does a file name itself?)")
        out: list[str] = []
        pos = 0
        while pos < len(text):
            brace = text.find("{", pos)
            found = _WILDCARD.search(text, pos)
            if found is not None and (brace < 0 or found.start() < brace):
                out.append(text[pos:found.start()])
                out.append(self._expand(rng.choice(self.lines(found[1])), rng, depth + 1))
                pos = found.end()
            elif brace >= 0:
                out.append(text[pos:brace])
                end = _closing(text, brace)
                out.append(self._variant(text[brace + 1:end], rng, depth))
                pos = end + 1
            else:
                out.append(text[pos:])
                break
        return "".join(out)

    def _variant(self, body: str, rng: random.Random, depth: int) -> str:
        low = high = 1
        joiner = ", "
        counted = _COUNT.match(body)
        if counted:
            low = int(counted[1])
            high = int(counted[2]) if counted[2] else low
            joiner = counted[3] if counted[3] is not None else joiner
            body = body[counted.end():]
        options = _split_top(body)
        if low > high:
            raise WildcardError(f"{{{low}-{high}$$...}}: the range is backwards")
        count = min(rng.randint(low, high), len(options))
        picked = rng.sample(options, count)
        return joiner.join(self._expand(option, rng, depth + 1) for option in picked)

    def _read(self, name: str) -> list[str]:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts:
            raise WildcardError(f"wildcard __{name}__: a name stays inside the wildcard folders")
        for folder in self.folders:
            path = folder / f"{name}.txt"
            if not path.is_file():
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise WildcardError(f"wildcard file {path} is over {MAX_FILE_BYTES // 2**20} MiB")
                text = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                raise WildcardError(f"wildcard file {path} is not UTF-8 text") from None
            except OSError as exc:
                raise WildcardError(f"cannot read wildcard file {path}: {exc.strerror}") from None
            lines = [line.strip() for line in text.splitlines()]
            lines = [line for line in lines if line and not line.startswith("#")]
            if not lines:
                raise WildcardError(f"wildcard file {path} has no lines to pick from")
            return lines
        where = ", ".join(str(folder) for folder in self.folders) or "no wildcard folders (use --wildcards DIR)"
        raise WildcardError(f"no wildcard file {name}.txt in {where}")


def resolve_prompts(recipe: Recipe, wildcards: Wildcards | None) -> tuple[Recipe, str]:
    """`recipe` with its prompts drawn under its seed (the negative under seed + 1, so the two draw
    apart), and the prompt's template: "" when neither prompt had anything to draw."""
    if not (is_template(recipe.prompt) or is_template(recipe.negative_prompt)):
        return recipe, ""
    draw = wildcards or Wildcards([])
    resolved = recipe.replace(
        prompt=draw.resolve(recipe.prompt, recipe.seed),
        negative_prompt=draw.resolve(recipe.negative_prompt, recipe.seed + 1),
    )
    return resolved, recipe.prompt


def _closing(text: str, start: int) -> int:
    """Where the '}' that closes the '{' at `start` is."""
    depth = 0
    for pos in range(start, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos
    raise WildcardError("a '{' in the prompt is never closed")


def _split_top(body: str) -> list[str]:
    """`a|{b|c}|d` -> ['a', '{b|c}', 'd']: the '|' outside inner braces."""
    options, depth, start = [], 0, 0
    for pos, char in enumerate(body):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "|" and depth == 0:
            options.append(body[start:pos])
            start = pos + 1
    options.append(body[start:])
    return options


def _outside_braces(text: str) -> str:
    """`text` with every balanced {...} taken out, to find a stray '}'."""
    out, depth = [], 0
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)

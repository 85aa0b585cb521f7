"""The CLIP BPE tokenizer files that single-file checkpoints do not contain.

A .safetensors checkpoint holds weights only; diffusers would fetch the
tokenizer from the hub. Every SD1.x, SD2.x and SDXL text encoder uses the same
49,408-token CLIP vocabulary (`vocab.json` + `merges.txt`), so studio looks for
one copy on disk: a folder the user names, studio's own data folder, any model
in the Hugging Face cache, a ComfyUI install (it ships them), or the
`bpe_simple_vocab_16e6.txt.gz` inside an installed `open_clip` or `clip`
package (A1111 installs both), from which the same two files are derived.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from studio.bounded import read_json_file

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CLIP_VOCAB_SIZE = 49408

Merge = tuple[str, str]  # one BPE merge: the two symbols it joins, as the tokenizers library takes them


class TokenizerMissing(FileNotFoundError):
    """No CLIP tokenizer files were found; the message says where to put them."""


class TokenizerFileError(ValueError):
    """A tokenizer file that is not in the format it should be; the message names the line."""


def studio_tokenizer_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("studio")) / "tokenizers" / "clip"


def missing_message(arch: str) -> str:
    return (
        f"single-file {arch} checkpoints need the CLIP tokenizer files vocab.json and merges.txt"
        f" (the same for every SD1, SD2 and SDXL model): put them in {studio_tokenizer_dir()}"
        " or pass --tokenizer DIR; the tokenizer/ folder of any diffusers Stable Diffusion model"
        " or of openai/clip-vit-large-patch14 has them"
    )


def _pair(folder: Path) -> tuple[Path, Path] | None:
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    return (vocab, merges) if vocab.is_file() and merges.is_file() else None


def _candidate_folders(named: Iterable[Path], hf_cache: Path | None) -> Iterator[Path]:
    for folder in named:
        yield Path(folder).expanduser()
        yield Path(folder).expanduser() / "tokenizer"
    yield studio_tokenizer_dir()
    if hf_cache and hf_cache.is_dir():
        for snapshot in sorted(hf_cache.glob("models--*/snapshots/*")):
            yield snapshot
            yield snapshot / "tokenizer"
            yield snapshot / "tokenizer_2"


def _comfyui_folders(model_dirs: Iterable[Path]) -> Iterator[Path]:
    for folder in model_dirs:
        folder = Path(folder).expanduser().resolve()
        for root in (folder, *folder.parents[:3]):
            yield root / "comfy" / "sd1_tokenizer"


def _clip_pairs(
    named: Iterable[Path], model_dirs: Iterable[Path], hf_cache: Path | None
) -> Iterator[tuple[tuple[Path, Path], bool]]:
    """Each (vocab.json, merges.txt) in the order `find_clip_bpe` looks, and whether the user named its folder."""
    named = [Path(folder).expanduser() for folder in named]
    for folder in [*_candidate_folders(named, hf_cache), *_comfyui_folders(model_dirs)]:
        pair = _pair(folder)
        if pair:
            yield pair, folder in named or folder.parent in named


def find_clip_bpe(
    named: Iterable[Path] = (), model_dirs: Iterable[Path] = (), hf_cache: Path | None = None
) -> tuple[dict[str, int], list[Merge]]:
    """(vocab, merges) of the CLIP BPE, or TokenizerMissing.

    Looks in the `named` folders (whatever vocabulary they hold is taken), studio's
    data folder, the snapshots in the HF hub cache at `hf_cache`, ComfyUI installs
    around `model_dirs`, then an installed open_clip or clip package.
    """
    for pair, is_named in _clip_pairs(named, model_dirs, hf_cache):
        vocab = read_json_file(pair[0])
        if len(vocab) == CLIP_VOCAB_SIZE or is_named:
            return vocab, read_merges(pair[1].read_text(encoding="utf-8"), str(pair[1]))
    packaged = _packaged_bpe()
    if packaged:
        return bpe_from_simple_vocab(packaged)
    raise TokenizerMissing(missing_message("SD"))


NATIVE_MAX_BYTES = 16 << 20  # files the tokenizers library reads whole, unbounded (CLIP's: 0.9 and 0.5 MB)


def find_clip_tokenizer(
    config_folder: Path, named: Iterable[Path] = (), model_dirs: Iterable[Path] = (), hf_cache: Path | None = None
) -> PreTrainedTokenizerBase:
    """The CLIP tokenizer of the files `find_clip_bpe` finds, or TokenizerMissing.

    The tokenizers library reads vocab.json and merges.txt itself (0.1 CPU seconds)
    rather than taking them as Python lists (0.3 s). A pair it refuses goes through
    `find_clip_bpe`'s own reading, which takes it or says in one line what is wrong.
    """
    named, model_dirs = tuple(named), tuple(model_dirs)
    for pair, is_named in _clip_pairs(named, model_dirs, hf_cache):
        if any(path.stat().st_size > NATIVE_MAX_BYTES for path in pair):
            break  # past what a real BPE holds: studio's bounded reader says so in one line
        try:
            tokenizer = clip_tokenizer(config_folder, *pair)
        except Exception:  # not a pair the tokenizers library reads: studio's reader decides
            break
        if tokenizer.vocab_size == CLIP_VOCAB_SIZE or is_named:
            return tokenizer
    return clip_tokenizer(config_folder, *find_clip_bpe(named, model_dirs, hf_cache))


def read_merges(text: str, source: str = "merges.txt") -> list[Merge]:
    """The pairs of a merges.txt: a `#version` line, then one space-separated pair a line."""
    pairs = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line or (number == 1 and line.startswith("#version")):
            continue
        left, sep, right = line.partition(" ")
        if not (left and right) or " " in right:
            raise TokenizerFileError(f"{source} line {number}: expected two symbols, got {line[:60]!r}")
        pairs.append((left, right))
    return pairs


def _packaged_bpe() -> Path | None:
    for package in ("open_clip", "clip"):
        try:
            spec = importlib.util.find_spec(package)  # locates without importing torch-heavy code
        except (ImportError, ValueError):
            continue
        if spec and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                candidate = Path(location) / "bpe_simple_vocab_16e6.txt.gz"
                if candidate.is_file():
                    return candidate
    return None


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible map of bytes to printable characters.

    Its order matters: the first 256 vocabulary ids follow it (printable bytes first).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def bpe_from_simple_vocab(path: Path) -> tuple[dict[str, int], list[Merge]]:
    """The vocab and merges CLIP builds from its gzipped merge list."""
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    # The first line is a version header; CLIP uses the next 48,894 merges.
    merges = read_merges("\n".join(lines[1 : CLIP_VOCAB_SIZE - 256 * 2 - 2 + 1]), path.name)
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [left + right for left, right in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def clip_tokenizer(
    config_folder: Path, vocab: dict[str, int] | Path, merges: list[Merge] | Path
) -> PreTrainedTokenizerBase:
    """A CLIPTokenizer with the special tokens of `config_folder/tokenizer_config.json`.

    `vocab` and `merges` are the BPE itself or its vocab.json and merges.txt (read natively)."""
    from transformers import CLIPTokenizer

    settings = read_json_file(config_folder / "tokenizer_config.json")
    keep = ("model_max_length", "bos_token", "eos_token", "unk_token", "pad_token")
    if isinstance(vocab, Path) and isinstance(merges, Path):
        vocab, merges = str(vocab), str(merges)  # type: ignore[assignment]
    return CLIPTokenizer(vocab=vocab, merges=merges, **{k: settings[k] for k in keep if k in settings})


# --- T5 (Flux, SD3) ---------------------------------------------------------------


def studio_t5_tokenizer_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("studio")) / "tokenizers" / "t5"


def t5_missing_message(model: str) -> str:
    return (
        f"{model} needs the T5 tokenizer (tokenizer.json or spiece.model, the same for every Flux and SD3"
        f" model): put it in {studio_t5_tokenizer_dir()} or pass --tokenizer DIR; ComfyUI ships it in"
        " comfy/t5_tokenizer, and the tokenizer_2/ folder of any diffusers Flux model has it"
    )


def _t5_candidates(named: Iterable[Path], model_dirs: Iterable[Path], hf_cache: Path | None) -> Iterator[Path]:
    for folder in named:
        yield Path(folder).expanduser()
        yield Path(folder).expanduser() / "t5"
    yield studio_t5_tokenizer_dir()
    for folder in model_dirs:
        folder = Path(folder).expanduser().resolve()
        for root in (folder, *folder.parents[:3]):
            yield root / "comfy" / "t5_tokenizer"
    if hf_cache and hf_cache.is_dir():
        for snapshot in sorted(hf_cache.glob("models--*/snapshots/*")):
            yield snapshot / "tokenizer_2"  # Flux
            yield snapshot / "tokenizer_3"  # SD3


def find_t5_tokenizer(
    named: Iterable[Path] = (), model_dirs: Iterable[Path] = (), hf_cache: Path | None = None
) -> Path:
    """A folder holding a T5 tokenizer (tokenizer.json or spiece.model), or TokenizerMissing."""
    for folder in _t5_candidates(named, model_dirs, hf_cache):
        if not ((folder / "tokenizer.json").is_file() or (folder / "spiece.model").is_file()):
            continue
        settings = read_json_file(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
        if "T5" in str(settings.get("tokenizer_class", "T5")):
            return folder
    raise TokenizerMissing(t5_missing_message("this model"))


def t5_tokenizer(folder: Path, config_folder: Path) -> PreTrainedTokenizerBase:
    """The T5 tokenizer in `folder`, with the length the shipped `config_folder` gives."""
    from transformers import T5TokenizerFast

    settings = read_json_file(config_folder / "tokenizer_config.json")
    keep = ("model_max_length",)
    return T5TokenizerFast.from_pretrained(
        str(folder), local_files_only=True, **{k: settings[k] for k in keep if k in settings}
    )

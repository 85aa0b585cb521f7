"""The CLIP BPE files a single-file checkpoint needs, read in their real format.

The fixture is a real-format pair learnt here from the byte-level alphabet: a
vocab.json laid out as CLIP's (256 byte symbols, the same with `</w>`, one token
per merge, the two special tokens) and a merges.txt with its `#version` line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from studio.models.loading import CONFIGS_DIR
from studio.models.tokenizers import (
    TokenizerFileError,
    bytes_to_unicode,
    clip_tokenizer,
    find_clip_bpe,
    read_merges,
)

CORPUS = """
a photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus
a watercolor painting of a red fox in a snowy forest at dawn, soft light, trending
portrait of an old fisherman with a grey beard, oil on canvas, dramatic lighting
a cozy cabin by a lake surrounded by mountains, autumn colors, golden hour photograph
an isometric drawing of a tiny city with bridges, rivers and gardens, pastel palette
studio photograph of a ceramic teapot on a wooden table, shallow depth of field
concept art of a floating castle above the clouds, cinematic, volumetric fog, epic scale
macro photograph of a dragonfly resting on a leaf, morning dew, vibrant greens and blues
a minimalist poster of a lighthouse at night, bold shapes, limited palette, screen print
a bustling night market in the rain, neon signs reflected in puddles, street photography
"""


def learn_bpe(text: str, merges_wanted: int) -> list[tuple[str, str]]:
    """A byte-level BPE learnt the way CLIP's was: words end in `</w>`, most frequent pair first."""
    alphabet = bytes_to_unicode()
    words = Counter(re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", text.lower()))  # as CLIP splits words
    split = {
        word: [alphabet[b] for b in word.encode()[:-1]] + [alphabet[word.encode()[-1]] + "</w>"] for word in words
    }
    merges: list[tuple[str, str]] = []
    while len(merges) < merges_wanted:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, symbols in split.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))  # ties broken by the pair itself: deterministic
        merges.append(best)
        for word, symbols in split.items():
            merged, i = [], 0
            while i < len(symbols):
                if tuple(symbols[i : i + 2]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            split[word] = merged
    return merges


@pytest.fixture(scope="module")
def bpe_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip-bpe")
    merges = learn_bpe(CORPUS, 300)
    assert len(merges) == 300
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return folder


def test_real_merges_make_a_working_tokenizer(bpe_folder, tmp_path):
    from transformers import CLIPTokenizer

    vocab, merges = find_clip_bpe([bpe_folder], hf_cache=tmp_path / "no-hub")
    assert len(merges) == 300 and all(isinstance(m, tuple) and len(m) == 2 for m in merges)
    tokenizer = clip_tokenizer(CONFIGS_DIR / "sd1" / "tokenizer", vocab, merges)

    prompt = "A photograph of an astronaut riding a horse, golden hour"
    ids = tokenizer(prompt).input_ids
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert pieces[0] == "<|startoftext|>" and pieces[-1] == "<|endoftext|>"
    assert "photograph</w>" in pieces and "golden</w>" in pieces  # the merges were applied
    assert len(ids) < len(prompt.split()) + 8
    decoded = tokenizer.decode(ids, skip_special_tokens=True).strip()
    assert decoded.replace(" ,", ",") == prompt.lower()  # CLIP decodes a word end as a space
    assert tokenizer.model_max_length == 77

    # transformers reading the same two files itself gives the same ids.
    reference = CLIPTokenizer(vocab=str(bpe_folder / "vocab.json"), merges=str(bpe_folder / "merges.txt"))
    assert reference(prompt).input_ids == ids


def test_merges_file_format(tmp_path):
    assert read_merges("#version: 0.2\nt h\nth e</w>\n\n") == [("t", "h"), ("th", "e</w>")]
    assert read_merges("a b\r\nab c\r\n") == [("a", "b"), ("ab", "c")]  # no header, Windows line ends
    with pytest.raises(TokenizerFileError, match=r"merges.txt line 3: expected two symbols"):
        read_merges("#version: 0.2\nt h\nthe\n")


def test_the_tokenizer_is_built_from_the_files_not_python_lists(bpe_folder, tmp_path, monkeypatch):
    """The tokenizers library reads vocab.json and merges.txt itself: 0.1 s against 0.3 s for CLIP's."""
    from studio.models import tokenizers

    config = CONFIGS_DIR / "sd1" / "tokenizer"
    vocab, merges = find_clip_bpe([bpe_folder], hf_cache=tmp_path / "no-hub")
    from_lists = clip_tokenizer(config, vocab, merges)

    def no_python_reading(*args, **kwargs):
        raise AssertionError("read in Python")

    monkeypatch.setattr(tokenizers, "read_merges", no_python_reading)
    monkeypatch.setattr(tokenizers, "read_json_file", lambda path, **kw: {"model_max_length": 77}
                        if path.name == "tokenizer_config.json" else no_python_reading())
    native = tokenizers.find_clip_tokenizer(config, [bpe_folder], hf_cache=tmp_path / "no-hub")
    prompt = "a watercolor painting of a red fox, (golden hour:1.2), 42 lanterns"
    assert native(prompt).input_ids == from_lists(prompt).input_ids
    assert native.model_max_length == from_lists.model_max_length == 77
    assert native.convert_ids_to_tokens(native(prompt).input_ids)[0] == "<|startoftext|>"


def test_a_merges_file_the_native_reader_refuses_is_still_named_by_line(bpe_folder, tmp_path):
    from studio.models.tokenizers import find_clip_tokenizer

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "vocab.json").write_bytes((bpe_folder / "vocab.json").read_bytes())
    (bad / "merges.txt").write_text("#version: 0.2\nt h\nthe\n")
    with pytest.raises(TokenizerFileError, match=r"merges.txt line 3: expected two symbols"):
        find_clip_tokenizer(CONFIGS_DIR / "sd1" / "tokenizer", [bad], hf_cache=tmp_path / "no-hub")


def test_an_oversized_bpe_is_not_handed_to_the_native_reader(bpe_folder, tmp_path, monkeypatch):
    """The tokenizers library reads a file whole with no cap: past a real BPE's size, studio's
    bounded reader reads it instead (and refuses it in one line)."""
    from studio.models import tokenizers

    big = tmp_path / "big"
    big.mkdir()
    with open(big / "vocab.json", "wb") as handle:
        handle.truncate(tokenizers.NATIVE_MAX_BYTES + 1)  # sparse: no disk used
    (big / "merges.txt").write_bytes((bpe_folder / "merges.txt").read_bytes())
    handed: list[object] = []
    real = tokenizers.clip_tokenizer
    monkeypatch.setattr(tokenizers, "clip_tokenizer", lambda folder, vocab, merges: handed.append(vocab) or real(folder, vocab, merges))
    with pytest.raises(ValueError, match="vocab.json"):
        tokenizers.find_clip_tokenizer(CONFIGS_DIR / "sd1" / "tokenizer", [big], hf_cache=tmp_path / "no-hub")
    assert not any(isinstance(vocab, Path) for vocab in handed)

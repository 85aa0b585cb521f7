"""Hostile files against every surface that reads them: no traceback, no hang, no raw control character.

Hypothesis builds hostile PNG text chunks, ComfyUI graphs, A1111 parameter
strings and safetensors headers; the CLI runs in-process (`studio.cli.main`)
with capsys, a subprocess only for a few end-to-end cases. The property, for
every case: the exit code is 0 or 1 (2 for `generate`, whose bad values are
usage errors), nothing prints a traceback or falls through to main's catch-all
("run with --debug"), every case finishes within the time bound, and what is
printed holds no character below U+0020 but newline and tab, nor U+007F-U+009F
(checked on the decoded text: every non-ASCII character's UTF-8 bytes include
0x80-0xBF, so the rule is about characters, not bytes).

The quick loop runs QUICK cases a strategy; `-m slow` runs SLOW (1,000) each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.cli import main

QUICK, SLOW = 60, 1000
TIME_BOUND = 10.0  # seconds a case may take; the "hang" is anything longer
ROOT = Path(__file__).resolve().parents[1]

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Characters an attacker reaches for: escape sequences (OSC 52 clipboard, OSC 0 title, CSI clear),
# C1 controls, bidi overrides, quotes and brackets that a parser or markup might take as syntax.
HOSTILE_SNIPPETS = [
    "\x1b]52;c;aGVsbG8=\x07", "\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "\x9b31m", "\x90q\x9c", "\u202e\u2066",
    "\x00", "\r", "\x7f", "[bold red]x[/]", "[/", "<lora:\x1b[31m:1>", "<lora:x:nan>", '"', "\\", "{", "[",
    "Steps: 99999", "Seed: -1", "Size: 99999x3", "\ufeff", "\u2028", "\ud800",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_SNIPPETS), st.text(max_size=12)), max_size=12
).map("".join)


def run_cli(capsys, argv: list[str], ok_codes=(0, 1)) -> str:
    start = time.monotonic()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusing a value: its one-line usage error
        code = exc.code
    took = time.monotonic() - start
    out, err = capsys.readouterr()
    text = out + err
    assert code in ok_codes, (code, text[-500:])
    assert "Traceback" not in text and "run with --debug" not in text, text[-800:]
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text).group())
    assert took < TIME_BOUND, took
    return text


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


# --- PNG text chunks -----------------------------------------------------------------


def png_with_chunks(path: Path, chunks: dict[str, str]) -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


a1111_field = st.tuples(
    st.one_of(st.sampled_from(["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Model hash", "VAE",
                               "Lora hashes", "TI hashes", "Schedule type", "Hires upscale"]),
              st.from_regex(r"\w[\w \-/]{0,10}", fullmatch=True)),
    st.one_of(hostile_text, st.integers().map(str), st.floats().map(str), st.just('"a: 1, b: \x1b"')),
)
a1111_text = st.builds(
    lambda prompt, negative, fields: f"{prompt}\nNegative prompt: {negative}\n"
    + ", ".join(f"{k}: {v}" for k, v in [("Steps", "20"), *fields]),
    hostile_text, hostile_text, st.lists(a1111_field, min_size=2, max_size=12),
)


@st.composite
def comfy_graphs(draw) -> str:
    """Node graphs with links anywhere (cycles, fan-out, dangling), hostile texts and values."""
    n = draw(st.integers(1, 40))
    ids = [str(i) for i in range(n)]
    link = st.builds(lambda i, k: [i, k], st.sampled_from(ids + ["missing"]), st.integers(0, 2))
    value = st.one_of(link, hostile_text, st.integers(-2**70, 2**70), st.floats(), st.none(), st.booleans())
    classes = st.sampled_from(["KSampler", "CLIPTextEncode", "ConditioningCombine", "CheckpointLoaderSimple",
                               "LoraLoader", "EmptyLatentImage", "PrimitiveNode", "\x1b]0;x\x07"])
    keys = st.sampled_from(["positive", "negative", "seed", "steps", "cfg", "sampler_name", "scheduler",
                            "model", "latent_image", "text", "conditioning_1", "conditioning_2", "ckpt_name",
                            "lora_name", "strength_model", "width", "height", "batch_size", "value", "\x9bkey"])
    graph = {i: {"class_type": draw(classes), "inputs": draw(st.dictionaries(keys, value, max_size=8))} for i in ids}
    return json.dumps(graph)


def deep(opener: str, closer: str, depth: int) -> str:
    return opener * depth + closer * depth


json_documents = st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | hostile_text,
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
                 max_leaves=20).map(json.dumps),
    st.integers(10, 200_000).map(lambda d: deep("[", "]", d)),
    st.integers(10, 50_000).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.integers(1, 6000).map(lambda d: '{"seed": ' + "9" * d + "}"),
)

chunk_values = {
    "parameters": st.one_of(a1111_text, json_documents, hostile_text),
    "prompt": st.one_of(comfy_graphs(), json_documents),
    "studio-recipe": st.one_of(
        st.dictionaries(st.sampled_from(["prompt", "steps", "seed", "cfg_scale", "sampler", "loras", "width",
                                         "model", "hue", "embeddings"]),
                        st.one_of(hostile_text, st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                                  st.lists(st.integers(), max_size=3)), max_size=8)
        .map(lambda d: "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.items())),
        st.integers(10, 100_000).map(lambda d: "a = " + deep("[", "]", d)),
        hostile_text,
    ),
    "invokeai_metadata": json_documents,
    "sd-metadata": json_documents,
    "comment": st.one_of(a1111_text, hostile_text),
}
png_chunks = st.dictionaries(st.sampled_from(sorted(chunk_values)), st.just(None), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: chunk_values[k] for k in keys})
)


def _import_property(capsys, tmp_path, chunks):
    path = png_with_chunks(tmp_path / "hostile.png", chunks)
    run_cli(capsys, ["import", str(path)])


@fuzz(QUICK)
@given(chunks=png_chunks)
def test_import_of_hostile_png_chunks(capsys, tmp_path, chunks):
    _import_property(capsys, tmp_path, chunks)


@fuzz(QUICK)
@given(graph=comfy_graphs())
def test_import_of_hostile_comfyui_graphs(capsys, tmp_path, graph):
    _import_property(capsys, tmp_path, {"prompt": graph})


@fuzz(QUICK)
@given(text=a1111_text)
def test_import_of_hostile_a1111_parameters(capsys, tmp_path, text):
    _import_property(capsys, tmp_path, {"parameters": text})


@pytest.mark.slow
@fuzz(SLOW)
@given(chunks=png_chunks)
def test_import_of_hostile_png_chunks_slow(capsys, tmp_path, chunks):
    _import_property(capsys, tmp_path, chunks)


@pytest.mark.slow
@fuzz(SLOW)
@given(graph=comfy_graphs())
def test_import_of_hostile_comfyui_graphs_slow(capsys, tmp_path, graph):
    _import_property(capsys, tmp_path, {"prompt": graph})


@pytest.mark.slow
@fuzz(SLOW)
@given(text=a1111_text)
def test_import_of_hostile_a1111_parameters_slow(capsys, tmp_path, text):
    _import_property(capsys, tmp_path, {"parameters": text})


# --- safetensors headers ---------------------------------------------------------------

dims = st.one_of(st.integers(0, 8), st.integers(0, 2**64), st.integers(-5, 10**30))
tensor_entry = st.fixed_dictionaries({
    "dtype": st.one_of(st.sampled_from(["F32", "F16", "BF16", "I64", "F4", "Q9"]), hostile_text),
    "shape": st.one_of(st.lists(dims, max_size=6), st.lists(st.just(2**60), min_size=100, max_size=3000)),
    "data_offsets": st.one_of(st.lists(st.integers(0, 64), min_size=2, max_size=2),
                              st.lists(st.integers(-1, 2**70), max_size=3)),
})


@st.composite
def safetensors_files(draw) -> tuple[bytes, bytes]:
    """(header JSON, data): valid-looking tensors, hostile metadata, or hostile raw JSON."""
    kind = draw(st.sampled_from(["tensors", "raw", "many"]))
    if kind == "raw":
        return draw(json_documents).encode("utf-8", "surrogatepass"), b""
    if kind == "many":
        count = draw(st.integers(100, 3000))
        header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(count)}
    else:
        header = draw(st.dictionaries(hostile_text, tensor_entry, max_size=6))
    metadata = draw(st.dictionaries(hostile_text, hostile_text, max_size=5))
    if draw(st.booleans()):
        metadata["ss_tag_frequency"] = draw(st.one_of(json_documents, st.just(json.dumps({"d": {"\x1b]52;c;x\x07": 3}}))))
    header["__metadata__"] = metadata
    return json.dumps(header).encode("utf-8", "surrogatepass"), b"\0" * draw(st.integers(0, 64))


def write_safetensors(path: Path, raw: bytes, data: bytes) -> Path:
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


def _inspect_property(capsys, tmp_path, file):
    path = write_safetensors(tmp_path / "hostile.safetensors", *file)
    run_cli(capsys, ["inspect", str(path), "--metadata"])
    run_cli(capsys, ["inspect", str(path), "--json"])


@fuzz(QUICK)
@given(file=safetensors_files())
def test_inspect_of_hostile_safetensors_headers(capsys, tmp_path, file):
    _inspect_property(capsys, tmp_path, file)


@pytest.mark.slow
@fuzz(SLOW)
@given(file=safetensors_files())
def test_inspect_of_hostile_safetensors_headers_slow(capsys, tmp_path, file):
    _inspect_property(capsys, tmp_path, file)


# --- models and generate --------------------------------------------------------------

file_names = hostile_text.map(lambda t: re.sub(r"[/\x00]", "_", t)[:80] or "x")


def _models_property(capsys, tmp_path, name, file):
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    try:
        write_safetensors(folder / f"{name}.safetensors", *file)
    except (OSError, UnicodeEncodeError):  # a name the file system refuses is no case
        return
    run_cli(capsys, ["models", "--dir", str(folder), "--no-hf-cache"], ok_codes=(0, 1))


@fuzz(QUICK // 2)
@given(name=file_names, file=safetensors_files())
def test_models_lists_hostile_names_and_headers(capsys, tmp_path, name, file):
    _models_property(capsys, tmp_path, name, file)


@pytest.mark.slow
@fuzz(SLOW)
@given(name=file_names, file=safetensors_files())
def test_models_lists_hostile_names_and_headers_slow(capsys, tmp_path, name, file):
    _models_property(capsys, tmp_path, name, file)


def _generate_property(capsys, tmp_path, prompt, model, lora):
    # The model never exists, so no case loads a pipeline: this is the path from file text to a message.
    argv = ["generate", f"--model=missing-{model}", f"--lora={lora}", "--session", "s",
            "--sessions-dir", str(tmp_path / "sessions"), "-q", "--", prompt]
    run_cli(capsys, argv, ok_codes=(0, 1, 2))


@fuzz(QUICK // 2)
@given(prompt=hostile_text, model=hostile_text, lora=hostile_text)
def test_generate_with_hostile_text(capsys, tmp_path, prompt, model, lora):
    _generate_property(capsys, tmp_path, prompt.replace("\x00", "") or "x", model.replace("\x00", ""),
                       lora.replace("\x00", "") or "x")


@pytest.mark.slow
@fuzz(SLOW)
@given(prompt=hostile_text, model=hostile_text, lora=hostile_text)
def test_generate_with_hostile_text_slow(capsys, tmp_path, prompt, model, lora):
    _generate_property(capsys, tmp_path, prompt.replace("\x00", "") or "x", model.replace("\x00", ""),
                       lora.replace("\x00", "") or "x")


# --- the crafted cases from the issue, by name ----------------------------------------------


def test_a_fifo_is_refused_by_import_and_inspect_without_blocking(capsys, tmp_path):
    for name in ("pipe.png", "pipe.safetensors"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        command = "import" if name.endswith(".png") else "inspect"
        text = run_cli(capsys, [command, str(fifo)])
        assert "FIFO" in text


def test_a_device_is_refused_by_inspect(capsys):
    assert "device" in run_cli(capsys, ["inspect", "/dev/null"])


def test_a_50_mb_prompt_is_refused_quickly_with_the_cap(capsys, tmp_path):
    text = "a" * (50 << 20) + "\nSteps: 20, Sampler: Euler, Seed: 1, Size: 64x64"
    path = png_with_chunks(tmp_path / "big.png", {"parameters": text})
    assert "character cap" in run_cli(capsys, ["import", str(path)])


def test_a_prompt_over_the_cap_names_the_cap(capsys, tmp_path):
    text = "a" * 70_000 + "\nSteps: 20, Sampler: Euler, Seed: 1, Size: 64x64"
    out = run_cli(capsys, ["import", str(png_with_chunks(tmp_path / "p.png", {"parameters": text}))])
    assert "prompt is 70,000 characters, over the 65,536-character cap" in out


def test_a_million_tiny_tensors_are_refused_before_parsing(capsys, tmp_path):
    entry = '"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'
    raw = ("{" + ",".join(entry % i for i in range(1_000_000)) + "}").encode()
    path = write_safetensors(tmp_path / "m.safetensors", raw, b"")
    start = time.monotonic()
    assert "tensors (the cap)" in run_cli(capsys, ["inspect", str(path)])
    assert time.monotonic() - start < 3


def test_huge_dimensions_and_long_numbers_are_one_line(capsys, tmp_path):
    shape = ",".join(["18446744073709551615"] * 5000)
    raw = ('{"a":{"dtype":"F32","shape":[%s],"data_offsets":[0,4]}}' % shape).encode()
    assert "bad shape" in run_cli(capsys, ["inspect", str(write_safetensors(tmp_path / "d.safetensors", raw, b"\0" * 4))])
    raw = ('{"a":{"dtype":"F32","shape":[%s],"data_offsets":[0,4]}}' % ("9" * 5000)).encode()
    assert "number over 20" in run_cli(capsys, ["inspect", str(write_safetensors(tmp_path / "n.safetensors", raw, b"\0" * 4))])


def test_osc52_in_lora_metadata_is_shown_escaped(capsys, tmp_path):
    raw = json.dumps({"__metadata__": {"modelspec.title": "\x1b]52;c;aGk=\x07", "ss_tag_frequency":
                                       json.dumps({"d": {"\x1b]0;t\x07": 2}})}}).encode()
    text = run_cli(capsys, ["inspect", str(write_safetensors(tmp_path / "l.safetensors", raw, b""))])
    assert "\\x1b]52;c;aGk=\\x07" in text and "\\x1b]0;t\\x07" in text


def test_import_prints_escaped_notes_and_valid_toml(capsys, tmp_path):
    import tomllib

    text = "a \x1b]52;c;aGk=\x07 fox\nSteps: 20, Seed: 1, Size: 64x64, Evil: \x9b2J\u202e"
    out = run_cli(capsys, ["import", str(png_with_chunks(tmp_path / "e.png", {"parameters": text}))])
    assert "# could not map: Evil: \\x9b2J\\u202e" in out
    parsed = tomllib.loads(out)
    assert parsed["recipe"]["prompt"] == "a \x1b]52;c;aGk=\x07 fox"  # the value itself is kept exactly


@pytest.mark.parametrize("command", ["import", "inspect"])
def test_end_to_end_in_a_subprocess(tmp_path, command):
    """A handful of whole runs: the real interpreter, the real stdout encoding."""
    if command == "import":
        target = png_with_chunks(tmp_path / "e.png", {"prompt": json.dumps({"1": {"class_type": "\x1b]0;x\x07",
                                                                                   "inputs": {"sampler_name": "\x9b"}}})})
    else:
        target = write_safetensors(tmp_path / "e.safetensors", b'{"__metadata__":{"k":"\\u001b]52;c;x\\u0007"}}', b"")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "studio", command, str(target)], capture_output=True,
                          env=env, timeout=60)
    text = (done.stdout + done.stderr).decode("utf-8")
    assert done.returncode in (0, 1) and "Traceback" not in text
    assert not RAW_CONTROL.search(text)

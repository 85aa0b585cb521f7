"""Reading safetensors headers and telling architectures apart, without loading tensors."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.models.inspect import inspect_file
from studio.models.safetensors_header import HeaderError, read_header
from tests import models_fixtures as mf


@pytest.mark.parametrize(
    ("spec", "kind", "arch"),
    [
        (mf.sd1_spec(), "checkpoint", "SD1.x"),
        (mf.sd1_spec(in_channels=9), "checkpoint", "SD1.x inpainting"),
        (mf.sd2_spec(), "checkpoint", "SD2.x"),
        (mf.sdxl_spec(), "checkpoint", "SDXL base"),
        (mf.sdxl_spec(refiner=True), "checkpoint", "SDXL refiner"),
        (mf.sd3_spec(24), "checkpoint", "SD3 Medium"),
        (mf.sd3_spec(38), "checkpoint", "SD3.5 Large"),
        (mf.flux_spec(dev=True), "checkpoint", "Flux dev"),
        (mf.flux_spec(dev=False), "checkpoint", "Flux schnell"),
        (mf.kohya_lora_spec(), "LoRA", "SD1.x LoRA (kohya)"),
        (mf.kohya_lora_spec(sdxl=True), "LoRA", "SDXL LoRA (kohya)"),
        (mf.peft_lora_spec(), "LoRA", "SD1.x LoRA (PEFT)"),
        (mf.embedding_spec(width=768), "embedding", "SD1.x textual inversion"),
        (mf.embedding_spec(width=1024), "embedding", "SD2.x textual inversion"),
        (mf.sdxl_embedding_spec(), "embedding", "SDXL textual inversion"),
        (mf.vae_spec(4), "VAE", "SD/SDXL VAE (4-channel)"),
        (mf.vae_spec(16), "VAE", "SD3/Flux VAE (16-channel)"),
    ],
)
def test_architecture_from_header(tmp_path, spec, kind, arch):
    path = mf.write_header_only(tmp_path / "m.safetensors", spec)
    result = inspect_file(path)
    assert (result.kind, result.architecture) == (kind, arch)


def test_params_dtypes_and_kohya_tags(tmp_path):
    path = mf.write_header_only(tmp_path / "lora.safetensors", mf.kohya_lora_spec(rank=8), mf.kohya_lora_metadata())
    result = inspect_file(path)
    # 3 unet modules + 1 text module, each down (8 x in) + up (out x 8) + alpha
    assert result.params == 8 * (768 + 320) + 8 * (320 + 320) + 8 * (1280 + 1280) + 8 * (768 + 768) + 4
    assert result.dtypes == {"F16": result.params}
    assert result.tags == [("1girl", 50), ("solo", 38), ("red scarf", 25), ("smile", 15), ("outdoors", 9)]
    assert result.metadata["modelspec.title"] == "My Character"
    assert "rank 8" in result.notes


def _write_raw(path, header: dict, data: bytes = b"", length: int | None = None):
    raw = json.dumps(header).encode()
    path.write_bytes((len(raw) if length is None else length).to_bytes(8, "little") + raw + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "truncated"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "needs 8"),
        ({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "bad shape"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap"),
        (
            {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
             "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 9, "stray bytes"),
        ({"__metadata__": {"k": 1}}, b"", "__metadata__"),
    ],
)
def test_damaged_headers_raise_one_line(tmp_path, header, data, message):
    path = _write_raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(HeaderError, match=message) as info:
        read_header(path)
    assert "\n" not in str(info.value)


def test_header_size_is_capped_and_checked(tmp_path):
    path = _write_raw(tmp_path / "huge.safetensors", {}, length=1 << 40)
    with pytest.raises(HeaderError, match="cap"):
        read_header(path)
    path = _write_raw(tmp_path / "short.safetensors", {}, length=5000)
    with pytest.raises(HeaderError, match="truncated"):
        read_header(path)
    (tmp_path / "tiny.safetensors").write_bytes(b"abc")
    with pytest.raises(HeaderError, match="not a safetensors"):
        read_header(tmp_path / "tiny.safetensors")
    path = tmp_path / "junk.safetensors"
    path.write_bytes((4).to_bytes(8, "little") + b"\xff{]x")
    with pytest.raises(HeaderError, match="JSON"):
        read_header(path)


def test_cli_inspect_reports_and_fails_cleanly(tmp_path, capsys):
    lora = mf.write_header_only(tmp_path / "mychar.safetensors", mf.kohya_lora_spec(), mf.kohya_lora_metadata())
    assert main(["inspect", str(lora)]) == 0
    out = capsys.readouterr().out
    assert "SD1.x LoRA (kohya)" in out and "My Character" in out and "CreativeML" in out
    assert "1. 50  1girl" in out.replace("  1.", "1.")

    assert main(["inspect", "--json", str(lora)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tags"][0] == ["1girl", 50]

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(lora.read_bytes()[:-10])
    assert main(["inspect", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err


def test_inspect_diffusers_folder(tmp_path):
    folder = tmp_path / "pipe"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    mf.write_header_only(folder / "unet" / "diffusion_pytorch_model.safetensors", {"w": ("F16", (10, 10))})
    result = inspect_file(folder)
    assert (result.format, result.architecture, result.params) == ("diffusers", "SDXL base", 100)


def test_cli_inspect_finds_a_model_by_name(tmp_path, capsys):
    folder = tmp_path / "loras"
    folder.mkdir()
    mf.write_header_only(folder / "mychar.safetensors", mf.kohya_lora_spec(), mf.kohya_lora_metadata())
    assert main(["inspect", "mychar", "--dir", str(folder)]) == 0
    assert "SD1.x LoRA (kohya)" in capsys.readouterr().out
    assert main(["inspect", "ghost", "--dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "ghost: no such file or model" in err and str(folder) in err and err.count("\n") == 1

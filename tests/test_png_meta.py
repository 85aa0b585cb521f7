"""PNG metadata: A1111 parameters (checked with sd-parsers), the recipe chunk, XMP."""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from studio import __version__
from studio.recipe import LoraRef, Recipe
from studio.samplers import SAMPLERS
from studio.formats.a1111 import a1111_parameters, parse_a1111, parse_lora_hashes
from studio.formats.lora_tags import extract_loras_lenient
from studio.formats.png import RECIPE_KEY, TRAINED_ALGORITHMIC_MEDIA, XMP_KEY, save_png

RECIPE = Recipe(
    prompt="a lighthouse, at dusk: oil painting (detailed:1.2)",
    negative_prompt="blurry, low quality",
    model="studio-tiny",
    model_hash="0123456789",
    sampler="DPM++ 2M Karras",
    steps=12,
    cfg_scale=6.5,
    width=64,
    height=96,
    seed=4242424242,
    device="cpu",
    dtype="float32",
)


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "0001.png"
    save_png(Image.new("RGB", (64, 96), (10, 20, 30)), path, RECIPE)
    return path


def test_sd_parsers_reads_every_field(png):
    from sd_parsers import ParserManager

    info = ParserManager().parse(png)
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    sampler = info.samplers[0]
    assert sampler.name == "DPM++ 2M"
    assert sampler.parameters["scheduler"] == "Karras"
    assert sampler.parameters["steps"] == "12"
    assert sampler.parameters["cfg_scale"] == "6.5"
    assert sampler.parameters["seed"] == "4242424242"
    assert [p.value for p in sampler.prompts] == [RECIPE.prompt]
    assert [p.value for p in sampler.negative_prompts] == [RECIPE.negative_prompt]
    assert sampler.model.name == "studio-tiny" and sampler.model.hash == "0123456789"
    assert info.metadata["Size"] == "64x96"
    assert info.metadata["Version"] == f"studio {__version__}"


def test_recipe_chunk_is_exact_toml(png):
    text = Image.open(png).info[RECIPE_KEY]
    assert Recipe.from_dict(tomllib.loads(text)) == RECIPE


def test_xmp_discloses_ai_generation_and_software(png):
    image = Image.open(png)
    root = ET.fromstring(image.info[XMP_KEY].split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    description = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    ext = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType"
    assert description.get(ext) == TRAINED_ALGORITHMIC_MEDIA
    assert description.get("{http://ns.adobe.com/xap/1.0/}CreatorTool") == f"studio {__version__}"
    assert image.info["Software"] == f"studio {__version__}"


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"old")

    class Broken:
        def save(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError):
        save_png(Broken(), path, RECIPE)  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_a1111_text_quotes_like_a1111():
    recipe = RECIPE.replace(
        model="my, model", vae="vae-ft-mse", vae_hash="735e4c3a44",
        loras=(LoraRef("detail", 0.5, "abc123"), LoraRef("style", 1.0, "def456")),
    )
    text = a1111_parameters(recipe)
    prompt, negative, line = text.split("\n")
    assert prompt == RECIPE.prompt + " <lora:detail:0.5> <lora:style:1>"
    assert negative == "Negative prompt: blurry, low quality"
    assert line == (
        "Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 4242424242, "
        'Size: 64x96, Model hash: 0123456789, Model: "my, model", VAE hash: 735e4c3a44, '
        'VAE: vae-ft-mse, Lora hashes: "detail: abc123, style: def456", '
        f"Version: studio {__version__}"
    )
    parsed = parse_a1111(text)
    assert parsed["Model"] == "my, model"
    assert parse_lora_hashes(parsed["Lora hashes"]) == {"detail": "abc123", "style": "def456"}
    assert extract_loras_lenient(parsed["prompt"], []) == (RECIPE.prompt, [LoraRef("detail", 0.5), LoraRef("style", 1.0)])


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_round_trips_through_a1111_names(name):
    from studio.samplers import sampler_from_a1111

    parsed = parse_a1111(a1111_parameters(RECIPE.replace(sampler=name)))
    assert sampler_from_a1111(parsed["Sampler"], parsed["Schedule type"]) == name


def test_parse_a1111_real_world_text():
    text = (
        "masterpiece, 1girl, <lora:add_detail:0.8>\nsecond line\n"
        "Negative prompt: (worst quality:1.4), lowres\n"
        "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x768, "
        "Model hash: 7f96a1a9ca, Model: anything-v5, Denoising strength: 0.45, Clip skip: 2, "
        'Hires upscale: 2, Hires steps: 10, Hires upscaler: R-ESRGAN 4x+ Anime6B, '
        'Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "easynegative: c74b4e810b03", '
        "Version: v1.6.0"
    )
    parsed = parse_a1111(text)
    assert parsed["prompt"] == "masterpiece, 1girl, <lora:add_detail:0.8>\nsecond line"
    assert parsed["negative_prompt"] == "(worst quality:1.4), lowres"
    assert parsed["Hires upscale"] == "2" and parsed["Hires upscaler"] == "R-ESRGAN 4x+ Anime6B"
    assert parsed["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert parsed["Version"] == "v1.6.0"
    with pytest.raises(ValueError):
        parse_a1111("just a prompt, no settings")


def test_lora_and_ti_hashes_are_written_once():
    from studio.recipe import LoraRef, Recipe
    from studio.formats.a1111 import a1111_parameters, parse_a1111

    recipe = Recipe(prompt="ink <lora:wash:0.5>", loras=(LoraRef("wash", 0.5, "aaa111"), LoraRef("grain", 1.0, "bbb222")),
                    embeddings=("easyneg",), embedding_hashes=("ccc333",), vae="ft-mse", vae_hash="ddd444")
    text = a1111_parameters(recipe)
    assert text.count("<lora:wash:") == 1 and "<lora:grain:1>" in text
    fields = parse_a1111(text)
    assert fields["Lora hashes"] == "wash: aaa111, grain: bbb222"
    assert fields["TI hashes"] == "easyneg: ccc333"
    assert fields["VAE hash"] == "ddd444" and fields["VAE"] == "ft-mse"

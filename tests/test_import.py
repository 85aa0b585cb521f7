"""`studio import`: recipes back out of images from studio, A1111, ComfyUI, InvokeAI, Fooocus."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.cli import main
from studio.recipe import LoraRef, Recipe
from studio.formats.comfyui import comfy_sampler
from studio.formats.importer import ImportFailed, import_recipe, model_locator
from studio.formats.png import save_png

A1111_TEXT = (
    "masterpiece, a castle on a hill, <lora:add_detail:0.8>, (sunset:1.2)\n"
    "Negative prompt: lowres, (worst quality:1.4)\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    "Size: 512x768, Model hash: 7f96a1a9ca, Model: anything-v5, VAE hash: 735e4c3a44, "
    'VAE: "vae-ft-mse-840000-ema-pruned.safetensors", Denoising strength: 0.45, Clip skip: 2, '
    "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, "
    'Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "easynegative: c74b4e810b03", '
    "Version: v1.9.4"
)


def not_found(name: str, model_hash: str = "") -> tuple[str, str, str]:
    return name or "studio-tiny", model_hash, f"model {name!r} not found locally"


def fake_library(models: dict[str, str]):
    """A `resolve(name)` like ModelLibrary.resolve's: a ref with .name and .hash, or LookupError."""

    def resolve(name: str) -> SimpleNamespace:
        if name not in models:
            raise LookupError(f"no model {name!r}")
        return SimpleNamespace(name=name, hash=models[name])

    return resolve


def png_with(path: Path, **texts: str) -> Path:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (32, 48), (200, 100, 50)).save(path, pnginfo=info)
    return path


def test_studio_png_round_trips_exactly(tmp_path):
    recipe = Recipe(prompt="a fox, in snow", negative_prompt="blur", seed=77, steps=9, cfg_scale=4.5,
                    sampler="Euler a", width=64, height=64, device="cpu", dtype="float32",
                    loras=(LoraRef("fur", 0.7, "abc"),), model_hash="0011223344")
    path = tmp_path / "fox.png"
    save_png(Image.new("RGB", (64, 64)), path, recipe)
    result = import_recipe(path, locate=not_found)
    assert (result.recipe, result.source, result.notes) == (recipe, "studio", [])


def test_a1111_png(tmp_path):
    result = import_recipe(png_with(tmp_path / "a.png", parameters=A1111_TEXT), locate=not_found)
    r = result.recipe
    assert result.source == "AUTOMATIC1111"
    assert r.prompt == "masterpiece, a castle on a hill, (sunset:1.2)"
    assert r.negative_prompt == "lowres, (worst quality:1.4)"
    assert (r.steps, r.sampler, r.cfg_scale, r.seed) == (28, "DPM++ 2M Karras", 6.5, 3141592653)
    assert (r.width, r.height, r.model, r.model_hash) == (512, 768, "anything-v5", "7f96a1a9ca")
    assert r.vae == "vae-ft-mse-840000-ema-pruned.safetensors" and r.vae_hash == "735e4c3a44"
    assert r.loras == (LoraRef("add_detail", 0.8, "7c6bad76eb54"),)
    assert r.embeddings == ("easynegative",)
    assert r.clip_skip == 2  # A1111's own count, read as written
    joined = " | ".join(result.notes)
    assert "Clip skip" not in joined
    assert (r.hires_scale, r.hires_steps, r.hires_upscaler, r.hires_denoise, r.clip_skip) == (2, 10, "Latent", 0.45, 2)
    assert "not found locally" in joined and "Hires" not in joined and "Denoising" not in joined
    assert "Version" not in joined


def test_a1111_jpeg_and_webp_user_comment(tmp_path):
    for suffix in ("jpg", "webp"):
        path = tmp_path / f"a.{suffix}"
        exif = Image.Exif()
        exif[0x8769] = {0x9286: b"UNICODE\0" + A1111_TEXT.encode("utf-16-be")}
        Image.new("RGB", (32, 32)).save(path, exif=exif.tobytes())
        result = import_recipe(path, locate=not_found)
        assert result.source == "AUTOMATIC1111" and result.recipe.seed == 3141592653


def test_old_a1111_sampler_spelling_and_unknown_sampler(tmp_path):
    old = "a cat\nSteps: 20, Sampler: DPM++ SDE Karras, CFG scale: 7, Seed: 1, Size: 512x512"
    assert import_recipe(png_with(tmp_path / "o.png", parameters=old), locate=not_found).recipe.sampler == "DPM++ SDE Karras"
    odd = "a cat\nSteps: 20, Sampler: Restart, CFG scale: 7, Seed: 1, Size: 500x512"
    result = import_recipe(png_with(tmp_path / "u.png", parameters=odd), locate=not_found)
    assert result.recipe.sampler == "DPM++ 2M Karras" and result.recipe.width == 504
    assert any("Restart" in n for n in result.notes) and any("rounded" in n for n in result.notes)


COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 156680208700286, "steps": 25, "cfg": 8.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
        "denoise": 1.0, "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/dreamshaper_8.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 2}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["12", 0], "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "loras/film_grain.safetensors",
           "strength_model": 0.6, "strength_clip": 0.6, "model": ["4", 0], "clip": ["4", 1]}},
    "12": {"class_type": "PrimitiveNode", "inputs": {"value": "beautiful scenery, glass bottle, galaxy"}},
    "13": {"class_type": "KSampler", "inputs": {
        "seed": 1, "steps": 10, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["14", 0]}},
    "14": {"class_type": "LatentUpscale", "inputs": {"samples": ["3", 0], "width": 1024, "height": 1280}},
}


def test_comfyui_graph(tmp_path):
    path = png_with(tmp_path / "c.png", prompt=json.dumps(COMFY_PROMPT), workflow=json.dumps({"nodes": []}))
    result = import_recipe(path, locate=not_found)
    r = result.recipe
    assert result.source == "ComfyUI"
    assert r.prompt == "beautiful scenery, glass bottle, galaxy" and r.negative_prompt == "text, watermark"
    assert (r.seed, r.steps, r.cfg_scale, r.sampler) == (156680208700286, 25, 8.0, "DPM++ 2M Karras")
    assert (r.width, r.height, r.batch_size) == (512, 640, 2)
    assert r.model == "sd15/dreamshaper_8.safetensors" and r.loras == (LoraRef("film_grain", 0.6, ""),)
    assert any("2 samplers" in n for n in result.notes)


@pytest.mark.parametrize(
    ("sampler", "scheduler", "expected"),
    [("euler_ancestral", "normal", "Euler a"), ("dpmpp_2m_sde_gpu", "karras", "DPM++ 2M SDE Karras"),
     ("uni_pc", "normal", "UniPC"), ("euler", "karras", "Euler"), ("res_multistep", "normal", None)],
)
def test_comfy_sampler_names(sampler, scheduler, expected):
    assert comfy_sampler(sampler, scheduler)[0] == expected


def test_invokeai(tmp_path):
    meta = {
        "generation_mode": "txt2img", "positive_prompt": "a red barn", "negative_prompt": "people",
        "width": 768, "height": 512, "seed": 4242, "cfg_scale": 7.5, "steps": 30, "scheduler": "dpmpp_2m_k",
        "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"},
        "loras": [{"lora": {"model_name": "barn-style", "base_model": "sd-1"}, "weight": 0.75}],
        "app_version": "3.4.0", "rand_device": "cpu", "cfg_rescale_multiplier": 0.2,
    }
    path = png_with(tmp_path / "i.png", invokeai_metadata=json.dumps(meta))
    result = import_recipe(path, locate=not_found)
    r = result.recipe
    assert result.source == "InvokeAI"
    assert (r.prompt, r.negative_prompt, r.seed, r.steps, r.cfg_scale) == ("a red barn", "people", 4242, 30, 7.5)
    assert (r.sampler, r.width, r.height, r.model) == ("DPM++ 2M Karras", 768, 512, "stable-diffusion-v1-5")
    assert r.loras == (LoraRef("barn-style", 0.75, ""),)
    assert any("cfg_rescale_multiplier" in n for n in result.notes)


def test_invokeai_legacy(tmp_path):
    meta = {"model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
            "image": {"prompt": [{"prompt": "a tabby cat [dog, blurry]", "weight": 1}], "steps": 50,
                      "cfg_scale": 7.5, "seed": 42, "width": 512, "height": 512, "sampler": "k_euler_a"}}
    result = import_recipe(png_with(tmp_path / "l.png", **{"sd-metadata": json.dumps(meta)}), locate=not_found)
    r = result.recipe
    assert (r.prompt, r.negative_prompt, r.sampler, r.steps) == ("a tabby cat", "dog, blurry", "Euler a", 50)


def test_fooocus(tmp_path):
    meta = {
        "prompt": "a lighthouse", "negative_prompt": "", "styles": "['Fooocus V2', 'Fooocus Enhance']",
        "performance": "Speed", "resolution": "(1152, 896)", "guidance_scale": 4, "sharpness": 2,
        "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion.safetensors",
        "refiner_model": "None", "refiner_switch": 0.5, "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras",
        "seed": "1234567890123456789", "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
        "full_prompt": ["a lighthouse, cinematic, highly detailed"], "full_negative_prompt": ["ugly"],
        "metadata_scheme": "fooocus", "version": "Fooocus v2.1.865",
    }
    result = import_recipe(png_with(tmp_path / "f.png", parameters=json.dumps(meta)), locate=not_found)
    r = result.recipe
    assert result.source == "Fooocus"
    assert (r.prompt, r.negative_prompt) == ("a lighthouse, cinematic, highly detailed", "ugly")
    assert (r.width, r.height, r.cfg_scale, r.seed, r.steps) == (1152, 896, 4.0, 1234567890123456789, 30)
    assert r.sampler == "DPM++ 2M SDE Karras" and r.model == "juggernautXL_v8Rundiffusion"
    assert r.loras == (LoraRef("sd_xl_offset_example-lora_1.0", 0.1, ""),)
    assert any("sharpness" in n for n in result.notes)


def test_model_found_locally_by_name():
    locate_model = model_locator(fake_library({"mymodel": "0123456789"}))
    name, model_hash, note = locate_model("mymodel", "")
    assert name == "mymodel" and len(model_hash) == 10 and note == ""
    name, _, note = locate_model("mymodel", "ffffffffff")
    assert "the image says ffffffffff" in note


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: Image.new("RGB", (32, 32)).save(p, format="PNG"), "no generation metadata"),
        (lambda p: (png_with(p, parameters=A1111_TEXT), p.write_bytes(p.read_bytes()[:-40])), "truncated"),
    ],
)
def test_unreadable_images_fail_in_one_line(tmp_path, capsys, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ImportFailed, match=message):
        import_recipe(path, locate=not_found)
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_prints_toml_recipe(tmp_path, capsys):
    path = png_with(tmp_path / "a.png", parameters=A1111_TEXT.replace("Version", "Face restoration: CodeFormer, Version"))
    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out
    data = tomllib.loads(out)
    assert Recipe.from_dict(data["recipe"]).seed == 3141592653
    assert Recipe.from_dict(data["recipe"]).hires_scale == 2
    assert data["source"] == "AUTOMATIC1111" and any("Face restoration" in n for n in data["notes"])
    assert "# could not map: Face restoration: CodeFormer" in out


FORGE_FLUX = ("a lighthouse at dusk\nSteps: 20, Sampler: {sampler}, Schedule type: {schedule}, CFG scale: 1, "
              "Distilled CFG Scale: 3.5, Seed: 7, Size: 1024x1024, Model: flux1-dev")


def test_a_forge_flux_image_reads_euler_simple_as_euler_which_flux_takes(tmp_path):
    from studio.models.architectures import check_sampler

    text = FORGE_FLUX.format(sampler="Euler", schedule="Simple")
    result = import_recipe(png_with(tmp_path / "f.png", parameters=text), locate=not_found)
    assert result.recipe.sampler == "Euler" and result.recipe.cfg_scale == 3.5
    assert not any("ampler" in n or "chedule" in n for n in result.notes), result.notes
    check_sampler(result.recipe.sampler, {"_class_name": "FlowMatchEulerDiscreteScheduler",
                                          "use_dynamic_shifting": True})  # Flux dev takes it


def test_an_unknown_forge_flux_sampler_is_euler_with_a_note(tmp_path):
    text = FORGE_FLUX.format(sampler="[Forge] Flux Realistic", schedule="Simple")
    result = import_recipe(png_with(tmp_path / "f.png", parameters=text), locate=not_found)
    assert result.recipe.sampler == "Euler"
    assert any("Flux Realistic" in n and "Euler" in n for n in result.notes)


@pytest.mark.parametrize(
    ("sampler", "schedule", "expected", "noted"),
    [("Euler", "Simple", "Euler", False), ("Euler a", "Normal", "Euler a", False),
     ("DPM++ 2M", "Automatic", "DPM++ 2M", False), ("DPM++ 2M", "Karras", "DPM++ 2M Karras", False),
     ("DPM++ 2M SDE", "karras", "DPM++ 2M SDE Karras", False), ("UniPC", "Uniform", "UniPC", False),
     ("DPM++ 2M", "Exponential", "DPM++ 2M", True), ("DPM++ 2M", "SGM Uniform", "DPM++ 2M", True),
     ("Euler", "Karras", "Euler", True), ("Euler", "Beta", "Euler", True),
     ("DPM++ SDE Karras", "", "DPM++ SDE Karras", False)],
)
def test_a1111_sampler_and_schedule_type_pairs(tmp_path, sampler, schedule, expected, noted):
    text = f"a cat\nSteps: 20, Sampler: {sampler}, Schedule type: {schedule}, CFG scale: 7, Seed: 1, Size: 512x512"
    result = import_recipe(png_with(tmp_path / "s.png", parameters=text), locate=not_found)
    assert result.recipe.sampler == expected
    schedule_notes = [n for n in result.notes if "Schedule type" in n]
    assert bool(schedule_notes) == noted, result.notes
    if noted:
        assert schedule in schedule_notes[0] and expected in schedule_notes[0]

"""Inpainting checkpoints: the 9-channel UNets, as a diffusers folder and as an SD1.x single file.

The fixture is a real SD1 inpainting layout shrunk: the UNet's config is the
one studio ships for SD1 (studio/models/configs/sd1) with in_channels 9 and
tiny widths, the other components are the seeded tiny pipeline's.
"""

from __future__ import annotations

import json
import queue
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from studio.engine import LocalEngine, events as ev
from studio.iterate import with_init
from studio.models import ModelLibrary
from studio.models.loading import CONFIGS_DIR
from studio.recipe import Recipe

SHRUNK = {"block_out_channels": [16, 32], "layers_per_block": 1, "cross_attention_dim": 16,
          "attention_head_dim": 4, "norm_num_groups": 8, "sample_size": 8,
          "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
          "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]}


def build_tiny_inpainting_pipeline(base: Path, folder: Path, seed: int = 1) -> Path:
    import torch
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    config = json.loads((CONFIGS_DIR / "sd1" / "unet" / "config.json").read_text())
    config.update(SHRUNK, in_channels=9)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(config)
    parts = StableDiffusionPipeline.from_pretrained(base, local_files_only=True).components
    parts.update(unet=unet, requires_safety_checker=False)
    StableDiffusionInpaintPipeline(**parts).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def inpaint_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return build_tiny_inpainting_pipeline(tiny_model_dir, tmp_path_factory.mktemp("models") / "tiny-inpainting")


def drawn(folder: Path) -> tuple[Path, Path]:
    image = Image.new("RGB", (64, 64), (255, 255, 0))
    ImageDraw.Draw(image).rectangle((6, 6, 30, 30), fill=(0, 0, 255))
    image.save(folder / "init.png")
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).ellipse((30, 30, 60, 60), fill=255)
    mask.save(folder / "mask.png")
    return folder / "init.png", folder / "mask.png"


def run(recipes: dict[str, Recipe], out: Path) -> tuple[dict[str, ev.Finished], dict[str, str]]:
    events: queue.Queue = queue.Queue()
    engine = LocalEngine(events.put, library=ModelLibrary(use_hf_cache=False), reserve_core=False)
    try:
        for name, recipe in recipes.items():
            engine.submit(recipe, out, name, job_id=name)
        done, failed = {}, {}
        while len(done) + len(failed) < len(recipes):
            event = events.get(timeout=300)
            if isinstance(event, ev.Finished) and event.job_id in recipes:
                done[event.job_id] = event
            elif isinstance(event, ev.Failed) and event.job_id in recipes:
                failed[event.job_id] = event.reason
        return done, failed
    finally:
        engine.shutdown()


def test_a_9_channel_unet_inpaints_and_refuses_txt2img_and_img2img_in_one_line(inpaint_dir, tmp_path):
    init, mask = drawn(tmp_path)
    base = Recipe(prompt="a red circle", model=str(inpaint_dir), steps=4, width=64, height=64, seed=2,
                  sampler="Euler", device="cpu", dtype="float32")
    done, failed = run({
        "inpaint": with_init(base.replace(strength=1.0, mask_blur=2), init, mask),
        "txt2img": base,
        "img2img": with_init(base.replace(strength=0.6), init),
    }, tmp_path / "out")
    assert failed == {
        "txt2img": "tiny-inpainting is an inpainting model: give it an init image and a mask",
        "img2img": "tiny-inpainting is an inpainting model: give it a mask too",
    }
    out = np.asarray(Image.open(done["inpaint"].paths[0]).convert("RGB")).astype(int)
    blurred = np.asarray(Image.open(mask).filter(ImageFilter.GaussianBlur(2)))
    before = np.asarray(Image.open(init)).astype(int)
    assert (out[blurred == 0] == before[blurred == 0]).all()
    assert (out[blurred == 255] != before[blurred == 255]).any(axis=-1).mean() > 0.5


def test_the_engine_runs_the_inpainting_pipeline_itself_not_a_derived_one(inpaint_dir):
    from diffusers import StableDiffusionInpaintPipeline

    from studio.engine.modes import derived
    from studio.engine.pipelines import LoadedPipeline
    from studio.models.loading import load_pipeline

    ref = ModelLibrary(use_hf_cache=False).resolve(str(inpaint_dir))
    pipe = load_pipeline(ref, "cpu", "float32")
    assert isinstance(pipe, StableDiffusionInpaintPipeline) and pipe.unet.config.in_channels == 9
    assert derived(LoadedPipeline(pipe, ref, dict(pipe.scheduler.config)), "inpaint") is pipe


def test_shipped_sd1_inpainting_config_is_sd1_with_a_9_channel_unet():
    sd1, inpainting = CONFIGS_DIR / "sd1", CONFIGS_DIR / "sd1-inpainting"
    unet = json.loads((inpainting / "unet" / "config.json").read_text())
    assert unet.pop("in_channels") == 9
    plain = json.loads((sd1 / "unet" / "config.json").read_text())
    plain.pop("in_channels")
    assert unet == plain
    index = json.loads((inpainting / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionInpaintPipeline"
    for part in ("text_encoder", "vae", "scheduler", "tokenizer"):
        assert sorted(p.name for p in (inpainting / part).iterdir()) == sorted(p.name for p in (sd1 / part).iterdir())


def test_an_sd1_inpainting_single_file_loads_offline_and_inpaints(inpaint_dir, tmp_path):
    """The file is inspected as "SD1.x inpainting" and loads with the shipped layout's classes."""
    import shutil

    from diffusers import StableDiffusionInpaintPipeline

    from studio.models.loading import load_single_file, single_file_architecture
    from tests.models_fixtures import build_tiny_single_file

    checkpoint, config, tokenizer = build_tiny_single_file(inpaint_dir, tmp_path / "single")
    assert single_file_architecture(checkpoint) == "SD1.x inpainting"
    # The shipped index, so the pipeline class is the one studio would use for a real file.
    shutil.copy(CONFIGS_DIR / "sd1-inpainting" / "model_index.json", config / "model_index.json")
    from studio.models.loading import TokenizerSearch

    pipe = load_single_file(checkpoint, None, config_dir=config, tokenizers=TokenizerSearch(named=(tokenizer,)))
    assert isinstance(pipe, StableDiffusionInpaintPipeline) and pipe.unet.config.in_channels == 9
    init, mask = drawn(tmp_path)
    out = pipe(prompt="a red circle", image=Image.open(init), mask_image=Image.open(mask), width=64, height=64,
               num_inference_steps=2, output_type="np").images[0]
    assert out.shape == (64, 64, 3)

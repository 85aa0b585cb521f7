"""No safety checker unless asked: a folder that ships one that flags everything still gives the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.engine import events as ev
from studio.models.safety import component_overrides, ships_safety_checker
from tests.test_engine import engine_factory, recipe_for  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def flagging_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny pipeline plus a safety checker (a shrunk SD1.5 CLIP ViT-L/14 config) that flags every image."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    folder = tmp_path_factory.mktemp("models") / "tiny-sd-checker"
    base = StableDiffusionPipeline.from_pretrained(tiny_model_dir, local_files_only=True)
    torch.manual_seed(0)
    # SD1.5's checker config (CLIP ViT-L/14, projection 768), shrunk to a few thousand parameters.
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "vocab_size": 64, "max_position_embeddings": 16},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():  # score = cosine - weight > 0 for every concept: everything is flagged
        checker.concept_embeds_weights.fill_(-2.0)
        checker.special_care_embeds_weights.fill_(-2.0)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    pipe = StableDiffusionPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=base.unet,
        scheduler=base.scheduler, safety_checker=checker, feature_extractor=processor,
        requires_safety_checker=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def test_the_folder_ships_a_checker(flagging_model_dir, tiny_model_dir):
    assert ships_safety_checker(flagging_model_dir)
    assert not ships_safety_checker(tiny_model_dir)
    assert component_overrides(flagging_model_dir, enabled=False) == {
        "safety_checker": None, "requires_safety_checker": False,
    }
    assert component_overrides(flagging_model_dir, enabled=True) == {}


def test_default_gives_the_real_image_and_loads_no_checker(engine_factory, flagging_model_dir, tiny_model_dir, tmp_path):  # noqa: F811
    engine, rec = engine_factory()
    job = engine.submit(recipe_for(flagging_model_dir), tmp_path, "a")
    done = rec.until(ev.Finished, job)
    pixels = np.asarray(Image.open(done.paths[0]))
    assert pixels.max() > 0  # not a black square
    assert not done.recipe.safety_checker
    loaded = next(iter(engine._cache._entries.values()))
    assert loaded.pipe.safety_checker is None
    # The same weights without a checker give the same pixels: nothing was filtered.
    plain = engine.submit(recipe_for(tiny_model_dir), tmp_path, "b")
    same = np.asarray(Image.open(rec.until(ev.Finished, plain).paths[0]))
    assert np.array_equal(pixels, same)


def test_an_opted_in_checker_that_fires_fails_the_entry_saying_so(engine_factory, flagging_model_dir, tmp_path):  # noqa: F811
    engine, rec = engine_factory()
    job = engine.submit(recipe_for(flagging_model_dir, safety_checker=True, batch_size=2), tmp_path / "out", "a")
    failed = rec.until(ev.Failed, job)
    assert "safety checker you turned on" in failed.reason and "images 1, 2 of 2" in failed.reason
    assert "\n" not in failed.reason
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))
    loaded = next(iter(engine._cache._entries.values()))
    assert loaded.pipe.safety_checker is not None


def test_config_key_and_flag(tmp_path):
    from studio.config import config_from_dict

    assert config_from_dict({"safety_checker": True}).safety_checker is True
    assert config_from_dict({}).safety_checker is False

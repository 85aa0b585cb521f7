"""Taking an image further on studio-tiny: img2img, inpainting, variations, their records.

The init images and masks are drawn here (palette colours, which the tiny VAE
reproduces), not taken from the training set.
"""

from __future__ import annotations

import queue
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from studio.cli import main
from studio.engine import LocalEngine, events as ev
from studio.formats.a1111 import a1111_parameters, read_a1111
from studio.formats.png import XMP_KEY, save_png
from studio.formats.provenance import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA
from studio.iterate import fit, with_init
from studio.recipe import Recipe, RecipeError
from training import evaluate

BASE = Recipe(prompt="a red circle on a blue background", model="studio-tiny", steps=8,
              width=64, height=64, seed=3, sampler="Euler", device="cpu", dtype="float32")


def draw_init(path: Path) -> Path:
    """A blue square on a yellow background, drawn by hand (no such caption in training)."""
    image = Image.new("RGB", (64, 64), (255, 255, 0))
    ImageDraw.Draw(image).rectangle((6, 6, 30, 30), fill=(0, 0, 255))
    image.save(path)
    return path


def draw_mask(path: Path) -> Path:
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).ellipse((30, 30, 60, 60), fill=255)
    mask.save(path)
    return path


class Runner:
    def __init__(self, out: Path):
        self.events: queue.Queue = queue.Queue()
        self.engine = LocalEngine(self.events.put, saver=save_png, reserve_core=False)
        self.out = out

    def make(self, recipes: dict[str, Recipe]) -> dict[str, np.ndarray]:
        for name, recipe in recipes.items():
            self.engine.submit(recipe, self.out, name, job_id=name)
        done, failed = {}, {}
        while len(done) + len(failed) < len(recipes):
            event = self.events.get(timeout=300)
            if isinstance(event, ev.Finished) and event.job_id in recipes:
                done[event.job_id] = event
            elif isinstance(event, ev.Failed) and event.job_id in recipes:
                failed[event.job_id] = event.reason
        assert not failed, failed
        self.finished = done
        return {name: np.asarray(Image.open(event.paths[0]).convert("RGB")).astype(int) for name, event in done.items()}

    def fail(self, recipe: Recipe) -> str:
        job = self.engine.submit(recipe, self.out, "bad")
        while True:
            event = self.events.get(timeout=300)
            if isinstance(event, ev.Failed) and event.job_id == job:
                return event.reason
            assert not (isinstance(event, ev.Finished) and event.job_id == job), "should have failed"


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    r = Runner(tmp_path_factory.mktemp("iterate"))
    yield r
    r.engine.shutdown()


# --- the recipe and the command line -------------------------------------------


@pytest.mark.parametrize("changes, message", [
    ({"strength": 1.5}, "strength must be between 0 and 1"),
    ({"strength": float("nan")}, "strength must be between 0 and 1"),
    ({"mask": "m.png"}, "a mask needs an init image"),
    ({"resize_mode": "zoom"}, "unknown resize mode"),
    ({"inpaint_area": "edges"}, "unknown inpaint area"),
    ({"mask_blur": -1}, "mask blur must be between"),
    ({"variation_strength": 2.0}, "variation strength must be between 0 and 1"),
])
def test_impossible_recipes_are_one_line_errors(changes, message):
    with pytest.raises(RecipeError, match=message) as caught:
        BASE.replace(**changes)
    assert "\n" not in str(caught.value)


def test_recipe_toml_round_trips_init_and_mask_with_hashes(tmp_path):
    recipe = with_init(BASE.replace(strength=0.4), draw_init(tmp_path / "i.png"), draw_mask(tmp_path / "m.png"))
    assert len(recipe.init_image_hash) == 64 and len(recipe.mask_hash) == 64
    assert Recipe.from_dict(recipe.to_dict()) == recipe


@pytest.mark.parametrize("flags, message", [
    (["--mask", "{m}"], "--mask needs --init"),
    (["--init", "{i}", "--strength", "1.5"], "strength must be between 0 and 1"),
    (["--init", "{bad}"], "is not an image"),
    (["--init", "{i}", "--mask", "{small}"], "mask .* is 32x32 but the init image is 64x64"),
    (["--init", "{tmp}/missing.png"], "init image .*missing.png is missing"),
    (["--variation-seed", "4"], "--variation-seed and --variation-strength go together"),
    (["--init", "nosession:3"], "--init nosession:3: no session"),
])
def test_cli_refuses_impossible_combinations_in_one_line(flags, message, tmp_path, capsys):
    names = {"i": draw_init(tmp_path / "i.png"), "m": draw_mask(tmp_path / "m.png"), "tmp": tmp_path}
    names["small"] = tmp_path / "small.png"
    Image.new("L", (32, 32)).save(names["small"])
    names["bad"] = tmp_path / "bad.png"
    names["bad"].write_text("not a picture")
    args = [flag.format(**names) for flag in flags]
    code = main(["generate", "a red circle", "--sessions-dir", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    import re

    assert re.search(message, err), err


def test_resize_modes_give_the_recipe_size():
    wide = Image.new("RGB", (128, 64), (255, 0, 0))
    for mode in ("crop", "resize", "pad"):
        assert fit(wide, 64, 64, mode).size == (64, 64)
    padded = np.asarray(fit(wide, 64, 64, "pad", fill=(0, 0, 0)))
    assert (padded[0] == 0).all() and (padded[32] == (255, 0, 0)).all()  # letterboxed, not cropped


# --- the engine -----------------------------------------------------------------


def test_from_pipe_keeps_dtype_and_weights_in_place():
    """diffusers#12754: from_pipe casts shared modules to float32 unless told the dtype."""
    import torch

    from studio.engine.modes import derived
    from studio.engine.pipelines import LoadedPipeline
    from studio.models import ModelLibrary
    from studio.models.loading import load_pipeline

    ref = ModelLibrary().resolve("studio-tiny")
    pipe = load_pipeline(ref, "cpu", "bfloat16")
    loaded = LoadedPipeline(pipe, ref, dict(pipe.scheduler.config))
    before = {name: (p.dtype, p.data_ptr()) for name, p in pipe.unet.named_parameters()}
    for kind in ("img2img", "inpaint"):
        other = derived(loaded, kind)
        assert other is not pipe and other.unet is pipe.unet and other.vae is pipe.vae
        assert other.unet.dtype == other.text_encoder.dtype == torch.bfloat16
        assert derived(loaded, kind) is other  # made once
    assert {name: (p.dtype, p.data_ptr()) for name, p in pipe.unet.named_parameters()} == before
    assert pipe.vae.dtype == torch.bfloat16


@pytest.mark.slow
def test_img2img_follows_the_prompt_when_strong_and_stays_near_the_init_when_weak(runner, tmp_path):
    init = draw_init(tmp_path / "init.png")
    prompt = "a red circle on a green background"
    images = runner.make({
        "strong": with_init(BASE.replace(prompt=prompt, strength=1.0), init),
        # studio-tiny repaints its flat pictures readily: at 20 steps, 0.05 is one step near the end.
        "weak": with_init(BASE.replace(prompt=prompt, strength=0.05, steps=20), init),
        "none": with_init(BASE.replace(prompt=prompt, strength=0.0), init),
    })
    assert all(evaluate.score_image(images["strong"].astype(np.uint8), prompt).values())
    drawn = np.asarray(Image.open(init)).astype(int)
    assert np.abs(images["weak"] - drawn).mean() < 25  # the VAE's round trip, a little repainting
    assert np.abs(images["strong"] - drawn).mean() > 80
    weak = evaluate.analyse(images["weak"].astype(np.uint8))
    assert (weak["background"], weak["object_colour"], weak["position"]) == ("yellow", "blue", "top left")
    assert (images["none"] == drawn).all()  # strength 0: nothing to denoise


@pytest.mark.slow
@pytest.mark.parametrize("area", ["whole", "masked"])
def test_inpainting_leaves_every_pixel_outside_the_blurred_mask_identical(runner, tmp_path, area):
    init, mask = draw_init(tmp_path / "init.png"), draw_mask(tmp_path / "mask.png")
    recipe = with_init(BASE.replace(strength=1.0, mask_blur=3, inpaint_area=area, inpaint_padding=8), init, mask)
    out = runner.make({f"inpaint-{area}": recipe})[f"inpaint-{area}"]
    blurred = np.asarray(Image.open(mask).filter(ImageFilter.GaussianBlur(3)))
    drawn = np.asarray(Image.open(init)).astype(int)
    outside, inside = blurred == 0, blurred == 255
    assert outside.sum() > 1000 and inside.sum() > 100
    assert (out[outside] == drawn[outside]).all()
    assert (out[inside] != drawn[inside]).any(axis=-1).mean() > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M", "Euler a"])
def test_variation_strength_is_exact_at_both_ends(runner, sampler):
    base = BASE.replace(sampler=sampler)
    images = runner.make({
        f"{sampler}-seed": base,
        f"{sampler}-other": base.replace(seed=11),
        f"{sampler}-v0": base.replace(variation_seed=11, variation_strength=0.0),
        f"{sampler}-v1": base.replace(variation_seed=11, variation_strength=1.0),
        f"{sampler}-half": base.replace(variation_seed=11, variation_strength=0.5),
    })
    assert (images[f"{sampler}-v0"] == images[f"{sampler}-seed"]).all()
    assert (images[f"{sampler}-v1"] == images[f"{sampler}-other"]).all()
    half = images[f"{sampler}-half"]
    assert (half != images[f"{sampler}-seed"]).any() and (half != images[f"{sampler}-other"]).any()


@pytest.mark.slow
@pytest.mark.parametrize("mode, sampler, strength", [
    ("img2img", "Euler a", 0.7), ("inpaint", "Euler", 1.0), ("inpaint", "DPM++ 2M", 0.8),
])
def test_variations_over_an_init_image_are_exact_at_both_ends(runner, tmp_path, mode, sampler, strength):
    import sys

    from diffusers.utils import torch_utils

    init, mask = draw_init(tmp_path / "init.png"), draw_mask(tmp_path / "mask.png")
    base = with_init(BASE.replace(sampler=sampler, strength=strength), init, mask if mode == "inpaint" else None)
    tag = f"{mode}-{sampler}-{strength}"
    images = runner.make({
        f"{tag}-seed": base,
        f"{tag}-other": base.replace(seed=11),
        f"{tag}-v0": base.replace(variation_seed=11, variation_strength=0.0),
        f"{tag}-v1": base.replace(variation_seed=11, variation_strength=1.0),
        f"{tag}-quarter": base.replace(variation_seed=11, variation_strength=0.25),
        f"{tag}-three-quarters": base.replace(variation_seed=11, variation_strength=0.75),
    })
    seed, other = images[f"{tag}-seed"], images[f"{tag}-other"]
    assert (seed != other).any()
    assert (images[f"{tag}-v0"] == seed).all() and (images[f"{tag}-v1"] == other).all()
    for between in ("quarter", "three-quarters"):
        assert (images[f"{tag}-{between}"] != seed).any() and (images[f"{tag}-{between}"] != other).any()
    drawing = [m for name, m in list(sys.modules.items()) if name.startswith("diffusers.pipelines.")
               and "randn_tensor" in getattr(m, "__dict__", {})]
    assert drawing and all(m.randn_tensor is torch_utils.randn_tensor for m in drawing)  # undone after the call


@pytest.mark.slow
def test_rerun_gives_the_same_pixels_and_a_changed_or_missing_init_fails_by_name(runner, tmp_path):
    init, mask = draw_init(tmp_path / "init.png"), draw_mask(tmp_path / "mask.png")
    img2img = with_init(BASE.replace(strength=0.6), init)
    inpaint = with_init(BASE.replace(strength=0.9), init, mask)
    first = runner.make({"i2i-a": img2img, "inp-a": inpaint})
    recorded = {name: event.recipe for name, event in runner.finished.items()}
    again = runner.make({"i2i-b": recorded["i2i-a"], "inp-b": recorded["inp-a"]})
    assert (first["i2i-a"] == again["i2i-b"]).all() and (first["inp-a"] == again["inp-b"]).all()

    drawn = init.read_bytes()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(init)
    assert runner.fail(recorded["i2i-a"]) == f"init image {init.resolve()} has changed since it was recorded " \
        f"(hash {img2img.init_image_hash[:12]}…)"
    init.write_bytes(drawn)
    mask.unlink()
    assert runner.fail(recorded["inp-a"]).endswith(f"mask {mask.resolve()} is missing")


# --- metadata -------------------------------------------------------------------


def test_a1111_text_carries_strength_mask_blur_and_variation(tmp_path):
    recipe = with_init(BASE.replace(strength=0.4, mask_blur=6, inpaint_area="masked", inpaint_padding=24),
                       draw_init(tmp_path / "i.png"), draw_mask(tmp_path / "m.png"))
    text = a1111_parameters(recipe)
    assert "Denoising strength: 0.4, Mask blur: 6, Inpaint area: Only masked, Masked area padding: 24" in text
    fields, notes = read_a1111(text)
    assert (fields["strength"], fields["mask_blur"], fields["inpaint_area"], fields["inpaint_padding"]) == (0.4, 6, "masked", 24)
    assert notes == ["made from an init image, which the metadata does not hold; it runs as text-to-image"]

    varied = BASE.replace(variation_seed=77, variation_strength=0.3)
    assert "Variation seed: 77, Variation seed strength: 0.3" in a1111_parameters(varied)
    fields, notes = read_a1111(a1111_parameters(varied))
    assert (fields["variation_seed"], fields["variation_strength"], notes) == (77, 0.3, [])
    assert "Denoising strength" not in a1111_parameters(BASE)


def test_reads_the_fields_from_an_a1111_image():
    text = ("a cat\nNegative prompt: dog\nSteps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, "
            "Seed: 5, Size: 512x512, Model hash: abc, Model: sd15, Variation seed: 99, "
            "Variation seed strength: 0.25, Denoising strength: 0.55, Mask blur: 4, Version: v1.10.1")
    fields, _ = read_a1111(text)
    assert (fields["variation_seed"], fields["variation_strength"], fields["strength"], fields["mask_blur"]) == (99, 0.25, 0.55, 4)
    hires = read_a1111(text.replace("Mask blur: 4", "Hires upscale: 2"))
    assert "strength" not in hires[0] and hires[0]["hires_denoise"] == 0.55 and hires[0]["hires_scale"] == 2


def source_type(path: Path) -> str:
    xmp = Image.open(path).info[XMP_KEY]
    root = ET.fromstring(xmp.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    return next(value for el in root.iter() for key, value in el.attrib.items() if key.endswith("DigitalSourceType"))


def test_digital_source_type_is_composite_over_a_drawing_and_trained_over_a_generated_image(tmp_path):
    drawing = draw_init(tmp_path / "drawing.png")
    generated = tmp_path / "generated.png"
    save_png(Image.open(drawing), generated, BASE)
    picture = Image.new("RGB", (64, 64))
    save_png(picture, tmp_path / "over-drawing.png", with_init(BASE, drawing))
    save_png(picture, tmp_path / "over-generated.png", with_init(BASE, generated))
    assert source_type(tmp_path / "over-drawing.png") == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert source_type(tmp_path / "over-generated.png") == TRAINED_ALGORITHMIC_MEDIA
    assert source_type(generated) == TRAINED_ALGORITHMIC_MEDIA


def test_sd_parsers_reads_the_new_fields_from_our_png(tmp_path):
    from sd_parsers import ParserManager

    recipe = with_init(BASE.replace(strength=0.35, mask_blur=5), draw_init(tmp_path / "i.png"), draw_mask(tmp_path / "m.png"))
    save_png(Image.new("RGB", (64, 64)), tmp_path / "a.png", recipe)
    info = ParserManager().parse(tmp_path / "a.png")
    assert info.metadata["Denoising strength"] == "0.35" and info.metadata["Mask blur"] == "5"
    save_png(Image.new("RGB", (64, 64)), tmp_path / "b.png", BASE.replace(variation_seed=8, variation_strength=0.5))
    info = ParserManager().parse(tmp_path / "b.png")
    assert info.metadata["Variation seed"] == "8" and info.metadata["Variation seed strength"] == "0.5"

"""Prompt encoding on studio-tiny (16-token window) and a tiny SDXL: identity for plain prompts, effects for syntax."""

from __future__ import annotations

import numpy as np
import pytest

from studio.builtin import BUILTIN_DIR
from studio.engine.encode import PromptEncoder, conditioning_for
from studio.engine.pipelines import LoadedPipeline
from studio.recipe import Recipe

torch = pytest.importorskip("torch")


def _load(cls, folder):
    pipe = cls.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipe, None, dict(pipe.scheduler.config))


@pytest.fixture(scope="module")
def tiny():
    from diffusers import StableDiffusionPipeline

    return _load(StableDiffusionPipeline, BUILTIN_DIR / "studio-tiny")


@pytest.fixture(scope="module")
def xl(tmp_path_factory):
    from diffusers import StableDiffusionXLPipeline

    from tests.models_fixtures import build_tiny_sdxl_pipeline

    return _load(StableDiffusionXLPipeline, build_tiny_sdxl_pipeline(tmp_path_factory.mktemp("xl") / "tiny-sdxl"))


def render(loaded, prompt, negative="", via_text=False, **changes):
    """An image as the engine makes it (or, via_text, as bare diffusers does from the text)."""
    from studio.samplers import make_scheduler

    recipe = Recipe(prompt=prompt, negative_prompt=negative, steps=4, width=64, height=64, seed=3, **changes)
    pipe = loaded.pipe
    pipe.scheduler = make_scheduler(recipe.sampler, loaded.base_scheduler_config, recipe.seed)
    notices: list[str] = []
    if via_text:
        kwargs, switch = {"prompt": prompt, "negative_prompt": negative or None}, None
    else:
        inputs = conditioning_for(loaded, prompt, negative, recipe, notices.append)
        kwargs, switch = inputs.kwargs, inputs.switch

    def callback(pipe, index, timestep, tensors):
        if switch is not None:
            switch(pipe, index, tensors)
        return tensors

    with torch.inference_mode():
        out = pipe(**kwargs, num_inference_steps=recipe.steps, guidance_scale=recipe.cfg_scale, width=64, height=64,
                   generator=torch.Generator("cpu").manual_seed(recipe.seed), output_type="np",
                   callback_on_step_end=callback)
    render.notices = notices
    return out.images[0]


# Within each window: studio-tiny's BPE words, the tiny SDXL's single letters (14 at most).
PLAIN = ["a red circle", "a big blue square on white", ""]
PLAIN_XL = ["a red cat", "big sun, sky", ""]


@pytest.mark.parametrize("prompt", PLAIN)
def test_plain_prompt_embeddings_are_bit_identical_to_diffusers(tiny, prompt):
    with torch.inference_mode():
        mine = PromptEncoder(tiny, 1).encode(prompt).embeds
        theirs, _ = tiny.pipe.encode_prompt(prompt, "cpu", 1, False)
    assert torch.equal(mine, theirs)


@pytest.mark.parametrize("prompt", PLAIN_XL)
def test_plain_prompt_sdxl_embeddings_and_pooled_are_bit_identical(xl, prompt):
    with torch.inference_mode():
        mine = PromptEncoder(xl, 1).encode(prompt)
        theirs, _, pooled, _ = xl.pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
    assert torch.equal(mine.embeds, theirs) and torch.equal(mine.pooled, pooled)


@pytest.mark.parametrize("which", ["tiny", "xl"])
def test_plain_prompt_pixels_match_bare_diffusers(which, request):
    loaded = request.getfixturevalue(which)
    for negative in ("", "blue"):
        ours = render(loaded, "a red circle", negative)
        bare = render(loaded, "a red circle", negative, via_text=True)
        assert np.array_equal(ours, bare)


@pytest.mark.parametrize("which", ["tiny", "xl"])
def test_weight_one_is_the_plain_word_and_syntax_changes_the_image(which, request):
    loaded = request.getfixturevalue(which)
    base = render(loaded, "a red circle")
    assert np.array_equal(render(loaded, "a (red:1.0) circle"), base)
    changed = {
        "weight": render(loaded, "a (red:1.4) circle"),
        "break": render(loaded, "a red BREAK circle"),
        "editing": render(loaded, "a [red:blue:0.5] circle"),
        "alternation": render(loaded, "a [red|blue] circle"),
        "clip skip": render(loaded, "a red circle", clip_skip=2),
    }
    for name, image in changed.items():
        assert not np.array_equal(image, base), f"{name} made no difference"


@pytest.mark.parametrize("which", ["tiny", "xl"])
def test_words_past_the_window_change_the_image(which, request):
    loaded = request.getfixturevalue(which)
    window = "a red circle on white, small, centered, big bright red"
    assert len(loaded.pipe.tokenizer(window, add_special_tokens=False).input_ids) >= 14  # fills the window
    with torch.inference_mode():
        assert PromptEncoder(loaded, 1).encode(window + ", blue square").length > 16
    assert not np.array_equal(render(loaded, window), render(loaded, window + ", blue square"))
    # bare diffusers drops them: the proof that the words lie past the window
    assert np.array_equal(render(loaded, window, via_text=True), render(loaded, window + ", blue square", via_text=True))


def test_negative_is_padded_to_the_positive_chunks(tiny, xl):
    for loaded in (tiny, xl):
        recipe = Recipe(prompt="a red circle BREAK blue", negative_prompt="green", steps=4)
        with torch.inference_mode():
            kwargs = conditioning_for(loaded, recipe.prompt, recipe.negative_prompt, recipe, print).kwargs
        assert kwargs["prompt_embeds"].shape == kwargs["negative_prompt_embeds"].shape
        assert kwargs["prompt_embeds"].shape[1] == 32


def test_each_distinct_text_is_encoded_once(tiny):
    encoder = PromptEncoder(tiny, 1)
    with torch.inference_mode():
        encoder.encode("a [red|blue] square, seen once")
        encoder.encode("a [red|blue] square, seen once")
    assert encoder.encodings == 1
    recipe = Recipe(prompt="a [red|blue|green] square", steps=12)
    with torch.inference_mode():
        conditioning_for(tiny, recipe.prompt, "", recipe, print)
        again = PromptEncoder(tiny, 1)
        from studio.engine.encode import Conditioning

        Conditioning(again, recipe.prompt, "", recipe.steps)
    assert again.encodings == 0  # the three texts and the negative were cached by the first job


def test_syntax_errors_and_wild_weights_are_notices(tiny):
    render(tiny, "a (red circle [x:y] (blue:7)")
    notices = render.notices
    assert any("neither an edit" in n for n in notices)
    assert any("unclosed" in n for n in notices)


def test_the_engine_says_what_it_cannot_honour_and_records_clip_skip(tmp_path):
    import queue

    from studio.engine import LocalEngine, events as ev

    inbox: queue.Queue = queue.Queue()
    engine = LocalEngine(inbox.put, saver=lambda image, path, recipe: image.save(path))
    try:
        recipe = Recipe(prompt="a [red:blue] (circle", steps=2, width=64, height=64, clip_skip=2)
        job = engine.submit(recipe, tmp_path)
        seen = []
        while not any(isinstance(e, (ev.Finished, ev.Failed)) for e in seen):
            seen.append(inbox.get(timeout=120))
    finally:
        engine.shutdown()
    assert not [e for e in seen if isinstance(e, ev.Failed)]
    notices = [e.message for e in seen if isinstance(e, ev.Notice) and e.job_id == job]
    assert any("neither an edit" in n for n in notices) and any("unclosed" in n for n in notices)
    assert [e for e in seen if isinstance(e, ev.Finished)][0].recipe.clip_skip == 2


def test_clip_skip_round_trips_through_a1111_text():
    from studio.formats.a1111 import a1111_parameters, read_a1111

    text = a1111_parameters(Recipe(prompt="(cat:1.2)", clip_skip=2))
    assert "Clip skip: 2" in text
    fields, notes = read_a1111(text)
    assert fields["clip_skip"] == 2 and fields["prompt"] == "(cat:1.2)"
    assert "Clip skip" not in a1111_parameters(Recipe(prompt="cat"))
    fields, notes = read_a1111("cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Clip skip: 40")
    assert "clip_skip" not in fields and any("Clip skip" in n for n in notes)


def test_cli_prints_notices_as_warnings_and_takes_clip_skip(tmp_path, capsys):
    from studio.cli import main

    code = main(["generate", "a (red circle", "--steps", "2", "--size", "64x64", "--seed", "1", "--clip-skip", "2",
                 "--sessions-dir", str(tmp_path / "s"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning: unclosed bracket" in captured.err
    assert main(["generate", "cat", "--clip-skip", "0", "--sessions-dir", str(tmp_path / "s"), "--quiet"]) == 2

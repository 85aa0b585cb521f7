"""studio.formats: the A1111 round trip, the lenient <lora:> grammar, hostile metadata, the leaf rule."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.builtin import DEFAULT_MODEL
from studio.errors import first_line
from studio.formats.a1111 import A1111_FIELDS, a1111_parameters, read_a1111
from studio.formats.importer import ImportFailed, import_recipe, model_locator
from studio.formats.lora_tags import extract_loras, extract_loras_lenient
from studio.formats.png import save_png
from studio.recipe import MAX_SEED, LoraRef, Recipe, RecipeError
from studio.samplers import SAMPLERS

FORMATS = Path(__file__).resolve().parent.parent / "studio" / "formats"


def png_with(path: Path, **texts: str) -> Path:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


# --- the A1111 round trip ------------------------------------------------------

# Text A1111's format can carry back: no tags or line that reads as "Negative prompt:",
# nothing at either end for the reader to strip. Names also avoid the `a: hash, b: hash` separators.
_TEXT = "abcxyz019 ,:().-_'!\néü猫"
prompts = st.text(_TEXT, max_size=40).map(str.strip)
names = st.text("abcxyzABC019_-. ", min_size=1, max_size=12).map(str.strip).filter(bool)
hashes = st.text("0123456789abcdef", min_size=10, max_size=12)
weights = st.floats(-4, 4, allow_nan=False, width=32).map(float)


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    loras = draw(st.dictionaries(names, st.tuples(weights, st.one_of(st.just(""), hashes)), max_size=3))
    embeddings = draw(st.dictionaries(names, hashes, max_size=2))
    vae = draw(st.one_of(st.just(""), names))
    return Recipe(
        prompt=draw(prompts),
        negative_prompt=draw(prompts),
        model=draw(st.text(_TEXT.replace("\n", "") + '"', min_size=1, max_size=20).map(str.strip).filter(
            lambda m: m and not (m[0] == m[-1] == '"'))),
        model_hash=draw(st.one_of(st.just(""), hashes)),
        sampler=draw(st.sampled_from(list(SAMPLERS))),
        steps=draw(st.integers(1, 1000)),
        cfg_scale=draw(st.floats(0, 100, allow_nan=False)),
        width=draw(st.integers(1, 1024)) * 8,
        height=draw(st.integers(1, 1024)) * 8,
        seed=draw(st.integers(0, MAX_SEED - 1024)),
        loras=tuple(LoraRef(name, weight, digest) for name, (weight, digest) in loras.items()),
        embeddings=tuple(embeddings),
        embedding_hashes=tuple(embeddings.values()),
        vae=vae,
        vae_hash=draw(hashes) if vae else "",
    )


def carried(recipe: Recipe) -> dict:
    return {key: value for key, value in recipe.to_dict().items() if key in A1111_FIELDS}


@settings(max_examples=150, deadline=None)
@given(recipes())
def test_every_recipe_reads_back_from_its_a1111_text(recipe):
    fields, notes = read_a1111(a1111_parameters(recipe))
    defaults = Recipe(prompt="").to_dict()
    read = {key: fields.get(key, defaults[key]) for key in A1111_FIELDS}
    assert read == carried(recipe)
    assert notes == [] and fields["_source"] == "studio (A1111 text)"


def test_a1111_text_alone_imports_the_same_recipe(tmp_path):
    recipe = Recipe(prompt="ink, wash,\nsecond line", negative_prompt="blur, (bad:1.3)", model="my, model:v2",
                    model_hash="0123456789", sampler="Euler a", steps=17, cfg_scale=5.25, width=640, height=384,
                    seed=2**40, loras=(LoraRef("wash", 0.35, "abc123"), LoraRef("grain", -1.0)),
                    embeddings=("easyneg",), embedding_hashes=("ccc333",), vae="ft-mse", vae_hash="ddd444")
    path = png_with(tmp_path / "a.png", parameters=a1111_parameters(recipe))
    result = import_recipe(path)
    assert carried(result.recipe) == carried(recipe)
    assert result.source == "studio (A1111 text)"
    assert result.notes == ["model 'my, model:v2' (hash 0123456789) was not looked up"]


# --- one <lora:> grammar, two modes ---------------------------------------------


def test_lenient_mode_notes_what_strict_mode_refuses():
    prompt = "a cat, <lora:good:0.5>, <lora:bad:strong>, <LyCO:odd:inf> <lora:good:0.7>"
    with pytest.raises(RecipeError, match="LoRA weight must be a number in '<lora:bad:strong>'"):
        extract_loras(prompt)
    notes: list[str] = []
    # The comma stays: A1111 made the image from "a cat, " once it took the tags out.
    assert extract_loras_lenient(prompt, notes) == ("a cat,", [LoraRef("good", 0.7)])
    assert notes == [
        "LoRA tag '<lora:bad:strong>' has no usable weight; dropped",
        "LoRA tag '<LyCO:odd:inf>' has no usable weight; dropped",
        "LoRA good is tagged more than once; kept its last weight",
    ]


def test_tags_leave_the_rest_of_the_prompt_as_typed():
    notes: list[str] = []
    assert extract_loras_lenient("a  cat,, (x:1.2) ", notes) == ("a  cat,, (x:1.2) ", [])
    assert extract_loras_lenient("<lora:a> first,\n<lora:b:2>, second", notes)[0] == "first,\nsecond"
    assert notes == []


def test_a_bad_tag_in_an_a1111_image_is_a_note(tmp_path):
    text = "a fox <lora:fur:lots> <lora:snow:0.4>\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    result = import_recipe(png_with(tmp_path / "a.png", parameters=text))
    assert result.recipe.prompt == "a fox" and result.recipe.loras == (LoraRef("snow", 0.4),)
    assert "LoRA tag '<lora:fur:lots>' has no usable weight; dropped" in result.notes


def test_a_tag_typed_without_weight_is_not_written_twice():
    text = a1111_parameters(Recipe(prompt="ink <LoRA:wash>", loras=(LoraRef("wash", 0.5),)))
    assert text.splitlines()[0] == "ink <LoRA:wash>"


# --- locating the model ------------------------------------------------------------


def test_model_locator_tries_name_stem_then_hash():
    refs = {"dreamshaper_8": "aaaaaaaaaa", "fedcba9876": "fedcba9876"}
    seen: list[str] = []

    def resolve(name: str) -> SimpleNamespace:
        seen.append(name)
        if name not in refs:
            raise LookupError(name)
        return SimpleNamespace(name=name if name != "fedcba9876" else "other", hash=refs[name])

    locate = model_locator(resolve)
    assert locate("sd15/dreamshaper_8.safetensors", "") == ("dreamshaper_8", "aaaaaaaaaa", "")
    assert seen == ["sd15/dreamshaper_8.safetensors", "dreamshaper_8"]
    assert locate("gone", "fedcba9876") == ("other", "fedcba9876", "model 'gone' found by its hash as other")
    assert locate("gone.ckpt", "") == ("gone", "", "model 'gone.ckpt' not found locally")


def test_without_a_locator_the_model_is_kept_as_written(tmp_path):
    named = "a\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Model: models/sd/x_v1.safetensors"
    result = import_recipe(png_with(tmp_path / "n.png", parameters=named))
    assert result.recipe.model == "x_v1"
    assert "model 'models/sd/x_v1.safetensors' was not looked up" in result.notes
    unnamed = "a\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    result = import_recipe(png_with(tmp_path / "u.png", parameters=unnamed), locate=lambda *_: pytest.fail())
    assert result.recipe.model == DEFAULT_MODEL
    assert f"no model named in the image; used {DEFAULT_MODEL}" in result.notes


# --- untrusted metadata ------------------------------------------------------------


def test_a_broken_studio_chunk_keeps_its_good_fields_and_names_the_bad_one(tmp_path):
    chunk = 'prompt = "a fox"\nseed = 5\nsteps = "many"\ncfg_scale = 900.0\nhue = 3\n'
    result = import_recipe(png_with(tmp_path / "c.png", **{"studio-recipe": chunk}))
    assert result.source == "studio" and result.recipe.seed == 5 and result.recipe.prompt == "a fox"
    assert result.recipe.steps == 20 and result.recipe.cfg_scale == 7.0
    assert "hue: not a recipe field; dropped" in result.notes
    assert "steps: steps has the wrong type: 'many'; used the default" in result.notes
    assert "cfg_scale: CFG scale must be between 0 and 100 (got 900.0); used the default" in result.notes


def test_a_studio_chunk_without_a_prompt_falls_back_to_the_a1111_text(tmp_path):
    path = tmp_path / "s.png"
    save_png(Image.new("RGB", (8, 8)), path, Recipe(prompt="a fox", seed=5))
    texts = {"parameters": Image.open(path).info["parameters"], "studio-recipe": "steps = 3\n"}
    result = import_recipe(png_with(tmp_path / "b.png", **texts))
    assert result.source == "studio (A1111 text)" and result.recipe.seed == 5


def test_json_nested_too_deep_is_unreadable_not_a_crash(tmp_path):
    path = png_with(tmp_path / "d.png", prompt="[" * 100_000)
    with pytest.raises(ImportFailed, match="metadata found but unreadable"):
        import_recipe(path)


def test_a_comfyui_graph_that_fans_out_is_read_once_a_node(tmp_path):
    # Every node feeds the next one ten times over: 10**25 paths if walked naively.
    graph = {str(i): {"class_type": "ConditioningCombine",
                      "inputs": {f"conditioning_{k}": [str(i + 1), 0] for k in range(10)}} for i in range(25)}
    graph["25"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "deep"}}
    graph["s"] = {"class_type": "KSampler", "inputs": {"positive": ["0", 0], "negative": ["25", 0],
                                                       "seed": 1, "steps": 4, "cfg": 7, "sampler_name": "euler"}}
    start = time.monotonic()
    result = import_recipe(png_with(tmp_path / "g.png", prompt=json.dumps(graph)))
    assert time.monotonic() - start < 2
    assert result.recipe.prompt == result.recipe.negative_prompt == "deep"


def test_a_cyclic_comfyui_graph_ends_where_it_closes(tmp_path):
    graph = {
        "a": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["b", 0], "conditioning_2": ["t", 0]}},
        "b": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["a", 0], "conditioning_2": ["u", 0]}},
        "t": {"class_type": "CLIPTextEncode", "inputs": {"text": "one"}},
        "u": {"class_type": "CLIPTextEncode", "inputs": {"text": "two"}},
        "p": {"class_type": "PrimitiveNode", "inputs": {"value": ["q", 0]}},
        "q": {"class_type": "PrimitiveNode", "inputs": {"value": ["p", 0]}},
        "m": {"class_type": "LoraLoader", "inputs": {"model": ["m", 0], "lora_name": "x.safetensors"}},
        "s": {"class_type": "KSampler", "inputs": {"positive": ["a", 0], "seed": ["p", 0], "steps": 4,
                                                   "cfg": 7, "sampler_name": "euler", "model": ["m", 0]}},
    }
    result = import_recipe(png_with(tmp_path / "c.png", prompt=json.dumps(graph)))
    assert result.recipe.prompt == "two, one"
    assert result.recipe.seed == 0 and [lora.name for lora in result.recipe.loras] == ["x"]
    assert result.notes.count("ConditioningCombine: combined prompts were joined with ', '") == 1


def test_a_10000_node_comfyui_graph_takes_linear_time(tmp_path):
    n = 10_000
    graph = {str(i): {"class_type": "ConditioningCombine",
                      "inputs": {"conditioning_1": [str(i + 1), 0], "conditioning_2": [str(min(i + 2, n)), 0]}}
             for i in range(n)}
    graph[str(n)] = {"class_type": "CLIPTextEncode", "inputs": {"text": "end"}}
    graph["s"] = {"class_type": "KSampler", "inputs": {"positive": ["0", 0], "seed": 1, "steps": 4, "cfg": 7,
                                                       "sampler_name": "euler"}}
    start = time.monotonic()
    result = import_recipe(png_with(tmp_path / "l.png", prompt=json.dumps(graph)))
    assert time.monotonic() - start < 5
    assert result.recipe.prompt == "end"


# --- first_line and the leaf rule ---------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (KeyError("image"), "image"),
        (ValueError("\n  bad value  \nsecond line"), "bad value"),
        (OSError(28, "No space left on device"), "[Errno 28] No space left on device"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
        (RuntimeError(""), "RuntimeError"),
        (KeyError(""), "KeyError"),
    ],
)
def test_first_line(exc, line):
    assert first_line(exc) == line


def test_formats_is_a_leaf_of_short_modules():
    modules = [f"studio.formats.{path.stem}" for path in FORMATS.glob("*.py") if path.stem != "__init__"]
    code = f"import sys; import {', '.join(modules)}; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    above = ("studio.models", "studio.store", "studio.engine", "studio.cli", "studio.tui")
    assert [m for m in loaded if m.startswith(above)] == []
    assert [m for m in loaded if m.split(".")[0] in ("torch", "diffusers", "textual")] == []
    assert {path.name: n for path in FORMATS.glob("*.py") if (n := len(path.read_text().splitlines())) > 500} == {}


def test_a_studio_chunk_cannot_pass_for_another_tool(tmp_path):
    chunk = '_source = "AUTOMATIC1111"\nprompt = "x"\nloras = [1]\n'
    result = import_recipe(png_with(tmp_path / "s.png", **{"studio-recipe": chunk}))
    assert result.source == "studio" and result.recipe.loras == ()
    assert result.notes == ["_source: not a recipe field; dropped", "loras: bad entry 1; dropped"]

from __future__ import annotations

import pytest

from studio.formats.lora_tags import extract_loras, merge_loras
from studio.recipe import LoraRef, RecipeError


def test_extract_loras_like_a1111():
    clean, loras = extract_loras("a castle, <lora:mychar_v2:0.8>, night <LyCO:film grain> sky")
    assert clean == "a castle, night sky"
    assert loras == [LoraRef("mychar_v2", 0.8), LoraRef("film grain", 1.0)]


def test_extra_fields_repeats_and_bad_weights():
    clean, loras = extract_loras("<lora:a:0.5:te=1> x <lora:a:-1.25>")
    assert (clean, loras) == ("x", [LoraRef("a", -1.25)])
    with pytest.raises(RecipeError, match="number"):
        extract_loras("<lora:a:strong>")
    assert extract_loras("no tags <here>") == ("no tags <here>", [])


def test_merge_prompt_over_recipe():
    merged = merge_loras([LoraRef("b", 0.3)], (LoraRef("a", 1.0), LoraRef("b", 0.9)))
    assert merged == (LoraRef("a", 1.0), LoraRef("b", 0.3))

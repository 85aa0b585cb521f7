import pytest

from studio.recipe import LoraRef, Recipe, RecipeError, parse_size
from studio.samplers import SAMPLERS, sampler_from_a1111

REQUIRED = ["Euler", "Euler a", "Heun", "LMS", "DDIM", "DPM++ 2M", "DPM++ 2M Karras",
            "DPM++ SDE Karras", "UniPC", "LCM"]


def test_required_samplers_are_known():
    assert set(REQUIRED) <= set(SAMPLERS)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"width": 500}, "width must be a multiple of 8"),
        ({"height": 0}, "height must be a multiple of 8"),
        ({"steps": 0}, "steps must be between 1"),
        ({"cfg_scale": -1.0}, "CFG scale must be between 0"),
        ({"seed": -5}, "seed must be between"),
        ({"batch_size": 0}, "batch size"),
        ({"device": "tpu"}, "unknown device"),
        ({"dtype": "int8"}, "unknown dtype"),
        ({"steps": "20"}, "steps has the wrong type"),
        ({"steps": True}, "steps has the wrong type"),
    ],
)
def test_impossible_values_raise_one_clear_line(changes, message):
    with pytest.raises(RecipeError) as info:
        Recipe(prompt="x", **changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_sampler_lists_the_known_ones():
    with pytest.raises(RecipeError) as info:
        Recipe(prompt="x", sampler="Euler b")
    for name in REQUIRED:
        assert name in str(info.value)


def test_round_trip_through_dict():
    recipe = Recipe(prompt="a cat", negative_prompt="blur", seed=7, loras=(LoraRef("ink", 0.5, "abc"),),
                    embeddings=("bad-hands",))
    assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_text_encoder_hashes_round_trip_and_pair_with_their_encoders():
    recipe = Recipe(prompt="x", text_encoders=("clip_l", "t5xxl_fp16"), text_encoder_hashes=("0123456789", "abcdef0123"))
    again = Recipe.from_dict(recipe.to_dict())
    assert again == recipe and again.text_encoder_hashes == ("0123456789", "abcdef0123")
    assert Recipe.from_dict({"prompt": "x", "text_encoders": ["clip_l"]}).text_encoder_hashes == ()  # older recipes
    with pytest.raises(RecipeError, match="one text per text encoder"):
        Recipe(prompt="x", text_encoders=("clip_l", "t5"), text_encoder_hashes=("0123456789",))


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(RecipeError, match="unknown recipe field"):
        Recipe.from_dict({"prompt": "x", "stepz": 3})


def test_for_image_offsets_the_seed():
    batch = Recipe(prompt="x", seed=10, batch_size=4)
    assert batch.for_image(3).seed == 13
    assert batch.for_image(3).batch_size == 1


def test_parse_size():
    assert parse_size("768x512") == (768, 512)
    assert parse_size("64") == (64, 64)
    with pytest.raises(RecipeError):
        parse_size("big")


def test_a1111_sampler_names_map_back():
    assert sampler_from_a1111("DPM++ 2M", "Karras") == "DPM++ 2M Karras"
    assert sampler_from_a1111("DPM++ 2M Karras") == "DPM++ 2M Karras"
    assert sampler_from_a1111("Euler a", "Automatic") == "Euler a"
    assert sampler_from_a1111("Nonsense") is None

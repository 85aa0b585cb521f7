"""The A1111 prompt language, parsed by studio: the wiki's examples, weights per token, a fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.prompts.attention import parse_attention
from studio.prompts.chunks import Chunk, chunk_tokens, TokenCounter
from studio.prompts.schedule import prompt_schedule

TINY_TOKENIZER = "studio/builtin/studio-tiny/tokenizer"

# (prompt, [(text, weight), ...]) from A1111's wiki (Features: attention/emphasis) and its documented examples.
ATTENTION = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("a ((word))", [("a ", 1.0), ("word", 1.21)]),
    ("a (((word)))", [("a ", 1.0), ("word", 1.331)]),
    ("a [word]", [("a ", 1.0), ("word", 1 / 1.1)]),
    ("a [[word]]", [("a ", 1.0), ("word", 1 / 1.21)]),
    ("a (word:1.5)", [("a ", 1.0), ("word", 1.5)]),
    ("a (word:0.25)", [("a ", 1.0), ("word", 0.25)]),
    ("(masterpiece:1.2), best quality", [("masterpiece", 1.2), (", best quality", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
         (", sun, ", 1.1), ("sky", 1.4641), (".", 1.1)],
    ),
    ("(a:b)", [("a:b", 1.1)]),  # not a number: the colon is text
    ("a ) b", [("a ) b", 1.0)]),  # a stray closer is text
    ("", [("", 1.0)]),
]


@pytest.mark.parametrize("prompt, expected", ATTENTION)
def test_weights_per_fragment_as_the_wiki_gives_them(prompt, expected):
    got = [(f.text, f.weight) for f in parse_attention(prompt).fragments]
    assert [text for text, _ in got] == [text for text, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_break_is_its_own_fragment_and_only_in_capitals():
    fragments = parse_attention("a cat BREAK (a dog:1.3)").fragments
    assert [(f.text, f.is_break) for f in fragments] == [("a cat", False), ("BREAK", True), ("a dog", False)]
    assert fragments[2].weight == pytest.approx(1.3)
    assert not any(f.is_break for f in parse_attention("a break, BREAKFAST").fragments)


def test_unbalanced_and_wild_weights_are_said():
    assert parse_attention("(unbalanced").warnings
    assert parse_attention("a ] b").warnings
    assert any("outside" in w for w in parse_attention("(cat:9)").warnings)
    assert not parse_attention("(cat:1.4), [dog]").warnings


WIKI_EDITS = (
    "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
    "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]"
)


def test_prompt_editing_follows_the_wiki_example_of_100_steps():
    texts = prompt_schedule(WIKI_EDITS, 100).texts
    assert texts[0] == "fantasy landscape with a mountain and an oak in foreground shoddy"
    assert texts[25] == "fantasy landscape with a lake and an oak in foreground in background shoddy"
    assert texts[50] == "fantasy landscape with a lake and an oak in foreground in background masterful"
    assert texts[60] == "fantasy landscape with a lake and an oak in background masterful"
    assert texts[75] == "fantasy landscape with a lake and a christmas tree in background masterful"
    changes = [i for i in range(1, 100) if texts[i] != texts[i - 1]]
    assert changes == [25, 50, 60, 75]


def test_edit_by_step_number_and_the_short_forms():
    assert prompt_schedule("a [fantasy:cyberpunk:16] landscape", 20).texts[15:17] == (
        "a fantasy landscape", "a cyberpunk landscape")
    assert prompt_schedule("a [red:2] cat", 4).texts == ("a  cat", "a  cat", "a red cat", "a red cat")
    assert prompt_schedule("a [red::2] cat", 4).texts == ("a red cat", "a red cat", "a  cat", "a  cat")


def test_alternation_and_nesting_keep_emphasis():
    assert prompt_schedule("[cow|horse] in a field", 3).texts == ("cow in a field", "horse in a field", "cow in a field")
    assert prompt_schedule("[[a:b:1]|c]", 4).texts == ("a", "c", "b", "c")
    assert prompt_schedule("((x [y:z:2]:1.2))", 3).texts == ("((x y:1.2))", "((x y:1.2))", "((x z:1.2))")
    assert prompt_schedule(r"\[a:b:1\] [x]", 2).is_static


def test_a_bad_edit_reads_the_whole_prompt_plainly_and_says_so():
    schedule = prompt_schedule("a [red:blue] [x:y:1] cat", 4)
    assert schedule.is_static and schedule.texts == ("a [red:blue] [x:y:1] cat",)
    assert "neither an edit nor an alternation" in schedule.warnings[0]


def test_chunks_back_off_to_the_last_comma():
    tokens = {"a": [1], ",": [9], "b": [2]}

    def tokenize(text):
        return [t for ch in text.split() for t in tokens[ch]]

    from studio.prompts.attention import Fragment

    # 14-token window: back-off 3; the comma at position 12 leaves 2 tokens, so they move on.
    words = " ".join(["a"] * 12 + [","] + ["b"] * 4)
    chunks = chunk_tokens([Fragment(words)], tokenize, 14, 9)
    assert [len(c.ids) for c in chunks] == [13, 4]
    assert chunks[1].ids == [2, 2, 2, 2]
    # A comma too far from the end: a plain cut at 14.
    words = " ".join(["a"] * 5 + [","] + ["b"] * 12)
    assert [len(c.ids) for c in chunk_tokens([Fragment(words)], tokenize, 14, 9)] == [14, 4]
    # BREAK ends a chunk; an empty prompt is one empty chunk.
    chunks = chunk_tokens(parse_attention("a BREAK b").fragments, tokenize, 14, 9)
    assert [c.ids for c in chunks] == [[1], [2]]
    assert chunk_tokens(parse_attention("").fragments, tokenize, 14, 9)[0].ids == []
    assert isinstance(chunks[0], Chunk)


def test_token_counter_reads_the_tokenizer_files_without_torch():
    counter = TokenCounter(TINY_TOKENIZER)
    assert counter.size == 14
    assert counter.label("a red circle") == "3/14"
    long = ", ".join(["a big red circle"] * 4)
    total = len(counter.tokenize(long))
    assert total > 14
    assert counter.label(long) == f"{total}/28 ({' + '.join(map(str, counter.chunk_counts(long)))})"
    assert counter.chunk_counts("a BREAK b") == [1, 1]
    assert counter.label("<lora:detail:0.5> a red circle") == "3/14"


# Hostile strings: brackets, escapes, colons, bars, BREAK and numbers, in any order.
_PIECES = st.sampled_from(list("()[]:|\\ ,.") + ["BREAK", "1.5", "0.3", "9", "-2", "cat", "\n", "(x:1.2)", "[a:b:3]"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_PIECES, max_size=80).map("".join)), st.integers(1, 60))
def test_no_string_breaks_the_parser(text, steps):
    schedule = prompt_schedule(text, steps)
    assert len(schedule.texts) in (1, steps)
    for step_text in set(schedule.texts):
        attention = parse_attention(step_text)
        assert attention.fragments
        assert all(isinstance(f.weight, float) for f in attention.fragments)


def test_deep_nesting_and_long_prompts_stay_fast():
    import time

    started = time.perf_counter()
    prompt_schedule("[" * 20_000 + "a" + "]" * 20_000, 20)
    prompt_schedule("(" * 50_000, 20)
    parse_attention("((a:1.2)) " * 10_000)
    assert time.perf_counter() - started < 5

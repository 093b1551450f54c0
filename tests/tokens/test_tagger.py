"""The category tagger: fixed rules, whitespace tokens join the next word, deterministic."""

from __future__ import annotations

import re

from selfprune.tokens.data import generate_chains
from selfprune.tokens.tagger import CATEGORIES, tag_tokens


def _word_spans(text):
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def test_each_category_on_a_worked_sentence():
    question = "Maria has 12 apples in 3 baskets."
    chain = "First, she buys 3 more apples, so 12 + 3 = 15 apples in total with Tom."
    spans = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]", chain)]
    words = [chain[s:e] for s, e in spans]
    got = dict(zip(words, tag_tokens(chain, spans, question=question), strict=False))
    assert got["First"] == "meta_discourse"
    assert got["so"] == "meta_discourse"
    assert got["she"] == "coreference"
    assert got["buys"] == "verbal_math"
    assert got["more"] == "verbal_math"
    assert got["total"] == "verbal_math"
    assert got["12"] == got["+"] == got["="] == got["15"] == "symbolic_math"
    assert got["apples"] == "entity_name"  # a problem object named in the question
    assert got["Tom"] == "entity_name"  # a capitalised name
    assert got["in"] == got["with"] == got[","] == got["."] == "function"


def test_whitespace_token_takes_the_next_word_and_x_between_numbers_is_math():
    chain = "It is 4 x 5 or x."
    # tokens: "It", " is", " ", "4", " x", " ", "5", " or", " x", "."
    spans = [(0, 2), (2, 5), (5, 6), (6, 7), (7, 9), (9, 10), (10, 11), (11, 14), (14, 16), (16, 17)]
    cats = tag_tokens(chain, spans)
    assert cats == ["coreference", "function", "symbolic_math", "symbolic_math", "symbolic_math",
                    "symbolic_math", "symbolic_math", "function", "function", "function"]


def test_subword_tokens_take_the_word_they_overlap_most():
    chain = "Fatima's muffins cost $12.50 each."
    spans = [(0, 3), (3, 6), (6, 8), (8, 13), (13, 16), (16, 21), (21, 23), (23, 25), (25, 28),
             (28, 33), (33, 34)]
    cats = tag_tokens(chain, spans, question="How much do the muffins cost?")
    assert cats[:2] == ["entity_name", "entity_name"]
    assert cats[3:5] == ["entity_name", "entity_name"]  # "muffins" in the question
    assert cats[6:9] == ["symbolic_math"] * 3  # " $", "12", ".50"
    assert cats[9] == "verbal_math"  # each


def test_deterministic_and_total_on_generated_chains():
    for row in generate_chains(20, seed=2):
        spans = [(i, i + 1) for i in range(len(row["chain"]))]
        a = tag_tokens(row["chain"], spans, question=row["question"])
        assert a == tag_tokens(row["chain"], spans, question=row["question"])
        assert len(a) == len(spans) and set(a) <= set(CATEGORIES)
        assert {"symbolic_math", "function", "entity_name"} <= set(a)


def test_empty_and_trailing_spans():
    assert tag_tokens("ab ", [(0, 2), (2, 3), (3, 3)]) == ["function", "function", "function"]
    assert tag_tokens("", []) == []

"""Greedy search: the fast exact path makes the naive reference's choices; approx is measured."""

from __future__ import annotations

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.tokens.greedy import distinct_candidates, greedy_prune
from selfprune.tokens.objective import ChainScorer, Objective, build_layout

CASES = [
    ("Tom has 3 apples. He buys 2 more. How many?", "He buys 2 more: 3 + 2 = 5.", "5"),
    ("Ann has 8 pens and gives 3 away. How many are left?", "So 8 - 3 = 5 pens left.", "5"),
]


def _run(lm_model, tok, case, search, kind="answer", unit="token", frac=0.6, **kw):
    layout = build_layout(tok, *case, unit=unit)
    scorer = ChainScorer(lm_model, layout, Objective(kind, 0.5), batch_tokens=64)
    n_steps = int(frac * (len(layout.units) - 1))
    return layout, scorer, greedy_prune(scorer, n_steps, search=search, **kw)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind,unit", [("answer", "token"), ("joint", "token"), ("answer", "word")])
def test_exact_fast_path_equals_naive(char_tokenizer, tiny64, case, kind, unit):
    _, _, naive = _run(tiny64, char_tokenizer, case, "naive", kind, unit)
    _, _, fast = _run(tiny64, char_tokenizer, case, "exact", kind, unit)
    assert fast.order == naive.order
    np.testing.assert_allclose(fast.values, naive.values, rtol=0, atol=1e-9)
    assert fast.forward_tokens < naive.forward_tokens / 2  # the point of the fast path


def test_trace_matches_uncached_evaluation(char_tokenizer, tiny32):
    """J after each deletion, as the search saw it, equals an independent uncached forward."""
    layout, scorer, res = _run(tiny32, char_tokenizer, CASES[0], "exact", frac=1.0)
    kept = set(range(len(layout.units)))
    sets = []
    for u in res.order:
        kept.discard(u)
        sets.append(layout.unit_tokens(sorted(kept)))
    np.testing.assert_allclose(res.values, scorer.evaluate(sets), rtol=0, atol=1e-4)
    assert res.initial == pytest.approx(scorer.evaluate([list(range(len(layout.chain)))])[0], abs=1e-4)
    # greedy picks the best single deletion: no candidate at step 1 beats the one chosen
    state = scorer.current(list(range(len(layout.units))))
    first = scorer.candidates(state, list(range(len(layout.units))))
    assert res.values[0] == pytest.approx(first.max(), abs=1e-9)


def test_deterministic(char_tokenizer, tiny32):
    a = _run(tiny32, char_tokenizer, CASES[1], "exact")[2]
    b = _run(tiny32, char_tokenizer, CASES[1], "exact")[2]
    assert a.order == b.order and a.values == b.values


def test_approx_with_one_per_step_and_no_prerank_is_exact(char_tokenizer, tiny64):
    exact = _run(tiny64, char_tokenizer, CASES[0], "exact")[2]
    approx = _run(tiny64, char_tokenizer, CASES[0], "approx", per_step=1, rescore=0)[2]
    assert approx.order == exact.order


@pytest.mark.parametrize("prerank", ["stale", "gradient"])
def test_approx_orders_are_valid_and_report_true_values(char_tokenizer, tiny64, prerank):
    layout, scorer, exact = _run(tiny64, char_tokenizer, CASES[0], "exact", frac=1.0)
    n = len(layout.units)
    for per_step, rescore in [(2, 0), (1, 6), (3, 6)]:
        _, _, approx = _run(tiny64, char_tokenizer, CASES[0], "approx", frac=1.0,
                            per_step=per_step, rescore=rescore, prerank=prerank)
        assert len(set(approx.order)) == len(approx.order) == len(exact.order)
        assert approx.forward_tokens < exact.forward_tokens
        # every J it reports is the J of the chain it kept (an independent uncached forward)
        kept, sets, reported = set(range(n)), [], []
        for u, v in zip(approx.order, approx.values, strict=True):
            kept.discard(u)
            if not np.isnan(v):
                sets.append(layout.unit_tokens(sorted(kept)))
                reported.append(v)
        np.testing.assert_allclose(reported, scorer.evaluate(sets), rtol=0, atol=1e-9)
        assert np.isfinite(approx.values[-1])  # exact J is known at the end of every round


def test_approx_stale_refreshing_every_candidate_is_exact(char_tokenizer, tiny64):
    """With ``refresh`` as large as the chain, every round re-scores every unit: exact greedy."""
    layout, _, exact = _run(tiny64, char_tokenizer, CASES[0], "exact", frac=1.0)
    n = len(layout.units)
    full = _run(tiny64, char_tokenizer, CASES[0], "approx", frac=1.0, per_step=1, rescore=1, refresh=n)[2]
    some = _run(tiny64, char_tokenizer, CASES[0], "approx", frac=1.0, per_step=1, rescore=1, refresh=2)[2]
    assert full.order == exact.order
    assert some.forward_tokens < full.forward_tokens


def test_approx_stale_rescores_all_in_first_round(char_tokenizer, tiny64):
    """The lazy pre-ranking starts from exact scores: its first deletion is exact greedy's."""
    exact = _run(tiny64, char_tokenizer, CASES[1], "exact")[2]
    approx = _run(tiny64, char_tokenizer, CASES[1], "approx", per_step=1, rescore=4)[2]
    assert approx.order[0] == exact.order[0]


def test_distinct_candidates_skip_repeats(char_tokenizer):
    layout = build_layout(char_tokenizer, "Q", "abba 11 1", "1")
    kept = list(range(len(layout.units)))
    # "a b b a ␣ 1 1 ␣ 1": the second b and the second 1 of "11" repeat their left neighbour
    assert distinct_candidates(layout, kept) == [0, 1, 3, 4, 5, 7, 8]


def test_repeated_tokens_keep_naive_and_fast_in_step(char_tokenizer, tiny64):
    case = ("Q: 11 + 11?", "11 + 11 = 22, so 22.", "22")
    _, _, naive = _run(tiny64, char_tokenizer, case, "naive", frac=1.0)
    _, _, fast = _run(tiny64, char_tokenizer, case, "exact", frac=1.0)
    assert fast.order == naive.order


def test_errors(char_tokenizer, tiny64):
    layout = build_layout(char_tokenizer, *CASES[0])
    scorer = ChainScorer(tiny64, layout, Objective())
    with pytest.raises(InvalidInputError, match="search"):
        greedy_prune(scorer, 2, search="beam")
    with pytest.raises(InvalidInputError, match="rescore"):
        greedy_prune(scorer, 2, search="approx", per_step=4, rescore=2)
    with pytest.raises(InvalidInputError, match="prerank"):
        greedy_prune(scorer, 2, search="approx", prerank="oracle")
    with pytest.raises(InvalidInputError, match="n_steps"):
        greedy_prune(scorer, len(layout.units))


@pytest.mark.parametrize("search", ["exact", "naive"])
def test_start_with_greedys_own_first_choices_replays_it(char_tokenizer, tiny64, search):
    layout, _, full = _run(tiny64, char_tokenizer, CASES[1], search, frac=1.0)
    scorer = ChainScorer(tiny64, layout, Objective("answer", 0.5), batch_tokens=64)
    resumed = greedy_prune(scorer, len(full.order), search=search, start=full.order[:3])
    assert resumed.order == full.order
    np.testing.assert_allclose(resumed.values, full.values[3:], rtol=0, atol=1e-12)


def test_start_errors(char_tokenizer, tiny64):
    layout = build_layout(char_tokenizer, *CASES[0])
    scorer = ChainScorer(tiny64, layout, Objective())
    with pytest.raises(InvalidInputError, match="distinct"):
        greedy_prune(scorer, 3, start=[1, 1])
    with pytest.raises(InvalidInputError, match="distinct"):
        greedy_prune(scorer, 1, start=[1, 2])
    with pytest.raises(InvalidInputError, match="start unit"):
        greedy_prune(scorer, 2, start=[len(layout.units)])

"""On the real default model (SmolLM2-135M, packaged weights): the cache is exact, and greedy
retains more answer likelihood than surprisal and random deletion on generated chains."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    import torch

    from selfprune.tokens.model import load_causal_lm

    before = torch.get_num_threads()
    lm = load_causal_lm("smollm2-135m", threads=1)  # the user cache: ~3 s once converted
    yield lm
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def short_generated(smol):
    """Two generated problems whose chains are 45 to 60 SmolLM2 tokens (seeded)."""
    from selfprune.tokens.data import generate_chains

    rows = generate_chains(60, seed=7, min_steps=2, max_steps=3, min_tokens=40, max_tokens=70)
    n = [len(smol.tokenizer(r["chain"], add_special_tokens=False)["input_ids"]) for r in rows]
    picked = [r for r, k in zip(rows, n, strict=True) if 45 <= k <= 60][:2]
    assert len(picked) == 2
    return picked


def test_cached_scores_equal_uncached_on_smollm2(smol, short_generated):
    from selfprune.tokens.objective import ChainScorer, Objective, build_layout

    r = short_generated[0]
    layout = build_layout(smol.tokenizer, r["question"], r["chain"], r["answer"])
    assert smol.tokenizer.decode(list(layout.prefix)).startswith("<|im_start|>system")  # chat template
    kept = list(range(len(layout.units)))
    for kind, every in (("answer", 4), ("joint", 9)):
        scorer = ChainScorer(smol.model, layout, Objective(kind))
        state = scorer.current(kept)
        cands = [*range(0, len(kept), every), len(kept) - 1]  # spread over the chain, and the last
        fast = scorer.candidates(state, cands)
        sets = [layout.unit_tokens([u for j, u in enumerate(kept) if j != c]) for c in cands]
        np.testing.assert_allclose(fast, scorer.evaluate(sets), rtol=0, atol=1e-4)
        assert state.value == pytest.approx(scorer.evaluate([state.tokens])[0], abs=1e-4)


def test_greedy_retains_at_least_surprisal_and_random(smol, short_generated):
    """Mean answer log-likelihood over the chains, at every keep ratio on the curve.

    Greedy here is the approximate search (lazy pre-ranking, 2 deletions per round) to keep the
    test to a couple of minutes on 2 cores; docs/tokens.md reports its agreement with exact."""
    from selfprune.tokens.prune import TokenPruner
    from selfprune.tokens.report import retention_table

    pruner = TokenPruner(smol, keep=0.5, search="approx", per_step=2, rescore=8, curve_step=0.125)
    results = [pruner.prune(r) for r in short_generated]
    table = retention_table(results)
    greedy = np.array(table.methods["greedy"].mean)
    for other in ("surprisal", "random"):
        assert np.all(greedy >= np.array(table.methods[other].mean) - 1e-9), (other, table)


def test_token_texts_tile_the_chain_with_byte_level_tokens(smol):
    """Characters split over several byte-level tokens (÷, emoji) are not repeated in the texts."""
    from selfprune.tokens.objective import build_layout

    chain = "So 39 ÷ 3 = 13, naïve “quotes” 😀 done.\n\nNext"
    for unit in ("token", "word"):
        layout = build_layout(smol.tokenizer, "q", chain, "13", unit=unit)
        assert "".join(chain[s:e] for s, e in layout.spans) == chain
        assert smol.tokenizer.decode(list(layout.chain)) == chain
    words = [chain[layout.spans[s][0]: layout.spans[e - 1][1]] for s, e in layout.units]
    assert " ÷" in words and " 😀" in words

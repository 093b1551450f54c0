"""J(S): the cached fast path, the naive reference and the uncached batched scorer agree."""

from __future__ import annotations

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.tokens.objective import ChainScorer, Objective, build_layout, score_sequences

QUESTION = "Mia has 7 cards. She buys 5 more. How many?"
CHAIN = "She gets 5 more, so 7 + 5 = 12 cards."


def _all_scores(scorer):
    layout = scorer.layout
    kept = list(range(len(layout.units)))
    state = scorer.current(kept)
    cands = list(range(len(kept)))
    fast = scorer.candidates(state, cands)
    naive = scorer.naive_candidates(kept, cands)
    sets = [layout.unit_tokens([u for j, u in enumerate(kept) if j != c]) for c in cands]
    uncached = scorer.evaluate(sets)
    return state, fast, naive, uncached


@pytest.mark.parametrize("kind", ["answer", "joint"])
@pytest.mark.parametrize("unit", ["token", "word"])
def test_cached_equals_naive_and_uncached_float64(char_tokenizer, tiny64, kind, unit):
    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "12", unit=unit)
    scorer = ChainScorer(tiny64, layout, Objective(kind, 0.7), batch_tokens=48)
    state, fast, naive, uncached = _all_scores(scorer)
    assert np.ptp(naive) > 1e-3  # candidates really differ: equality below is meaningful
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-9)
    np.testing.assert_allclose(uncached, naive, rtol=0, atol=1e-9)
    assert state.value == pytest.approx(scorer.evaluate([state.tokens])[0], abs=1e-9)


@pytest.mark.parametrize("kind", ["answer", "joint"])
def test_cached_equals_uncached_float32_to_1e4(char_tokenizer, tiny32, kind):
    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "12")
    scorer = ChainScorer(tiny32, layout, Objective(kind), batch_tokens=64)
    _, fast, naive, uncached = _all_scores(scorer)
    np.testing.assert_allclose(fast, uncached, rtol=0, atol=1e-4)
    np.testing.assert_allclose(naive, uncached, rtol=0, atol=1e-4)


@pytest.mark.parametrize("batch_tokens", [16, 40, 4096])
def test_batching_does_not_change_scores(char_tokenizer, tiny64, batch_tokens):
    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "12")
    ref = ChainScorer(tiny64, layout, Objective("joint"), batch_tokens=16)
    other = ChainScorer(tiny64, layout, Objective("joint"), batch_tokens=batch_tokens)
    kept = list(range(len(layout.units)))
    a = ref.candidates(ref.current(kept), list(range(len(kept))))
    b = other.candidates(other.current(kept), list(range(len(kept))))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_left_padding_is_exact(char_tokenizer, tiny32):
    """A batch of sequences of very different lengths scores like each sequence alone."""
    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "12")
    n = len(layout.chain)
    sets = [list(range(n)), list(range(0, n, 3)), [], [n - 1], list(range(n // 2))]
    seqs = [layout.sequence(s) for s in sets]
    kw = dict(n_prefix=len(layout.prefix), n_tail=len(layout.tail), n_answer=layout.n_answer,
              need_chain=True)
    batched = score_sequences(tiny32, seqs, batch_tokens=10_000, **kw)
    alone = [score_sequences(tiny32, [s], batch_tokens=10_000, **kw) for s in seqs]
    for j in range(2):
        np.testing.assert_allclose(batched[j], [a[j][0] for a in alone], rtol=0, atol=1e-4)


def test_no_connector_single_token_answer_edge_case(char_tokenizer, tiny64):
    """Without a connector, deleting the last unit makes the answer follow the cached prefix."""
    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "7", connector="")
    assert len(layout.tail) == layout.n_answer == 1  # just "7": nothing left to recompute
    layout1 = build_layout(char_tokenizer, QUESTION, CHAIN, "7", connector=" =")
    for lay in (layout, layout1):
        for kind in ("answer", "joint"):
            scorer = ChainScorer(tiny64, lay, Objective(kind), batch_tokens=32)
            _, fast, naive, _ = _all_scores(scorer)
            np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["answer", "joint"])
def test_gradient_estimate_is_the_first_order_term(char_tokenizer, tiny64, kind):
    """-dJ/db_u from the estimate matches a finite difference of J in a key's attention bias,
    computed independently (full sequence, no cache, explicit 4-D mask)."""
    import torch

    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "12")
    scorer = ChainScorer(tiny64, layout, Objective(kind, 0.5))
    kept = list(range(len(layout.units)))
    state = scorer.current(kept)
    before = scorer.forward_tokens
    est = scorer.gradient_estimate(state)
    n_body = len(layout.chain) + len(layout.tail) - 1
    assert scorer.forward_tokens - before == 3 * n_body
    seq = torch.tensor([layout.sequence(state.tokens)])
    N, P, K, A = seq.shape[1], len(layout.prefix), len(layout.chain), layout.n_answer

    def J(bias_col, eps):
        mask = torch.full((N, N), torch.finfo(torch.float64).min, dtype=torch.float64).triu(1)
        mask[bias_col:, bias_col] += eps
        with torch.inference_mode():
            lp = torch.log_softmax(tiny64(input_ids=seq, attention_mask=mask[None, None]).logits[0, :-1], -1)
            lp = lp.gather(-1, seq[0, 1:, None])[:, 0].numpy()
        return Objective(kind, 0.5).combine(lp[-A:].sum(), lp[P - 1: P - 1 + K].sum(), K, A)

    lsum = state.token_lp[:K]
    for u in (0, 5, K - 1):
        eps = 1e-2  # Llama's RMSNorm runs in float32 even in a float64 model: keep eps coarse
        grad = (J(P + u, eps) - J(P + u, -eps)) / (2 * eps)
        own = 0.0
        if kind == "joint":
            own = float(Objective(kind, 0.5).combine(0.0, state.chain_lp - lsum[u], K - 1, A)
                        - Objective(kind, 0.5).combine(0.0, state.chain_lp, K, A))
        assert est[u] == pytest.approx(state.value - grad + own, abs=5e-4)


def test_layout_units_and_prompt(char_tokenizer):
    lay = build_layout(char_tokenizer, "Q?", "ab cd  e", "1", unit="word")
    assert lay.units == ((0, 2), (2, 5), (5, 6), (6, 8))  # "ab", " cd", " ", " e"
    assert [char_tokenizer.decode(list(lay.chain[s:e])) for s, e in lay.units] == ["ab", " cd", " ", " e"]
    assert char_tokenizer.decode(list(lay.prefix)) == "Question: Q?\nSolution:\n"
    assert char_tokenizer.decode(list(lay.tail)) == "\nThe answer is 1"
    assert lay.n_answer == 2
    tok = build_layout(char_tokenizer, "Q?", "ab cd", "1", unit="token")
    assert tok.units == tuple((i, i + 1) for i in range(5))
    assert tok.spans == tuple((i, i + 1) for i in range(5))


def test_layout_errors(char_tokenizer):
    with pytest.raises(InvalidInputError, match="chat template"):
        build_layout(char_tokenizer, "Q", "c", "1", prompt="chat")
    with pytest.raises(InvalidInputError, match="unit"):
        build_layout(char_tokenizer, "Q", "c", "1", unit="sentence")
    with pytest.raises(InvalidInputError, match="prompt"):
        build_layout(char_tokenizer, "Q", "c", "1", prompt="fancy")
    with pytest.raises(InvalidInputError, match="kind"):
        Objective("fluency")
    with pytest.raises(InvalidInputError, match="weight"):
        Objective("joint", -1)


def test_joint_weight_zero_is_answer(char_tokenizer, tiny64):
    layout = build_layout(char_tokenizer, QUESTION, CHAIN, "12")
    kept = list(range(len(layout.units)))
    a = ChainScorer(tiny64, layout, Objective("answer"))
    j = ChainScorer(tiny64, layout, Objective("joint", 0.0))
    sa = a.candidates(a.current(kept), list(range(len(kept))))
    sj = j.candidates(j.current(kept), list(range(len(kept))))
    np.testing.assert_allclose(sa, sj, rtol=0, atol=1e-12)


def test_output_head_gets_a_contiguous_input_and_the_same_logits(tiny64):
    """Kept logits go through one plain product (not a batched one over copies of the weight)."""
    import torch

    from selfprune.tokens.objective import _Runner

    run = _Runner(tiny64)
    _Runner(tiny64)  # a second runner on the same model adds no second hook
    head = tiny64.get_output_embeddings()
    assert len(head._forward_pre_hooks) == 1
    seen = []
    probe = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].is_contiguous()))
    ids = torch.arange(2 * 9).reshape(2, 9) % (tiny64.config.vocab_size - 1) + 1
    try:
        with torch.inference_mode():
            kept, _ = run(ids, keep=3)
            full = tiny64(input_ids=ids).logits
    finally:
        probe.remove()
    assert seen[0] is True
    torch.testing.assert_close(kept, full[:, -3:], rtol=0, atol=1e-12)

"""D2 pruning: hand-computed message passing, diversity from the reverse pass, ids and order."""

from __future__ import annotations

import numpy as np
import pytest

from selfprune.d2 import d2_rows, d2_select
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores
from selfprune.select import Selection


def two_blobs(seed=0, n=100):
    """Blob A (harder: difficulty ~0.9) and blob B (a little easier: ~0.8), far apart.

    The first row of B has difficulty 0, so the min-max scaled difficulties keep B close to A.
    """
    rng = np.random.default_rng(seed)
    a = np.eye(8)[0] + 0.05 * rng.normal(size=(n, 8))
    b = np.eye(8)[1] + 0.05 * rng.normal(size=(n, 8))
    x = np.vstack([a, b]).astype(np.float32)
    diff = np.concatenate([0.9 + 0.01 * rng.random(n), 0.8 + 0.01 * rng.random(n)])
    diff[n] = 0.0
    return x, diff


def test_forward_and_reverse_passes_by_hand():
    # path graph 0 - 1 - 2 with k = 1 neighbour each
    values = np.array([0.0, 1.0, 0.5])
    dist = np.array([[1.0], [1.0], [2.0]])
    nbr = np.array([[1], [0], [1]])
    ids = np.arange(3)
    # scaled s = [0, 1, .5]; g = s + exp(-d) s[nbr] = [e^-1, 1 + 0, .5 + e^-2]
    g0 = np.array([np.exp(-1), 1.0, 0.5 + np.exp(-2)])
    order = d2_rows(values, dist, nbr, 3, ids=ids)
    assert order[0] == 1  # highest g
    # picking 1 lowers its neighbour 0: g0 = e^-1 - e^-1 * 1 = 0; then 2 (0.635) before 0
    assert order.tolist() == [1, 2, 0]
    # no reverse pass (gamma_reverse huge): plain order of g
    plain = d2_rows(values, dist, nbr, 3, ids=ids, gamma_reverse=1e9)
    assert plain.tolist() == list(np.argsort(-g0))


def test_reverse_pass_spreads_selection_over_both_blobs():
    x, diff = two_blobs(n=40)
    s = Scores(np.arange(80), diff, "difficulty")
    sel = d2_select(s, x, 20, k=10)
    assert isinstance(sel, Selection) and sel.policy == "d2" and sel.n_total == 80
    assert sel.details == {"keep": 20, "k": 10, "seed": 0}
    kept = sel.ids
    assert len(kept) == 20 and np.all(np.diff(kept) > 0)
    from_b = int((kept >= 40).sum())
    # without the reverse pass the same forward scores pick only the harder blob
    plain = d2_select(s, x, 20, k=10, gamma_reverse=1e9).ids
    assert int((plain >= 40).sum()) == 0
    assert from_b > 0


def test_keep_all_and_fraction():
    x, diff = two_blobs(n=30)
    s = Scores(np.arange(60), diff, "difficulty")
    assert d2_select(s, x, 1.0, k=5).ids.tolist() == list(range(60))
    assert len(d2_select(s, x, 0.25, k=5)) == 15


def test_ids_align_and_order_does_not_matter():
    x, diff = two_blobs(seed=3, n=60)
    ids = np.arange(120) * 7 + 11
    s = Scores(ids, diff, "difficulty")
    ref = d2_select(s, x, 30, k=6).ids
    assert set(ref.tolist()) <= set(ids.tolist())
    perm = np.random.default_rng(0).permutation(120)
    # embeddings in another order, matched by ids=
    again = d2_select(s, x[perm], 30, k=6, ids=ids[perm]).ids
    assert np.array_equal(ref, again)
    # both permuted together
    s2 = Scores(ids[perm], diff[perm], "difficulty")
    assert np.array_equal(ref, d2_select(s2, x[perm], 30, k=6).ids)


def test_negative_scores_are_fine():
    x, diff = two_blobs(seed=4, n=40)
    a = d2_select(Scores(np.arange(80), diff, "d"), x, 10, k=5).ids
    b = d2_select(Scores(np.arange(80), 3 * diff - 10, "d"), x, 10, k=5).ids
    assert np.array_equal(a, b)  # min-max scaling: any increasing affine map gives the same pick


def test_bad_input():
    x, diff = two_blobs(n=10)
    s = Scores(np.arange(20), diff, "difficulty")
    with pytest.raises(InvalidInputError, match="scores must be a Scores"):
        d2_select(diff, x, 5)
    with pytest.raises(InvalidInputError, match="k must be"):
        d2_select(s, x, 5, k=20)
    with pytest.raises(InvalidInputError, match="keep"):
        d2_select(s, x, 0)
    with pytest.raises(InvalidInputError, match="19 embedding rows|20 scores for 19"):
        d2_select(s, x[:19], 5)
    with pytest.raises(InvalidInputError, match="not in the scores"):
        d2_select(s, x, 5, ids=np.arange(20) + 100)
    with pytest.raises(InvalidInputError, match="gamma_forward"):
        d2_select(s, x, 5, gamma_forward=-1)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        d2_select(s, bad, 5)

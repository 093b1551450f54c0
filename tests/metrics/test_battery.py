"""One battery over every metric: the score contract, ids, determinism, permutation, bad input.

Each entry builds a metric's inputs for N examples from one seeded generator, with the example
axis where that metric expects it, so the same checks run over all of them.
"""

from __future__ import annotations

import numpy as np
import pytest

import selfprune as sp
from selfprune import InvalidInputError, Scores, ScoreTable

N = 60
RNG = np.random.default_rng(0)
EMB = np.vstack([np.eye(4, 8)[RNG.integers(0, 4, N - 2)] + 0.1 * RNG.normal(size=(N - 2, 8)), RNG.normal(size=(2, 8))])
LABELS = RNG.integers(0, 3, N)
LOGITS = RNG.normal(size=(N, 3)) * 2
MARGINS = RNG.normal(size=(N, 5))
CORRECT = (RNG.random((N, 6)) > 0.4).astype(float)
PROBS = RNG.random((N, 6))
RUN_CORRECT = (RNG.random((8, N)) > 0.5).astype(float)
IN_TRAIN = RNG.random((8, N)) > 0.5


def _first(table_or_scores):
    return table_or_scores if isinstance(table_or_scores, Scores) else next(iter(table_or_scores.values()))


# name -> (call(perm, ids) -> Scores or ScoreTable, permutation-equivariant exactly?)
METRICS = {
    "prototypes": (lambda p, ids: sp.prototypes(EMB[p], k=4, ids=ids), False),
    "class_prototypes": (lambda p, ids: sp.class_prototypes(EMB[p], LABELS[p], ids=ids), True),
    "knn_density": (lambda p, ids: sp.knn_density(EMB[p], k=5, ids=ids), True),
    "random_scores": (lambda p, ids: sp.random_scores(np.arange(N) if ids is None else ids, seed=0), False),
    "el2n": (lambda p, ids: sp.el2n(LOGITS[p], LABELS[p], ids=ids), True),
    "aum": (lambda p, ids: sp.aum(MARGINS[p], ids=ids), True),
    "forgetting": (lambda p, ids: sp.forgetting(CORRECT[p], ids=ids), True),
    "cartography": (lambda p, ids: sp.cartography(PROBS[p], CORRECT[p], ids=ids), True),
    "memorization": (lambda p, ids: sp.memorization(RUN_CORRECT[:, p], IN_TRAIN[:, p], ids=ids), True),
}


EXACT = sorted(k for k, (_, exact) in METRICS.items() if exact)
WITH_DATA = sorted(k for k in METRICS if k != "random_scores")  # random_scores takes only ids


@pytest.fixture(params=sorted(METRICS))
def metric(request):
    return request.param, *METRICS[request.param]


def test_contract(metric):
    name, call, _ = metric
    ident = np.arange(N)
    out = call(ident, np.arange(100, 100 + N))
    tables = [out] if isinstance(out, Scores) else list(out.values())
    assert isinstance(out, Scores | ScoreTable)
    for s in tables:
        assert s.values.dtype == np.float64 and s.values.shape == (N,)
        assert np.all(np.isfinite(s.values))
        assert s.ids.tolist() == list(range(100, 100 + N))
        assert s.meta["metric"] == s.name and "selfprune_version" in s.meta


def test_deterministic(metric):
    _, call, _ = metric
    a, b = _first(call(np.arange(N), None)), _first(call(np.arange(N), None))
    assert np.array_equal(a.values, b.values)


@pytest.mark.parametrize("name", EXACT)
def test_permuting_examples_permutes_scores(name):
    """Not for prototypes (faiss seeds k-means from row positions) nor random (draws by position)."""
    call = METRICS[name][0]
    perm = np.random.default_rng(1).permutation(N)
    base = _first(call(np.arange(N), np.arange(N)))
    moved = _first(call(perm, perm))
    np.testing.assert_allclose(moved.values, base.values[perm], atol=1e-9)


@pytest.mark.parametrize("name", WITH_DATA)
def test_misaligned_ids_rejected(name):
    call = METRICS[name][0]
    with pytest.raises(InvalidInputError, match="ids"):
        call(np.arange(N), np.arange(N - 1))


def test_duplicate_ids_rejected(metric):
    _, call, _ = metric
    ids = np.arange(N)
    ids[3] = ids[4]
    with pytest.raises(InvalidInputError, match="unique"):
        call(np.arange(N), ids)

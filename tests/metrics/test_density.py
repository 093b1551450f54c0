"""kNN density: hand-computed cases, sparse = hard, exact vs approximate index, order invariance."""

from __future__ import annotations

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.metrics.density import knn_density, knn_graph
from selfprune.scores import Scores


def test_hand_computed_l2_on_a_line():
    x = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)
    s = knn_density(x, k=1, metric="l2")
    assert isinstance(s, Scores) and s.name == "density"
    np.testing.assert_allclose(s.values, [1.0, 1.0, 2.0, 4.0], rtol=1e-6)
    s2 = knn_density(x, k=2, metric="l2")
    expected = [(1 + 3) / 2, (1 + 2) / 2, (2 + 3) / 2, (4 + 6) / 2]
    np.testing.assert_allclose(s2.values, expected, rtol=1e-6)


def test_hand_computed_cosine():
    angles = np.deg2rad([0.0, 10.0, 30.0, 90.0])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1) * [[1], [2], [5], [0.5]]
    x = x.astype(np.float32)
    s = knn_density(x, k=1)
    expected = 1 - np.cos(np.deg2rad([10.0, 10.0, 20.0, 60.0]))
    np.testing.assert_allclose(s.values, expected, atol=1e-6)
    assert s.meta["metric"] == "density" and s.meta["distance"] == "cosine" and s.meta["k"] == 1


def test_outliers_score_hardest():
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(500, 8)) * 0.05 + np.eye(8)[0]
    outliers = rng.normal(size=(10, 8))
    x = np.vstack([blob, outliers]).astype(np.float32)
    s = knn_density(x, k=10)
    hardest = set(s.order()[:10].tolist())
    assert hardest == set(range(500, 510))


def test_self_is_excluded_even_among_identical_rows():
    x = np.vstack([np.ones((5, 3)), [[1.0, -1.0, 0.0]]]).astype(np.float32)
    dist, nbr = knn_graph(x, 2, metric="l2")
    for i in range(6):
        assert i not in nbr[i]
    np.testing.assert_allclose(dist[:5], 0.0, atol=1e-6)


def test_permuting_input_permutes_scores():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    ids = np.arange(300) + 1000
    a = knn_density(x, k=7, ids=ids)
    perm = rng.permutation(300)
    b = knn_density(x[perm], k=7, ids=ids[perm])
    np.testing.assert_allclose(a.values[perm], b.values, rtol=1e-5, atol=1e-7)
    assert np.array_equal(b.ids, ids[perm])


def test_ivf_index_agrees_with_exact_when_probing_everything():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    exact = knn_density(x, k=5, index="flat")
    approx = knn_density(x, k=5, index="ivf", nlist=16, nprobe=16, seed=0)
    np.testing.assert_allclose(approx.values, exact.values, rtol=1e-5, atol=1e-6)
    fast = knn_density(x, k=5, index="ivf", nlist=32, nprobe=2, seed=0)
    assert np.all(fast.values >= exact.values - 1e-6)  # missing neighbours only lengthen distances
    assert fast.meta["index"] == "ivf" and fast.meta["nprobe"] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be"),
        ({"k": 20}, r"k must be in \[1, N-1=19\]"),
        ({"metric": "manhattan"}, "metric must be one of"),
        ({"index": "hnsw"}, "index must be one of"),
    ],
)
def test_bad_input_raises(kwargs, match):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    with pytest.raises(InvalidInputError, match=match):
        knn_density(x, **kwargs)


def test_bad_embeddings_raise():
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    x[2, 0] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        knn_density(x)
    with pytest.raises(InvalidInputError, match="at least 2 rows"):
        knn_density(np.ones((1, 3), np.float32))
    z = np.ones((5, 3), np.float32)
    z[4] = 0
    with pytest.raises(InvalidInputError, match="zero norm at row 4"):
        knn_density(z, k=2)

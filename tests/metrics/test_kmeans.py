"""The clustering core: the only module that imports faiss, and it gives what faiss gives."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import selfprune
from selfprune.metrics._kernel import kernel
from selfprune.metrics._kmeans import (
    fit_centroids,
    kmeans,
    knn_index,
    nearest_centroids,
    nearest_similarity,
    normalize_rows,
    unit_rows,
)

faiss = pytest.importorskip("faiss")


def _rows(n=600, d=12, seed=0):
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


def test_no_other_module_imports_faiss():
    src = Path(selfprune.__file__).parent
    pattern = re.compile(r"^\s*(import faiss|from faiss)|require\(\s*[\"']faiss", re.M)
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if pattern.search(p.read_text()))
    assert users == ["metrics/_kmeans.py"]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_unit_rows_normalises_a_copy_and_never_the_input(dtype):
    x = np.random.default_rng(4).normal(size=(50, 6)).astype(dtype)
    x[3] = 0  # a zero row stays zero
    before = x.copy()
    got = unit_rows(x, caller="t")
    assert np.array_equal(x, before)  # the caller's chunk is untouched, for float32 views too
    assert got.dtype == np.float32 and not np.may_share_memory(got, x)
    assert np.array_equal(got, normalize_rows(x.astype(np.float32)))
    with pytest.raises(selfprune.InvalidInputError, match="t:"):
        unit_rows(np.full((2, 3), np.nan, dtype=dtype), caller="t")


@pytest.mark.parametrize("seed", [0, 3])
def test_kmeans_is_faiss_spherical_kmeans(seed):
    x = _rows(seed=seed)
    km = faiss.Kmeans(12, 7, niter=20, seed=seed, spherical=True, max_points_per_centroid=256, verbose=False)
    km.train(x)
    for kind in ("fp32", "fp32-checked", "bf16"):  # training is faiss's on every kernel
        with kernel(kind):
            cents, obj = kmeans(x, k=7, seed=seed)
            assert np.array_equal(fit_centroids(x, k=7, seed=seed), cents)
        assert np.array_equal(cents, km.centroids) and obj == km.obj[-1]


def test_nearest_centroids_top2_matches_brute_force():
    x, c = _rows(seed=1), _rows(n=9, seed=2)
    sims, idx = nearest_centroids(x, c, top=2)
    full = x @ c.T
    order = np.argsort(-full, axis=1, kind="stable")[:, :2]
    assert idx.shape == (len(x), 2)
    assert np.array_equal(idx, order)
    assert np.allclose(sims, np.take_along_axis(full, order, axis=1), atol=1e-5)
    s1, i1 = nearest_similarity(x, c)
    assert s1.dtype == np.float64 and np.array_equal(i1, idx[:, 0]) and np.array_equal(s1, sims[:, 0])


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_flat_knn_index_matches_brute_force(metric):
    x = _rows(n=300, seed=4)
    s, lab = knn_index(x, metric=metric).search(x[:50], 4)
    if metric == "ip":
        ref = np.argsort(-(x[:50] @ x.T), axis=1, kind="stable")[:, :4]
    else:
        ref = np.argsort(((x[:50, None, :] - x[None]) ** 2).sum(-1), axis=1, kind="stable")[:, :4]
    assert np.array_equal(lab, ref)


def test_ivf_knn_index_is_faiss_ivf_with_the_same_seed():
    x = _rows(n=2000, seed=5)
    idx = knn_index(x, metric="l2", ivf_lists=16, train=x[:800], train_seed=11, nprobe=3)
    q = faiss.IndexFlat(12, faiss.METRIC_L2)
    ref = faiss.IndexIVFFlat(q, 12, 16, faiss.METRIC_L2)
    ref.cp.seed = 11
    ref.train(x[:800])
    ref.nprobe = 3
    ref.add(x)
    a, b = idx.search(x[:100], 5), ref.search(x[:100], 5)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def test_semdedup_clusters_are_those_of_plain_faiss_calls():
    from selfprune.metrics.semdedup import semdedup

    x = _rows(n=500, seed=6)
    with kernel("fp32"):
        r = semdedup(x, eps=0.01, k=6, seed=0)
    with kernel("bf16"):
        checked = semdedup(x, eps=0.01, k=6, seed=0)
    # what semdedup did with faiss directly: seed drawn from the generator, k-means on every
    # (re-normalised) row, then the nearest centroid by inner product
    kseed = int(np.random.default_rng(0).integers(0, 2**31 - 1))
    inv = (1.0 / np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))).astype(np.float32)
    xs = np.ascontiguousarray(x * inv[:, None])
    km = faiss.Kmeans(12, 6, niter=20, spherical=True, seed=kseed, max_points_per_centroid=501,
                      min_points_per_centroid=1, verbose=False)  # fmt: skip
    km.train(xs)
    index = faiss.IndexFlatIP(12)
    index.add(km.centroids)
    assert np.array_equal(r.cluster, index.search(xs, 1)[1][:, 0])
    assert r.meta["kmeans_objective"] == pytest.approx(float(km.obj[-1]), rel=0, abs=0)
    assert np.array_equal(checked.cluster, r.cluster)  # faiss's algorithm, exact assignments: the same cells


def test_density_neighbours_are_those_of_a_plain_faiss_flat_index():
    from selfprune.metrics.density import knn_graph

    x = _rows(n=400, seed=7)
    _, nbr = knn_graph(x, 3, metric="l2", index="flat")
    ref = faiss.IndexFlat(12, faiss.METRIC_L2)
    ref.add(x)
    d, lab = ref.search(x, 4)
    assert np.array_equal(nbr, lab[:, 1:])  # random rows: no ties, the query itself comes first

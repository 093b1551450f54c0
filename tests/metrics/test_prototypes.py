import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfprune import InvalidInputError
from selfprune.metrics import class_prototypes, prototypes, random_scores


def test_planted_outliers_rank_hardest(clustered):
    s = prototypes(clustered, k=8, seed=0)
    hardest = set(s.order()[:4].tolist())
    assert hardest == {400, 401, 402, 403}
    assert s.name == "prototypes" and s.meta["k"] == 8
    assert np.all((s.values >= 0) & (s.values <= 2))


def test_deterministic_and_seed_averaging(clustered):
    a = prototypes(clustered, k=8, seeds=[0, 1])
    b = prototypes(clustered, k=8, seeds=[0, 1])
    assert np.array_equal(a.values, b.values)
    s0, s1 = prototypes(clustered, k=8, seed=0), prototypes(clustered, k=8, seed=1)
    np.testing.assert_allclose(a.values, (s0.values + s1.values) / 2, rtol=1e-12, atol=1e-12)


def test_scale_invariant(clustered):
    a = prototypes(clustered, k=8, seed=0)
    b = prototypes(clustered * 7.5, k=8, seed=0)
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)


def test_matches_direct_faiss_computation(clustered):
    import faiss

    x = clustered / np.linalg.norm(clustered, axis=1, keepdims=True)
    km = faiss.Kmeans(16, 8, niter=20, seed=0, spherical=True, max_points_per_centroid=256)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    sims = (x @ km.centroids.T).max(axis=1)
    s = prototypes(clustered, k=8, seed=0)
    np.testing.assert_allclose(s.values, 1 - sims, atol=1e-5)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk_rows=st.integers(1, 500))
def test_chunk_size_does_not_change_scores(tmp_path_factory, clustered, chunk_rows):
    from selfprune.io.store import EmbeddingStore

    folder = tmp_path_factory.mktemp("store")
    store = EmbeddingStore.create(
        folder / "s",
        ids=np.arange(len(clustered)),
        dim=16,
        encoder="given",
        params={},
        source={},
        chunk_rows=chunk_rows,
    )
    for i in range(store.n_chunks):
        lo, hi = store.chunk_bounds(i)
        store.write_chunk(i, clustered[lo:hi])
    a = prototypes(EmbeddingStore(folder / "s"), k=8, seed=0)
    b = prototypes(clustered, k=8, seed=0)
    np.testing.assert_array_equal(a.values, b.values)


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(60))))
def test_class_prototypes_permutation_equivariant(perm):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = np.arange(60) % 3
    perm = np.array(perm)
    base = class_prototypes(x, y)
    moved = class_prototypes(x[perm], y[perm], ids=perm)
    np.testing.assert_allclose(moved.values, base.values[perm], atol=1e-6)


def test_store_path_equals_array_path(tmp_path, clustered):
    from selfprune.io.store import EmbeddingStore

    store = EmbeddingStore.create(
        tmp_path / "s", ids=np.arange(len(clustered)), dim=16, encoder="given", params={}, source={}, chunk_rows=50
    )
    for i in range(store.n_chunks):
        lo, hi = store.chunk_bounds(i)
        store.write_chunk(i, clustered[lo:hi])
    a = prototypes(EmbeddingStore(tmp_path / "s"), k=8, seed=0)
    b = prototypes(clustered, k=8, seed=0)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"k": 500}, "larger than the number of examples"), ({"k": 0}, "k must be"), ({"seeds": []}, "seed")],
)
def test_bad_parameters(clustered, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        prototypes(clustered, **kwargs)


def test_nan_rejected(clustered):
    x = clustered.copy()
    x[5, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        prototypes(x, k=4)


def test_class_prototypes_flags_planted_mislabel(clustered):
    rng = np.random.default_rng(1)
    centres = np.eye(4, 16)
    y = np.repeat(np.arange(4), 50)
    x = centres[y] + 0.05 * rng.normal(size=(200, 16))
    y_noisy = y.copy()
    y_noisy[7] = 2  # a class-0 point labelled 2
    s = class_prototypes(x, y_noisy)
    assert s.order()[0] == 7
    with pytest.raises(InvalidInputError, match="labels"):
        class_prototypes(x, y[:10])


def test_random_scores_seeded():
    a, b = random_scores(100, seed=5), random_scores(100, seed=5)
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, random_scores(100, seed=6).values)

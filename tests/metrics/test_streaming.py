"""Every metric behind the engine gives the same answer from memory, a store of any chunk size,
a float16 store and a float16 ``.npy`` memory map; a map killed midway resumes to the same parts."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfprune import StoreError
from selfprune.engine import LocalEngine, use_engine
from selfprune.engine.base import load_part, part_path, task_dir
from selfprune.io.store import EmbeddingStore, open_embeddings
from selfprune.metrics._kmeans import nearest_chunk
from selfprune.metrics.density import knn_density, knn_graph
from selfprune.metrics.prototypes import class_prototypes, prototypes
from selfprune.metrics.pseudo import pseudo_labels
from selfprune.metrics.semdedup import semdedup

RNG = np.random.default_rng(7)
CENTRES = RNG.normal(size=(6, 12)).astype(np.float32)
Y = RNG.integers(0, 6, size=700)
X = (CENTRES[Y] + 0.3 * RNG.normal(size=(700, 12))).astype(np.float32)
X[650:660] = X[100:110]  # exact duplicates
X[660:670] = X[200:210] + 1e-4  # near duplicates


def _store(path, x, chunk_rows, dtype="float32"):
    return EmbeddingStore.from_array(path, x, chunk_rows=chunk_rows, dtype=dtype)


def _all(x):
    """Every engine-backed metric on ``x``, as plain arrays."""
    pl = pseudo_labels(x, k=6, refine="none", seed=1)
    pn = pseudo_labels(x, k=6, refine="neighbours", neighbours=5, epochs=2, fit_rows=300, seed=1)
    dd = semdedup(x, eps=0.01, k=6, seed=0)
    return {
        "prototypes": prototypes(x, k=6, seed=3).values,
        "class": class_prototypes(x, Y).values,
        "density": knn_density(x, k=5).values,
        "density_ref": knn_density(x, k=5, reference=300, seed=2).values,
        "pseudo": (pl.labels, pl.confidence),
        "pseudo_head": (pn.labels, pn.confidence),
        "dedup": (dd.kept, dd.removed, dd.duplicate_of),
    }


def _same(a, b, exact=True):
    for key in a:
        for u, v in zip(np.atleast_1d(a[key]) if not isinstance(a[key], tuple) else a[key],
                        np.atleast_1d(b[key]) if not isinstance(b[key], tuple) else b[key], strict=True):  # fmt: skip
            if exact:
                np.testing.assert_array_equal(u, v, err_msg=key)
            else:
                np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-9, err_msg=key)


IN_MEMORY = _all(X)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk_rows=st.integers(min_value=37, max_value=700))
def test_store_of_any_chunk_size_equals_memory(tmp_path_factory, chunk_rows):
    store = _store(tmp_path_factory.mktemp("s") / "s", X, chunk_rows)
    got = _all(store)
    # class sums are added chunk by chunk, so the last bits of that one score may differ
    _same({k: v for k, v in got.items() if k != "class"}, {k: v for k, v in IN_MEMORY.items() if k != "class"})
    np.testing.assert_allclose(got["class"], IN_MEMORY["class"], rtol=0, atol=1e-6)


def test_float16_store_and_npy_map_equal_the_rounded_array(tmp_path):
    x16 = X.astype(np.float16)
    want = _all(x16.astype(np.float32))
    store = _store(tmp_path / "s16", X, 128, dtype="float16")
    assert store.dtype == np.float16 and (tmp_path / "s16" / "chunk-00000.npy").stat().st_size < 128 * 12 * 2 + 200
    np.save(tmp_path / "x16.npy", x16)
    x_map, ids, _, _ = open_embeddings(tmp_path / "x16.npy")
    assert isinstance(x_map, np.memmap) and x_map.dtype == np.float16  # streamed, not loaded as float32
    for got in (_all(store), _all(x_map)):
        _same({k: v for k, v in got.items() if k != "class"}, {k: v for k, v in want.items() if k != "class"})


def test_float16_store_refuses_values_it_cannot_hold(tmp_path):
    big = X.copy()
    big[3, 0] = 1e6
    with pytest.raises(StoreError, match="overflows float16"):
        _store(tmp_path / "s", big, 100, dtype="float16")


def test_a_chunk_with_another_dtype_is_named(tmp_path):
    store = _store(tmp_path / "s", X, 100, dtype="float16")
    np.save(tmp_path / "s" / "chunk-00002.npy", X[200:300])  # float32 among float16 chunks
    with pytest.raises(StoreError, match="chunk-00002.npy holds float32.*mixed dtypes"):
        prototypes(EmbeddingStore(tmp_path / "s"), k=6)
    del store


def test_missing_chunk_file_is_named(tmp_path):
    _store(tmp_path / "s", X, 100)
    (tmp_path / "s" / "chunk-00004.npy").unlink()
    with pytest.raises(StoreError, match="chunk-00004.npy is missing"):
        prototypes(EmbeddingStore(tmp_path / "s"), k=6)


def test_nan_in_a_streamed_source_is_named_once(tmp_path):
    bad = X.copy()
    bad[250, 4] = np.nan
    np.save(tmp_path / "x.npy", bad)
    x_map, *_ = open_embeddings(tmp_path / "x.npy")
    # in the k-means sample (every row is in it at this size): named by its row
    with pytest.raises(ValueError, match=r"^embeddings contain NaN or Inf at row 250$"):
        prototypes(x_map, k=6)
    # not in any sample: the chunk that holds it is named, with its rows
    with pytest.raises(ValueError, match=r"^chunk 0 \(rows 0-699\): embeddings: .*NaN or Inf in 1 row"):
        prototypes(x_map, k=2, max_points_per_centroid=10, seed=next(s for s in range(50) if 250 not in _sample(s)))


def _sample(seed, n=20):
    return set(np.random.default_rng(seed).choice(700, size=n, replace=False).tolist())


def test_knn_graph_rows_are_global_and_sorted():
    dist, nbr = knn_graph(X, 4, metric="l2")
    brute = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    np.fill_diagonal(brute, np.inf)
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :4], rtol=1e-4, atol=1e-4)
    assert (nbr != np.arange(len(X))[:, None]).all()


def test_workdir_parts_are_reused_and_give_the_same_result(tmp_path):
    store = _store(tmp_path / "s", X, 100)
    want = prototypes(store, k=6, seed=3).values
    eng = LocalEngine(workdir=tmp_path / "work")
    with use_engine(eng):
        first = prototypes(store, k=6, seed=3).values
    parts = sorted((tmp_path / "work").glob("task-*/part-*.npz"))
    assert len(parts) == store.n_chunks
    # a run killed after three chunks leaves three parts: plant that state, then rerun
    for p in parts[3:]:
        p.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in parts[:3]}
    with use_engine(eng):
        again = prototypes(store, k=6, seed=3).values
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(again, want)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # reused, not recomputed


def test_a_part_from_other_rows_or_a_torn_file_is_recomputed(tmp_path):
    store = _store(tmp_path / "s", X, 100)
    from selfprune.engine.base import StoreSource

    src = StoreSource(store)
    cents = X[:6] / np.linalg.norm(X[:6], axis=1, keepdims=True)
    eng = LocalEngine(workdir=tmp_path / "w")
    want = eng.map(nearest_chunk, src, {"centroids": cents})
    task = task_dir(tmp_path / "w", nearest_chunk, {"centroids": cents}, src)
    part_path(task, 1).write_bytes(b"torn")
    assert load_part(part_path(task, 1), *src.bounds(1)) is None
    assert load_part(part_path(task, 2), *src.bounds(3)) is None  # rows of another chunk
    got = eng.map(nearest_chunk, src, {"centroids": cents})
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a["sim"], b["sim"])

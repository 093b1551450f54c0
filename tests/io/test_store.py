import json

import numpy as np
import pytest

from selfprune import DataSourceError, StoreError
from selfprune.io.store import EmbeddingStore, load_embeddings, open_embeddings


def _make(tmp_path, x, chunk_rows=4, **kw):
    store = EmbeddingStore.create(
        tmp_path / "s",
        ids=np.arange(len(x)),
        dim=x.shape[1],
        encoder="given",
        params={"a": 1},
        source={"name": "t"},
        chunk_rows=chunk_rows,
        **kw,
    )
    for i in range(store.n_chunks):
        lo, hi = store.chunk_bounds(i)
        store.write_chunk(i, x[lo:hi])
    return EmbeddingStore(tmp_path / "s")


def test_roundtrip_and_random_access(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    s = _make(tmp_path, x, labels=np.arange(10) % 2)
    assert s.complete and s.n_chunks == 3 and len(s) == 10
    np.testing.assert_array_equal(s.to_array(), x)
    np.testing.assert_array_equal(s[[9, 0, 5]], x[[9, 0, 5]])
    np.testing.assert_array_equal(s[2:7], x[2:7])
    assert s.labels.tolist() == [0, 1] * 5


def test_incomplete_store_refuses_to_stream(tmp_path):
    store = EmbeddingStore.create(
        tmp_path / "s", ids=np.arange(10), dim=2, encoder="e", params={}, source={}, chunk_rows=4
    )
    store.write_chunk(0, np.ones((4, 2)))
    assert store.missing_chunks() == [1, 2]
    with pytest.raises(StoreError, match="incomplete .2 chunk"):
        list(EmbeddingStore(tmp_path / "s").iter_chunks())


def test_reopen_with_different_run_is_refused(tmp_path):
    EmbeddingStore.create(tmp_path / "s", ids=np.arange(4), dim=2, encoder="e", params={"d": 1}, source={})
    with pytest.raises(StoreError, match="differs in params"):
        EmbeddingStore.create(tmp_path / "s", ids=np.arange(4), dim=2, encoder="e", params={"d": 2}, source={})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not an embedding store"):
        EmbeddingStore.create(tmp_path / "other", ids=np.arange(4), dim=2, encoder="e", params={}, source={})
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep me"


def test_nan_chunk_rejected(tmp_path):
    store = EmbeddingStore.create(tmp_path / "s", ids=np.arange(2), dim=2, encoder="e", params={}, source={})
    with pytest.raises(Exception, match="NaN"):
        store.write_chunk(0, np.array([[1.0, np.nan], [0.0, 1.0]]))
    assert store.missing_chunks() == [0]


def test_corrupt_manifest_and_chunk(tmp_path):
    x = np.ones((6, 2), dtype=np.float32)
    s = _make(tmp_path, x, chunk_rows=3)
    (s.path / "chunk-00001.npy").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="chunk-00001.npy is corrupt"):
        s.to_array()
    (s.path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        EmbeddingStore(s.path)


def test_open_embeddings_from_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    np.save(tmp_path / "e.npy", x)
    emb = load_embeddings(tmp_path / "e.npy")
    np.testing.assert_array_equal(emb.x, x)
    assert emb.ids.tolist() == [0, 1, 2, 3] and emb.labels is None and emb.meta == {"encoder": "file:e.npy"}
    pq.write_table(pa.table({"id": [5, 6, 7, 8], "vec": list(x)}), tmp_path / "e.parquet")
    arr, ids, _, _ = load_embeddings(tmp_path / "e.parquet")  # the same order as open_embeddings
    assert ids.tolist() == [5, 6, 7, 8]
    np.testing.assert_allclose(arr, x)
    opened = open_embeddings(tmp_path / "e.parquet")
    assert opened.ids.tolist() == ids.tolist() and opened._fields == ("x", "ids", "labels", "meta")
    bad = x.copy()
    bad[2, 1] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    # a .npy opens as a memory map, checked as it streams; loading it whole checks it at once
    assert isinstance(open_embeddings(tmp_path / "bad.npy").x, np.memmap)
    with pytest.raises(DataSourceError, match="NaN or Inf in 1 row"):
        load_embeddings(tmp_path / "bad.npy")
    with pytest.raises(DataSourceError, match="not found"):
        open_embeddings(tmp_path / "missing.npy")


def test_manifest_records_run(tmp_path):
    s = _make(tmp_path, np.zeros((3, 2), dtype=np.float32))
    m = json.loads((s.path / "manifest.json").read_text())
    assert m["encoder"] == "given" and m["params"] == {"a": 1} and m["n"] == 3 and m["complete"]


def test_store_opens_streaming_and_loads_in_memory_in_one_order(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(6, 2) + 1.0
    s = _make(tmp_path, x)
    src, ids, labels, meta = open_embeddings(s.path)
    assert isinstance(src, EmbeddingStore) and meta["encoder"] == "given"
    arr, ids2, labels2, meta2 = load_embeddings(s.path)
    np.testing.assert_array_equal(arr, x)
    assert ids2.tolist() == ids.tolist() and meta2 == meta and (labels2 is None) == (labels is None)


def test_from_array_writes_a_store_and_resumes_only_missing_chunks(tmp_path):
    x = np.random.default_rng(3).normal(size=(23, 5)).astype(np.float32)
    s = EmbeddingStore.from_array(tmp_path / "s", x, chunk_rows=5, dtype="float16", labels=np.arange(23) % 2)
    assert s.complete and s.dtype == np.float16 and s.n_chunks == 5
    np.testing.assert_array_equal(s.to_array(), x.astype(np.float16).astype(np.float32))
    assert s.labels.tolist() == (np.arange(23) % 2).tolist()
    (tmp_path / "s" / "chunk-00003.npy").unlink()
    stamp = (tmp_path / "s" / "chunk-00001.npy").stat().st_mtime_ns
    again = EmbeddingStore.from_array(tmp_path / "s", x, chunk_rows=5, dtype="float16", labels=np.arange(23) % 2)
    assert again.complete and (tmp_path / "s" / "chunk-00001.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.to_array(), s.to_array())
    with pytest.raises(StoreError, match="different embedding run"):
        EmbeddingStore.from_array(tmp_path / "s", x, chunk_rows=5)  # float32 over a float16 store

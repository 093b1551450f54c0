import gzip
import json

import numpy as np
import pytest

from selfprune import DataSourceError
from selfprune.io.sources import load_source, read_idx


def test_digits_split_is_disjoint_and_stable():
    tr, te = load_source("digits", split="train"), load_source("digits", split="test")
    assert len(tr) + len(te) == 1797
    assert not set(tr.ids.tolist()) & set(te.ids.tolist())
    assert tr.items.dtype == np.uint8 and tr.items.shape[1:] == (8, 8)
    assert np.array_equal(load_source("digits").ids, tr.ids)


def test_fashion_mnist_shapes_and_balance():
    tr = load_source("fashion-mnist", split="train")
    te = load_source("fashion-mnist", split="test")
    assert tr.items.shape == (60000, 28, 28) and te.items.shape == (10000, 28, 28)
    assert np.bincount(tr.labels).tolist() == [6000] * 10
    assert tr.classes[9] == "Ankle boot"


def test_idx_reader_rejects_truncated(tmp_path):
    good = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    header = bytes([0, 0, 8, 3]) + np.array([3, 2, 2], dtype=">u4").tobytes()
    with gzip.open(tmp_path / "ok.gz", "wb") as fh:
        fh.write(header + good.tobytes())
    assert np.array_equal(read_idx(tmp_path / "ok.gz", expected_dims=3), good)
    with gzip.open(tmp_path / "bad.gz", "wb") as fh:
        fh.write(header + good.tobytes()[:-3])
    with pytest.raises(DataSourceError, match="truncated"):
        read_idx(tmp_path / "bad.gz", expected_dims=3)
    (tmp_path / "junk.gz").write_bytes(b"not gzip")
    with pytest.raises(DataSourceError, match="gzip"):
        read_idx(tmp_path / "junk.gz", expected_dims=3)


def test_npy_npz_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    d = load_source(tmp_path / "x.npy")
    assert d.modality == "features" and d.ids.tolist() == [0, 1, 2, 3, 4] and d.labels is None
    np.savez(tmp_path / "x.npz", X=x, y=[0, 1, 0, 1, 1], ids=[10, 11, 12, 13, 14])
    d = load_source(tmp_path / "x.npz")
    assert d.labels.tolist() == [0, 1, 0, 1, 1] and d.ids[0] == 10
    pq.write_table(
        pa.table({"id": ["a", "b", "c", "d", "e"], "emb": list(x), "label": [1, 0, 1, 0, 0]}), tmp_path / "x.parquet"
    )
    d = load_source(tmp_path / "x.parquet")
    np.testing.assert_allclose(d.items, x)
    assert d.ids.tolist() == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.zeros((3, 2)), "y": [0, 1]}, "2 labels for 3 rows"),
        ({"X": np.zeros((3, 2)), "ids": [1, 1, 2]}, "unique"),
        ({"Z": np.zeros((3, 2))}, "no array named X"),
        ({"X": np.zeros((0, 2))}, "non-empty"),
    ],
)
def test_npz_bad_input(tmp_path, arrays, match):
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(DataSourceError, match=match):
        load_source(tmp_path / "b.npz")


def test_corrupt_npy(tmp_path):
    (tmp_path / "c.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataSourceError, match="not a readable .npy"):
        load_source(tmp_path / "c.npy")


def test_jsonl(tmp_path):
    rows = [{"text": "a cat", "label": 0}, {"text": "a dog", "label": 1, "id": "x"}]
    rows[0]["id"] = "y"
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    d = load_source(tmp_path / "t.jsonl")
    assert d.modality == "text" and d.items == ["a cat", "a dog"] and d.ids.tolist() == ["y", "x"]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(DataSourceError, match=r"bad.jsonl:2: invalid JSON"):
        load_source(tmp_path / "bad.jsonl")
    (tmp_path / "nofield.jsonl").write_text('{"body": "ok"}\n')
    with pytest.raises(DataSourceError, match=r":1: row needs a string field 'text'"):
        load_source(tmp_path / "nofield.jsonl")


def _png(path, value, size=(6, 5)):
    from PIL import Image

    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)


def test_image_folder_with_classes_and_flat(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "c" / cls).mkdir(parents=True)
        for i in range(3):
            _png(tmp_path / "c" / cls / f"{i}.png", 40 * i)
    d = load_source(tmp_path / "c")
    assert d.classes == ("cat", "dog") and d.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert d.ids[0] == "cat/0.png"
    batch = d.take(slice(0, 4))
    assert batch.shape == (4, 6, 5, 3) and batch.dtype == np.uint8 and batch[1, 0, 0, 0] == 40
    (tmp_path / "flat").mkdir()
    _png(tmp_path / "flat" / "a.png", 1)
    _png(tmp_path / "flat" / "b.png", 2, size=(10, 10))  # resized to the first image's size
    d = load_source(tmp_path / "flat")
    assert d.labels is None and d.take([1]).shape == (1, 6, 5, 3)


def test_corrupt_image_named_or_skipped(tmp_path):
    (tmp_path / "k").mkdir()
    _png(tmp_path / "k" / "good.png", 5)
    (tmp_path / "k" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataSourceError, match=r"corrupt image .*broken.png"):
        load_source(tmp_path / "k")
    with pytest.warns(UserWarning, match="broken.png"):
        d = load_source(tmp_path / "k", skip_corrupt=True)
    assert d.ids.tolist() == ["good.png"]


def test_unknown_sources():
    with pytest.raises(DataSourceError, match="neither a built-in"):
        load_source("cifar-10")
    with pytest.raises(Exception, match="split"):
        load_source("digits", split="valid")

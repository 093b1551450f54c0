"""The pruned data itself: every format reads back as exactly the kept examples of the source."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from selfprune.cli import main
from selfprune.errors import InvalidInputError
from selfprune.io.export import export
from selfprune.io.sources import Dataset, load_source
from selfprune.io.tables import read_selection, write_ids


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 8, 8), dtype=np.uint8)
    ids = rng.permutation(1000)[:60]
    return Dataset("tiny", ids=ids, items=x, modality="image", labels=np.arange(60) % 3, classes=("a", "b/c", "d"))


def _kept(ds, share=0.4, seed=1):
    return np.random.default_rng(seed).choice(ds.ids, int(share * len(ds)), replace=False)


def test_parquet_images_decode_to_the_kept_pixels_in_source_order(tmp_path, images):
    kept = _kept(images)
    export(images, kept, tmp_path / "p.parquet", meta={"policy": "hard"})
    t = pq.read_table(tmp_path / "p.parquet")
    pos = np.flatnonzero(np.isin(images.ids, kept))
    assert t.column("id").to_numpy().tolist() == images.ids[pos].tolist()
    assert t.column("label").to_numpy().tolist() == images.labels[pos].tolist()
    assert t.column("class_name").to_pylist() == [images.classes[c] for c in images.labels[pos]]
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(r["bytes"]))) for r in t.column("image").to_pylist()])
    assert np.array_equal(decoded, images.items[pos])
    meta = json.loads(t.schema.metadata[b"selfprune"])
    assert meta["policy"] == "hard" and meta["n_kept"] == len(kept) and meta["n_source"] == 60


def test_parquet_vectors_and_jsonl_text_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    vec = Dataset("v", ids=np.arange(20), items=x, modality="features")
    export(vec, [3, 1, 7], tmp_path / "v.parquet")
    got = np.array(pq.read_table(tmp_path / "v.parquet").column("features").to_pylist(), dtype=np.float32)
    assert np.array_equal(got, x[[1, 3, 7]])
    texts = [f"snippet {i} ✓" for i in range(10)]
    txt = Dataset("t", ids=np.array([f"s{i}" for i in range(10)]), items=texts, modality="text")
    export(txt, ["s9", "s2"], tmp_path / "t.jsonl", meta={"k": 1})
    lines = [json.loads(ln) for ln in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines == [{"id": "s2", "text": "snippet 2 ✓"}, {"id": "s9", "text": "snippet 9 ✓"}]
    assert json.loads((tmp_path / "t.jsonl.meta.json").read_text())["k"] == 1


def test_imagefolder_reads_back_through_the_image_folder_source(tmp_path, images):
    kept = _kept(images)
    out = export(images, kept, tmp_path / "folder", format="imagefolder")
    pos = np.flatnonzero(np.isin(images.ids, kept))
    back = load_source(out)
    assert sorted(back.classes) == sorted({images.classes[c].replace("/", "-") for c in images.labels[pos]})
    want = {f"{images.classes[images.labels[i]].replace('/', '-')}/{images.ids[i]}.png": images.items[i] for i in pos}
    got = back.take(slice(0, len(back)))
    assert sorted(back.ids.tolist()) == sorted(want)
    for rid, img in zip(back.ids.tolist(), got, strict=True):
        assert np.array_equal(img[..., 0], want[rid])
    assert json.loads((out / "selfprune.json").read_text())["n_kept"] == len(kept)
    mode = os.stat(out).st_mode & 0o777
    assert mode == 0o777 & ~_umask()


def test_imagefolder_opens_with_the_hugging_face_image_folder_reader(tmp_path, images):
    """The layout torchvision's ImageFolder and datasets' ``imagefolder`` read: class sub-folders."""
    import datasets
    kept = _kept(images)
    out = export(images, kept, tmp_path / "folder", format="imagefolder")
    ds = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    pos = np.flatnonzero(np.isin(images.ids, kept))
    names = ds.features["label"].names
    want = sorted((images.classes[images.labels[i]].replace("/", "-"), images.items[i].tobytes()) for i in pos)
    got = sorted((names[r["label"]], np.asarray(r["image"].convert("L")).tobytes()) for r in ds)
    assert len(ds) == len(kept) and got == want


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_bad_input_gets_one_clear_error_and_writes_nothing(tmp_path, images):
    with pytest.raises(InvalidInputError, match="not"):
        export(images, [images.ids[0], 123_456], tmp_path / "x.parquet")
    with pytest.raises(InvalidInputError, match="format"):
        export(images, images.ids[:2], tmp_path / "x.csv", format="csv")
    txt = Dataset("t", ids=np.arange(2), items=["a", "b"], modality="text")
    with pytest.raises(InvalidInputError, match="image folder needs image"):
        export(txt, [0], tmp_path / "f", format="imagefolder")
    (tmp_path / "exists").mkdir()
    with pytest.raises(InvalidInputError, match="already exists"):
        export(images, images.ids[:2], tmp_path / "exists", format="imagefolder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


def test_cli_export_carries_the_selection_settings(tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, size=(30, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", X=x, y=np.arange(30) % 2)
    write_ids(tmp_path / "kept.parquet", np.array([4, 0, 9]), {"policy": "hard", "keep": 3})
    assert read_selection(tmp_path / "kept.parquet")[1]["policy"] == "hard"
    code = main(["export", "--data", str(tmp_path / "d.npz"), "--kept", str(tmp_path / "kept.parquet"),
                 "--out", str(tmp_path / "pruned.parquet")])  # fmt: skip
    assert code == 0 and "wrote 3 of 30" in capsys.readouterr().out
    t = pq.read_table(tmp_path / "pruned.parquet")
    assert t.column("id").to_pylist() == [0, 4, 9]
    assert json.loads(t.schema.metadata[b"selfprune"])["selection"]["policy"] == "hard"
    write_ids(tmp_path / "bad.parquet", np.array([4, 77]))
    code = main(["export", "--data", str(tmp_path / "d.npz"), "--kept", str(tmp_path / "bad.parquet"),
                 "--format", "jsonl", "--out", str(tmp_path / "bad.jsonl")])  # fmt: skip
    assert code == 2 and "77" in capsys.readouterr().err
    assert not (tmp_path / "bad.jsonl").exists()

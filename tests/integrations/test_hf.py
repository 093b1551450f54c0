"""Hugging Face datasets in and out, and the image Parquet layout, read back pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from selfprune.errors import DataSourceError, InvalidInputError  # noqa: E402
from selfprune.integrations.hf import from_hf, save_kept, select_kept  # noqa: E402
from selfprune.io.export import export  # noqa: E402
from selfprune.io.sources import Dataset, load_source  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")  # datasets' own deprecation chatter


@pytest.fixture
def pixels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 7, 5), dtype=np.uint8), rng.integers(0, 3, 24)


def _hf_images(x, y, ids=None):
    from PIL import Image

    cols = {"image": [Image.fromarray(a) for a in x], "label": y.tolist()}
    feats = {"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog", "eel"])}
    if ids is not None:
        cols["id"], feats["id"] = list(ids), datasets.Value("string")
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats))


def test_from_hf_reads_images_labels_and_class_names(pixels, tmp_path):
    x, y = pixels
    src = from_hf(_hf_images(x, y))
    assert src.modality == "image" and np.array_equal(src.ids, np.arange(24))
    assert np.array_equal(np.asarray(src.take(np.arange(24))), x)
    assert np.array_equal(src.labels, y) and src.classes == ("cat", "dog", "eel")
    _hf_images(x, y).save_to_disk(str(tmp_path / "saved"))
    again = load_source(tmp_path / "saved")  # a save_to_disk folder is a source like any other
    assert np.array_equal(np.asarray(again.take(slice(0, 24))), x)
    dd = datasets.DatasetDict({"train": _hf_images(x[:10], y[:10]), "test": _hf_images(x[10:], y[10:])})
    dd.save_to_disk(str(tmp_path / "dd"))
    test = load_source(tmp_path / "dd", split="test")
    assert np.array_equal(np.asarray(test.take(slice(0, 14))), x[10:])
    with pytest.raises(DataSourceError, match="no split 'valid'"):
        from_hf(dd, split="valid")


def test_text_and_vector_datasets():
    texts = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    src = from_hf(texts)
    assert src.modality == "text" and src.take([2, 0]) == ["c", "a"]
    vec = from_hf(datasets.Dataset.from_dict({"emb": [[1.0, 2.0], [3.0, 4.0]]}))
    assert vec.modality == "features" and np.array_equal(vec.items, [[1, 2], [3, 4]])
    with pytest.raises(InvalidInputError, match="expected a datasets.Dataset"):
        from_hf([1, 2, 3])


def test_select_and_save_kept_rows_by_the_id_column(pixels, tmp_path):
    x, y = pixels
    ids = [f"img{i:02d}" for i in range(24)]
    ds = _hf_images(x, y, ids)
    kept = ["img17", "img03", "img09"]
    pruned = select_kept(ds, kept)
    assert pruned["id"] == ["img03", "img09", "img17"]
    assert np.array_equal(np.stack([np.asarray(im) for im in pruned["image"]]), x[[3, 9, 17]])
    out = save_kept(ds, kept, tmp_path / "pruned")
    assert datasets.load_from_disk(str(out))["id"] == ["img03", "img09", "img17"]
    with pytest.raises(InvalidInputError, match="already exists"):
        save_kept(ds, kept, out)
    with pytest.raises(InvalidInputError, match="img99"):
        select_kept(ds, ["img99"])


def test_export_hf_and_image_parquet_read_back_identically(pixels, tmp_path):
    x, y = pixels
    src = Dataset("toy", ids=np.arange(100, 124), items=x, modality="image", labels=y, classes=("cat", "dog", "eel"))
    kept = np.array([120, 101, 105, 111])
    pos = np.sort(kept) - 100
    hf = datasets.load_from_disk(str(export(src, kept, tmp_path / "toy.hf", meta={"policy": "hard"})))
    assert hf["id"] == sorted(kept.tolist())
    assert hf.features["label"].names == ["cat", "dog", "eel"] and hf["label"] == y[pos].tolist()
    assert np.array_equal(np.stack([np.asarray(im) for im in hf["image"]]), x[pos])
    assert '"policy": "hard"' in hf.info.description
    back = load_source(export(src, kept, tmp_path / "toy.parquet"))  # the image Parquet layout as a source
    assert back.modality == "image" and np.array_equal(back.ids, np.sort(kept))
    assert np.array_equal(np.asarray(back.take(slice(0, len(back)))), x[pos])
    assert np.array_equal(back.labels, y[pos])
    assert np.array_equal(np.asarray(from_hf(hf).take(np.arange(4))), x[pos])


def test_hf_source_prune_save_round_trip_keeps_every_column(pixels, tmp_path):
    import selfprune as sp

    x, y = pixels
    ds = _hf_images(x, y, [f"img{i:02d}" for i in range(24)]).add_column("caption", [f"c{i}" for i in range(24)])
    ds.save_to_disk(str(tmp_path / "src"))
    result = sp.prune(str(tmp_path / "src"), 12, tmp_path / "run", seed=0)
    out = save_kept(tmp_path / "src", result.kept_ids, tmp_path / "pruned")
    back = datasets.load_from_disk(str(out))
    assert back.column_names == ds.column_names and back.features == ds.features
    rows = [int(i[3:]) for i in sorted(result.kept_ids.tolist())]
    assert back["id"] == sorted(result.kept_ids.tolist()) and back["caption"] == [f"c{i}" for i in rows]
    assert np.array_equal(np.stack([np.asarray(im) for im in back["image"]]), x[rows])

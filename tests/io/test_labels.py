"""``load_labels``: one reading of auto, none, .npy and Parquet labels, and one-line errors."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfprune.errors import DataSourceError, InvalidInputError
from selfprune.io.labels import load_labels

IDS = np.array([10, 11, 12, 13])


def test_forms_agree(tmp_path):
    y = np.array([0, 1, 1, 2])
    np.save(tmp_path / "y.npy", y)
    pq.write_table(pa.table({"id": IDS[::-1], "label": y[::-1]}), tmp_path / "y.parquet")
    got = [
        load_labels("auto", IDS, caller="t", auto=y),
        load_labels(None, IDS, caller="t", auto=y),
        load_labels(str(tmp_path / "y.npy"), IDS, caller="t"),
        load_labels(tmp_path / "y.parquet", IDS, caller="t"),
    ]
    for g in got:
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, y)
    assert load_labels("none", IDS, caller="t", auto=y) is None
    assert load_labels("auto", IDS, caller="t") is None


def test_parquet_partial_and_extra_ids(tmp_path):
    pq.write_table(pa.table({"id": [12, 99], "label": [5, 7]}), tmp_path / "few.parquet")
    np.testing.assert_array_equal(load_labels(tmp_path / "few.parquet", IDS, caller="t"), [-1, -1, 5, -1])
    pq.write_table(pa.table({"id": [98, 99], "label": [5, 7]}), tmp_path / "none.parquet")
    with pytest.raises(InvalidInputError, match="none of the ids"):
        load_labels(tmp_path / "none.parquet", IDS, caller="t")
    pq.write_table(pa.table({"id": IDS, "lab": [0, 0, 0, 0]}), tmp_path / "cols.parquet")
    with pytest.raises(DataSourceError, match="needs columns id and label"):
        load_labels(tmp_path / "cols.parquet", IDS, caller="t")


def test_integral_floats_are_accepted(tmp_path):
    np.save(tmp_path / "f.npy", np.array([0.0, 1.0, 2.0, 1.0]))
    np.testing.assert_array_equal(load_labels(tmp_path / "f.npy", IDS, caller="t"), [0, 1, 2, 1])


@pytest.mark.parametrize(
    "write, match",
    [
        (lambda p: np.save(p, np.array([0, "a", None, 1], dtype=object), allow_pickle=True), "Python objects"),
        (lambda p: p.write_bytes(np.lib.format.MAGIC_PREFIX + b"\x01\x00garbage"), "not a readable .npy"),
        (lambda p: p.write_bytes(b""), "not a readable .npy"),
        (lambda p: np.save(p, np.arange(3)), r"shape \(3,\) for 4 rows"),
        (lambda p: np.save(p, np.zeros((4, 2), dtype=int)), r"shape \(4, 2\)"),
        (lambda p: np.save(p, np.array([0.5, 1.0, 2.0, 0.0])), "non-integer"),
        (lambda p: np.save(p, np.array(["a", "b", "c", "d"])), "labels must be integers"),
    ],
)
def test_bad_npy_is_one_clear_error(tmp_path, write, match):
    path = tmp_path / "y.npy"
    write(path)
    with pytest.raises((InvalidInputError, DataSourceError), match=match) as info:
        load_labels(path, IDS, caller="score")
    assert str(info.value).startswith("score: ") and "\n" not in str(info.value)


def test_truncated_npy(tmp_path):
    path = tmp_path / "y.npy"
    np.save(path, np.arange(1000))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataSourceError, match="not a readable .npy"):
        load_labels(path, np.arange(1000), caller="t")


def test_unknown_spec():
    with pytest.raises(DataSourceError, match="--labels must be auto, none"):
        load_labels("nowhere.npy", IDS, caller="t")


def test_a_pseudo_label_file_gives_its_clusters(tmp_path):
    from selfprune.io.tables import write_pseudo_labels
    from selfprune.metrics.pseudo import pseudo_labels

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(30, 4)) + 8 * c for c in range(3)]).astype(np.float32)
    ids = np.arange(100, 190)
    pl = pseudo_labels(x, ids=ids, k=3, refine="none", seed=0)
    write_pseudo_labels(tmp_path / "p.parquet", pl)
    np.testing.assert_array_equal(load_labels(tmp_path / "p.parquet", ids[::-1], caller="t"), pl.labels[::-1])
    both = pa.table({"id": ids, "label": np.zeros(90, dtype=np.int64), "pseudo_label": pl.labels})
    pq.write_table(both, tmp_path / "both.parquet")  # true labels win where both are present
    assert not load_labels(tmp_path / "both.parquet", ids, caller="t").any()

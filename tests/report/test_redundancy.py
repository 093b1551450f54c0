"""The dedup files and the eps-sweep plot, written from a planted-duplicate run."""

import json

import numpy as np
import pyarrow.parquet as pq

from selfprune.io.dedup import write_dedup, write_eps_sweep
from selfprune.metrics.semdedup import semdedup, semdedup_sweep
from selfprune.report.redundancy import plot_eps_sweep


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    return np.vstack([x, x[:5]])  # ids 120..124 copy 0..4


def test_write_dedup_files(tmp_path):
    res = semdedup(_data(), eps=0.01, k=3)
    paths = write_dedup(tmp_path, res, meta={"embeddings": "e.npy"})
    assert [p.name for p in paths] == ["kept.parquet", "kept.txt", "removed.parquet"]
    removed = pq.read_table(tmp_path / "removed.parquet")
    assert removed.column_names == ["id", "duplicate_of", "similarity"]
    assert str(removed.schema.field("similarity").type) == "double"
    assert removed.column("id").to_pylist() == [120, 121, 122, 123, 124]
    assert removed.column("duplicate_of").to_pylist() == [0, 1, 2, 3, 4]
    meta = json.loads(removed.schema.metadata[b"selfprune"])
    assert meta["embeddings"] == "e.npy" and meta["eps"] == 0.01
    kept = pq.read_table(tmp_path / "kept.parquet").column("id").to_numpy()
    np.testing.assert_array_equal(kept, np.arange(120))


def test_sweep_json_and_png(tmp_path):
    sweep = semdedup_sweep(_data(), [0.0, 0.01, 0.5], k=3)
    write_eps_sweep(tmp_path / "s.json", sweep)
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["eps"] == [0.0, 0.01, 0.5] and data["n_removed"][:2] == [5, 5] and data["n_examples"] == 125
    png = plot_eps_sweep(sweep, tmp_path / "s.png", k=3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

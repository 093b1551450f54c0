"""``selfprune dedup`` and ``selfprune density`` end to end through ``selfprune.cli.main``."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from selfprune.cli import main
from selfprune.io.tables import read_scores
from selfprune.metrics.semdedup import semdedup


@pytest.fixture
def emb_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    near = x[12:20] + np.float32(1e-4) * rng.normal(size=(8, 16)).astype(np.float32)
    x = np.vstack([x, x[:12], near])
    path = tmp_path / "emb.npy"
    np.save(path, x)
    return path, x


def test_dedup_writes_kept_and_removed(emb_file, tmp_path, capsys):
    path, x = emb_file
    out = tmp_path / "dedup"
    args = ["dedup", "--embeddings", str(path), "--eps", "0.01", "--k", "4", "--out", str(out)]
    code = main(args)
    assert code == 0
    kept = pq.read_table(out / "kept.parquet").column("id").to_numpy()
    removed = pq.read_table(out / "removed.parquet")
    assert removed.column_names == ["id", "duplicate_of", "similarity"]
    ref = semdedup(x, eps=0.01, k=4)
    assert np.array_equal(kept, ref.kept)
    assert np.array_equal(removed.column("id").to_numpy(), ref.removed)
    assert np.array_equal(removed.column("duplicate_of").to_numpy(), ref.duplicate_of)
    # exact copies go (the original has the smaller id); of each near pair exactly one goes
    rid = set(removed.column("id").to_numpy().tolist())
    assert set(range(400, 412)) <= rid and len(rid) == 20
    assert all((i in rid) != (i + 400 in rid) for i in range(12, 20))
    assert len(kept) + removed.num_rows == len(x)
    meta = json.loads(removed.schema.metadata[b"selfprune"])
    assert meta["eps"] == 0.01 and meta["k"] == 4
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert "removed" in capsys.readouterr().out


def test_dedup_eps_sweep_prints_and_plots(emb_file, tmp_path, capsys):
    path, x = emb_file
    out = tmp_path / "sweep"
    code = main([
        "dedup", "--embeddings", str(path), "--k", "4", "--out", str(out),
        "--eps-sweep", "--eps-grid", "0,0.01,0.5",
    ])
    assert code == 0
    png = out / "eps_sweep.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "eps_sweep.json").read_text())
    assert data["eps"] == [0.0, 0.01, 0.5]
    assert data["n_removed"][0] == 12 and data["n_removed"][1] == 20
    text = capsys.readouterr().out
    assert "eps sweep" in text and "0.01" in text
    assert not (out / "kept.parquet").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--eps", "2.5"], "eps must be"),
        (["--k", "1000"], "k must be"),
        (["--order", "sideways"], "order must be one of"),
        (["--eps-sweep", "--eps-grid", "0,x"], "--eps-grid must be"),
    ],
)
def test_dedup_bad_input_is_one_line_exit_2(emb_file, tmp_path, capsys, args, match):
    path, _ = emb_file
    code = main(["dedup", "--embeddings", str(path), "--out", str(tmp_path / "o"), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_dedup_missing_file(tmp_path, capsys):
    code = main(["dedup", "--embeddings", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_density_writes_a_score_file(emb_file, tmp_path, capsys):
    path, x = emb_file
    out = tmp_path / "density.parquet"
    code = main(["density", "--embeddings", str(path), "--neighbours", "5", "--out", str(out)])
    assert code == 0
    table = read_scores(out)
    s = table["density"]
    from selfprune.metrics.density import knn_density

    np.testing.assert_allclose(s.values, knn_density(x, k=5).values)
    assert s.meta["k"] == 5
    assert "density" in capsys.readouterr().out
    assert main(["density", "--embeddings", str(path), "--neighbours", "0", "--out", str(out)]) == 2

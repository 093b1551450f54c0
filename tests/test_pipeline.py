"""``prune``: one call from unlabelled data to a pruned set, label-free and deterministic."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import selfprune as sp
from selfprune.cli import main


@pytest.fixture
def mixture(tmp_path):
    """Three well-separated clusters of unequal size, no labels: 200, 100 and 60 vectors."""
    rng = np.random.default_rng(0)
    sizes = (200, 100, 60)
    x = np.concatenate([rng.normal(size=(n, 6)) + 12.0 * np.eye(6)[c] for c, n in enumerate(sizes)])
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    return tmp_path / "x.npy", np.repeat(np.arange(3), sizes)


def test_balanced_random_route_keeps_every_cluster_its_share_and_repeats_exactly(tmp_path, mixture):
    path, truth = mixture
    a = sp.prune(str(path), 0.5, tmp_path / "a", seed=3, route="balanced-random")
    b = sp.prune(str(path), 0.5, tmp_path / "b", seed=3, route="balanced-random")
    assert np.array_equal(a.kept_ids, b.kept_ids) and len(a.kept_ids) == 180
    # the planted clusters are recovered by the pseudo-labels, so each keeps half of itself
    per_cluster = np.bincount(truth[a.kept_ids], minlength=3)
    assert np.abs(per_cluster - np.array([100, 50, 30])).max() <= 1
    other = sp.prune(str(path), 0.5, tmp_path / "c", seed=4, route="balanced-random")
    assert not np.array_equal(other.kept_ids, a.kept_ids)  # the seed drives the random choice
    t = pq.read_table(a.pruned_path)
    assert t.column("id").to_pylist() == a.kept_ids.tolist()
    assert np.allclose(np.array(t.column("features").to_pylist()), np.load(path)[a.kept_ids])
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["n_kept"] == 180 and summary["policy"] == "random balanced over pseudo-labels"
    assert any("not checked on this data" in r for r in summary["reasons"])


def test_dynamics_route_keeps_the_hardest_by_label_free_el2n(tmp_path, mixture):
    """The default route equals its pieces run by hand: pseudo-labels, proxy dynamics, keep hard per cluster."""
    path, _ = mixture
    got = sp.prune(str(path), 0.25, tmp_path / "a", seed=5)
    x = np.load(path)
    ids = np.arange(len(x))
    pl = sp.pseudo_labels(x, ids=ids, seed=5)
    res = sp.labelfree_dynamics(x, pl, ids=ids, seed=5, metrics=("el2n",))
    want = sp.select(res.table["el2n"], 90, policy="hard", labels=pl.labels, balance_classes=True).ids
    np.testing.assert_array_equal(np.sort(got.kept_ids), np.sort(want))
    assert got.policy == "hardest by label-free EL2N within each pseudo-label cluster"
    again = sp.prune(str(path), 0.25, tmp_path / "b", seed=5)
    np.testing.assert_array_equal(again.kept_ids, got.kept_ids)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["policy"] == got.policy


def test_cli_prune_prints_what_it_chose_and_refuses_bad_input(tmp_path, mixture, capsys):
    path, _ = mixture
    assert main(["prune", "--data", str(path), "--keep", "90", "--out", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "kept 90 of 360" in text and "policy: the hardest by EL2N of a mlp proxy" in text
    assert pq.read_table(tmp_path / "run" / "kept.parquet").num_rows == 90
    assert main(["prune", "--data", str(path), "--keep", "0", "--out", str(tmp_path / "bad")]) == 2
    assert main(["prune", "--data", str(path), "--keep", "0.5", "--format", "csv", "--out", str(tmp_path / "f")]) == 2
    assert main(["prune", "--data", str(path), "--keep", "0.5", "--route", "best", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "format must be one of" in err and "route must be one of" in err

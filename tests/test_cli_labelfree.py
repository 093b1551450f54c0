"""The label-free pipeline from the command line on data that has no labels at all."""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_digits

from selfprune.cli import main


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """Digits images as an .npz without labels, its embeddings and pseudo-labels."""
    root = tmp_path_factory.mktemp("lf")
    d = load_digits()
    images = (d.images * 16).clip(0, 255).astype(np.uint8)
    data = root / "digits.npz"
    np.savez(data, X=images, ids=np.arange(len(images)) + 10_000)
    emb = root / "emb"
    assert main(["embed", "--data", str(data), "--encoder", "pixels", "--set", "dim=16", "--out", str(emb)]) == 0
    pseudo = root / "pseudo.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--epochs", "5", "--out", str(pseudo)]) == 0
    return root, data, emb, pseudo, d.target


def test_pseudo_labels_file(unlabelled, capsys):
    root, _, emb, pseudo, _ = unlabelled
    t = pq.read_table(pseudo)
    assert t.column_names == ["id", "pseudo_label", "confidence"]
    assert t.column("id").to_numpy()[0] == 10_000
    meta = json.loads(t.schema.metadata[b"selfprune"])["pseudo_labels"]
    assert meta["k"] == 10 and meta["refine"] == "neighbours" and meta["k_rule"].startswith("choose_k")
    # rerun: the same file, bit for bit
    again = root / "again.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--epochs", "5", "--out", str(again)]) == 0
    assert pq.read_table(again).equals(t)
    out = capsys.readouterr().out
    assert "k = 10 clusters, chosen for 1,797 rows" in out
    # the vote of restarts: recorded in the metadata and printed; --restarts 1 is the plain file
    voted = root / "voted.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--epochs", "5", "--restarts", "3",
                 "--out", str(voted)]) == 0  # fmt: skip
    vmeta = json.loads(pq.read_table(voted).schema.metadata[b"selfprune"])["pseudo_labels"]
    assert vmeta["restarts"] == 3 and 0 < vmeta["mean_agreement"] <= 1
    assert f"vote of 3 restarts: on average {vmeta['mean_agreement']:.1%}" in capsys.readouterr().out
    one = root / "one-restart.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--epochs", "5", "--restarts", "1", "--out", str(one)]) == 0
    assert pq.read_table(one).equals(t)
    # restarts kept for proxy heads: one column per restart, restart 0 is the plain clustering
    heads = root / "heads.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--epochs", "5", "--restarts", "3", "--combine", "heads",
                 "--out", str(heads)]) == 0  # fmt: skip
    th = pq.read_table(heads)
    assert th.column_names == ["id", "pseudo_label", "confidence", "pseudo_label_1", "pseudo_label_2"]
    assert th.column("pseudo_label").equals(t.column("pseudo_label"))
    hmeta = json.loads(th.schema.metadata[b"selfprune"])["pseudo_labels"]
    assert hmeta["restarts"] == 3 and hmeta["combine"] == "heads"
    assert "3 restarts kept for 3 proxy heads" in capsys.readouterr().out


def test_dynamics_and_select_without_labels(unlabelled, capsys):
    root, data, _, pseudo, truth = unlabelled
    before = _digest(pseudo), _digest(data)
    scores = root / "labelfree.parquet"
    code = main([
        "dynamics", "--data", str(data), "--pseudo-labels", str(pseudo), "--model", "mlp", "--epochs", "3",
        "--aum-threshold", "--out", str(scores),
    ])  # fmt: skip
    assert code == 0
    assert (_digest(pseudo), _digest(data)) == before  # inputs untouched
    t = pq.read_table(scores)
    assert "label" not in t.column_names and "pseudo_label" in t.column_names
    assert {"el2n", "aum", "forgetting", "aum_flagged"} <= set(t.column_names)
    meta = json.loads(t.schema.metadata[b"selfprune"])["metrics"]
    assert meta["el2n"]["label_free"] is True and meta["el2n"]["pseudo_labels"]["k"] == 10
    given = pq.read_table(pseudo).column("pseudo_label").to_numpy()
    np.testing.assert_array_equal(t.column("pseudo_label").to_numpy(), given)
    capsys.readouterr()
    kept = root / "kept.parquet"
    code = main([
        "select", "--scores", str(scores), "--score-column", "aum", "--keep", "0.5", "--policy", "hard",
        "--cutoff", "auto", "--balance-classes", "--out", str(kept),
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "cutoff auto:" in out and "classes balanced over pseudo-labels" in out
    summary = json.loads(pq.read_table(kept).schema.metadata[b"selfprune"])["summary"]
    assert summary["classes_from"] == "pseudo-labels" and summary["kept"] == round(0.5 * len(truth))
    assert summary["n_cut"] > 0
    code = main(["select", "--scores", str(scores), "--score-column", "aum", "--keep", "0.5", "--balance-classes",
                 "--out", str(kept)])  # fmt: skip
    assert code == 0
    summary = json.loads(pq.read_table(kept).schema.metadata[b"selfprune"])["summary"]
    # without a cutoff every pseudo-class keeps its share (largest remainder): within one of proportional
    for c, n_kept in summary["kept_per_class"].items():
        assert abs(n_kept - 0.5 * summary["total_per_class"][c]) <= 1


def test_dynamics_trains_a_head_per_kept_restart(unlabelled, capsys):
    root, data, emb, _, _ = unlabelled
    pseudo = root / "heads2.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--epochs", "5", "--restarts", "2", "--combine", "heads",
                 "--out", str(pseudo)]) == 0  # fmt: skip
    scores, rec = root / "heads-scores.parquet", root / "heads-rec"
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(pseudo), "--model", "mlp", "--epochs", "2",
                 "--metrics", "el2n", "--record-dir", str(rec), "--out", str(scores)]) == 0  # fmt: skip
    assert "(2 heads, one per restart" in capsys.readouterr().out
    t = pq.read_table(scores)
    meta = json.loads(t.schema.metadata[b"selfprune"])["metrics"]["el2n"]
    assert meta["heads"] == 2 and meta["label_free"] is True
    el2n = t.column("el2n").to_numpy()
    assert np.all((el2n > 0) & (el2n <= 1))  # the mean of the heads' normalised ranks
    np.testing.assert_array_equal(t.column("pseudo_label").to_numpy(), pq.read_table(pseudo).column("pseudo_label"))
    assert (rec / "seed-0" / "head-0" / "state.json").exists() and (rec / "seed-0" / "head-1" / "state.json").exists()


def _err(capsys):
    return capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(unlabelled, tmp_path, capsys):
    root, data, emb, pseudo, _ = unlabelled
    out = tmp_path / "x.parquet"
    assert main(["pseudo-labels", "--embeddings", str(emb), "--k", "1", "--out", str(out)]) == 2
    assert "k must be" in _err(capsys)
    assert main(["pseudo-labels", "--embeddings", str(emb), "--k", "5000", "--out", str(out)]) == 2
    assert "larger than the number of examples" in _err(capsys)
    assert main(["pseudo-labels", "--embeddings", str(emb), "--restarts", "0", "--out", str(out)]) == 2
    assert "restarts must be" in _err(capsys)
    assert main(["pseudo-labels", "--embeddings", str(emb), "--restarts", "2", "--combine", "mean",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "combine must be one of" in _err(capsys)
    assert not out.exists()
    # an output over an input is refused, and the input survives
    before = _digest(pseudo)
    assert main(["pseudo-labels", "--embeddings", str(emb), "--out", str(emb / "ids.npy")]) == 2
    assert "would overwrite the input" in _err(capsys)
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(pseudo), "--out", str(pseudo)]) == 2
    assert "would overwrite the input" in _err(capsys) and _digest(pseudo) == before
    # pseudo-labels of other data: ids do not match
    other = tmp_path / "other.parquet"
    t = pq.read_table(pseudo)
    pq.write_table(t.set_column(0, "id", pa.array(np.arange(len(t)))), other)
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(other), "--model", "mlp", "--epochs", "1",
                 "--out", str(out)]) == 2  # fmt: skip
    err = _err(capsys)
    assert "have no pseudo-label" in err and len(err.strip().splitlines()) == 1
    # one cluster
    one = tmp_path / "one.parquet"
    pq.write_table(t.set_column(1, "pseudo_label", pa.array(np.zeros(len(t), dtype=np.int64))), one)
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(one), "--out", str(out)]) == 2
    assert "one pseudo-label" in _err(capsys)
    # not a pseudo-label file
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(data), "--out", str(out)]) == 2
    assert "not a readable Parquet" in _err(capsys)
    # no labels and no pseudo-labels
    assert main(["dynamics", "--data", str(data), "--out", str(out)]) == 2
    assert "--pseudo-labels" in _err(capsys)
    # --cutoff auto without threshold runs
    plain = tmp_path / "plain.parquet"
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(pseudo), "--model", "mlp", "--epochs", "1",
                 "--out", str(plain)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["select", "--scores", str(plain), "--score-column", "el2n", "--keep", "0.5", "--cutoff", "auto",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "aum_flagged" in _err(capsys)
    assert main(["select", "--scores", str(plain), "--score-column", "el2n", "--keep", "0.5", "--cutoff", "half",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "--cutoff must be" in _err(capsys)
    assert not out.exists()


def test_audit_rechecks_a_labelfree_score_across_clustering_seeds(unlabelled, tmp_path, capsys):
    root, data, emb, pseudo, _ = unlabelled
    scores = tmp_path / "lf.parquet"
    assert main(["dynamics", "--data", str(data), "--pseudo-labels", str(pseudo), "--model", "mlp", "--epochs", "2",
                 "--out", str(scores)]) == 0  # fmt: skip
    out = tmp_path / "audit"
    assert main(["audit", "--embeddings", str(emb), "--scores", str(scores), "--score-column", "el2n",
                 "--data", str(data), "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads((out / "audit.json").read_text())
    names = {c["name"]: c for c in doc["checks"]}
    stab = doc["figures"]["seed_stability"]  # rechecked: the status follows the rule on its figures
    zmin, ex = min(p["z"] for p in stab["pairs"]), stab["median_excess_overlap"]
    assert names["seed stability"]["status"] == ("fail" if zmin < 3 else ("warn" if ex < 0.5 else "pass"))
    assert "needs a recomputable score" not in json.dumps(doc["checks"])


def test_combine_two_runs_by_mean_rank(tmp_path, capsys):
    from selfprune.io.tables import read_scores, write_scores
    from selfprune.scores import Scores, ScoreTable, mean_rank

    rng = np.random.default_rng(1)
    ids = np.arange(100)
    labels = rng.integers(0, 3, 100)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    sa = Scores(ids, rng.normal(size=100), "el2n")
    write_scores(a, ScoreTable(ids, {"el2n": sa.values, "aum": -sa.values}, labels=labels))
    sb = Scores(ids[::-1], rng.normal(size=100), "el2n")
    write_scores(b, sb)
    before = _digest(a)
    out = tmp_path / "c.parquet"
    assert main(["combine", "--scores", str(a), "--scores", str(b), "--score-column", "el2n", "--out", str(out)]) == 0
    got = read_scores(out)
    assert list(got) == ["mean-rank"] and np.array_equal(got.labels, labels)
    assert np.array_equal(got["mean-rank"].values, mean_rank([sa, sb]).values)
    assert _digest(a) == before
    capsys.readouterr()
    # several columns and no --score-column; a missing column; an output over an input
    assert main(["combine", "--scores", str(a), "--scores", str(b), "--out", str(tmp_path / "d.parquet")]) == 2
    assert "several columns" in _err(capsys)
    assert main(["combine", "--scores", str(a), "--scores", str(b), "--score-column", "aum",
                 "--out", str(tmp_path / "d.parquet")]) == 2  # fmt: skip
    assert "no column 'aum'" in _err(capsys)
    assert main(["combine", "--scores", str(a), "--scores", str(b), "--score-column", "el2n", "--out", str(a)]) == 2
    assert "would overwrite the input" in _err(capsys) and _digest(a) == before
    assert not (tmp_path / "d.parquet").exists()

import numpy as np
import pytest

from selfprune import DataSourceError, Scores
from selfprune.io.tables import read_ids, read_scores, write_ids, write_scores


def test_roundtrip_with_meta_and_labels(tmp_path):
    s = Scores(ids=["a", "b", "c"], values=[0.2, 0.9, 0.1], name="prototypes", meta={"k": 2, "encoder": "pixels"})
    write_scores(tmp_path / "s.parquet", s.to_table(labels=[0, 1, 1]))
    t = read_scores(tmp_path / "s.parquet")
    assert t["prototypes"].values.tolist() == [0.2, 0.9, 0.1]
    assert t["prototypes"].meta["k"] == 2 and t["prototypes"].meta["encoder"] == "pixels"
    assert t.labels.tolist() == [0, 1, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]  # no temp files left


def test_readable_by_plain_pyarrow(tmp_path):
    import pyarrow.parquet as pq

    write_scores(tmp_path / "s.parquet", Scores(ids=[1, 2], values=[0.0, 1.0], name="m"))
    table = pq.read_table(tmp_path / "s.parquet")
    assert table.column_names == ["id", "m"]
    assert b"selfprune" in table.schema.metadata


def test_corrupt_and_missing(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(DataSourceError, match="not a readable Parquet"):
        read_scores(tmp_path / "bad.parquet")
    with pytest.raises(DataSourceError, match="not found"):
        read_scores(tmp_path / "none.parquet")


def test_duplicate_ids_in_file_rejected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 1], "m": [0.0, 1.0]}), tmp_path / "d.parquet")
    with pytest.raises(DataSourceError, match="unique"):
        read_scores(tmp_path / "d.parquet")


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.parquet"
    write_scores(path, Scores(ids=[1], values=[1.0], name="m"))
    before = path.read_bytes()
    import pyarrow.parquet as pq

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        write_scores(path, Scores(ids=[1], values=[2.0], name="m"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]


def test_ids_parquet_and_text(tmp_path):
    paths = write_ids(tmp_path / "kept.parquet", np.array([3, 1, 2]))
    assert [p.name for p in paths] == ["kept.parquet", "kept.txt"]
    assert read_ids(tmp_path / "kept.parquet").tolist() == [3, 1, 2]
    assert read_ids(tmp_path / "kept.txt").tolist() == [3, 1, 2]


def test_pseudo_labels_travel_apart_from_labels(tmp_path):
    import pyarrow.parquet as pq

    from selfprune.io.tables import read_pseudo_labels, read_scores, write_pseudo_labels, write_scores
    from selfprune.metrics.pseudo import PseudoLabels
    from selfprune.scores import Scores, ScoreTable

    t = ScoreTable([5, 3, 9], {"a": [0.1, 0.2, 0.3]}, labels=[1, 0, 1], pseudo_labels=[2, 2, 0])
    write_scores(tmp_path / "s.parquet", t)
    back = read_scores(tmp_path / "s.parquet")
    assert list(back) == ["a"]  # pseudo_label is not a score column
    np.testing.assert_array_equal(back.pseudo_labels, [2, 2, 0])
    np.testing.assert_array_equal(back.labels, [1, 0, 1])
    grown = back.with_scores(Scores([9, 5, 3], [1.0, 2.0, 3.0], "b"))
    order = {int(i): k for k, i in enumerate(grown.ids)}
    assert grown.pseudo_labels[order[9]] == 0 and grown.pseudo_labels[order[5]] == 2
    pl = PseudoLabels(np.array(["x", "y", "z"]), np.array([0, 1, 1]), np.array([0.9, 0.5, 1.0]), k=3, meta={"seed": 4})
    write_pseudo_labels(tmp_path / "p.parquet", pl)
    again = read_pseudo_labels(tmp_path / "p.parquet")
    np.testing.assert_array_equal(again.ids, pl.ids)
    np.testing.assert_array_equal(again.labels, pl.labels)
    assert again.k == 3 and again.meta["seed"] == 4 and again.restart_labels is None
    # restarts kept for proxy heads travel as pseudo_label_1, ... and come back as they went
    heads = np.array([[0, 1, 1], [2, 2, 0], [1, 0, 3]])
    ph = PseudoLabels(pl.ids, heads[0], pl.confidence, k=4, meta={"combine": "heads"}, restart_labels=heads)
    write_pseudo_labels(tmp_path / "h.parquet", ph)
    assert pq.read_schema(tmp_path / "h.parquet").names == [
        "id", "pseudo_label", "confidence", "pseudo_label_1", "pseudo_label_2"
    ]  # fmt: skip
    back_h = read_pseudo_labels(tmp_path / "h.parquet")
    np.testing.assert_array_equal(back_h.restart_labels, heads)
    np.testing.assert_array_equal(back_h.labels, heads[0])
    assert back_h.heads == 3 and back_h.k == 4


def test_write_parquet_reads_back_with_its_metadata(tmp_path):
    import json
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from selfprune.io.tables import write_parquet

    rng = np.random.default_rng(0)
    ids, sim = rng.permutation(50), rng.random(50)
    meta = {"eps": 0.05, "k": np.int64(7), "source": Path("emb.npy"), "nested": {"a": [1, 2]}}
    out = write_parquet(tmp_path / "t.parquet", {"id": pa.array(ids), "similarity": pa.array(sim)}, meta)
    assert out == tmp_path / "t.parquet"
    t = pq.read_table(out)
    assert t.column_names == ["id", "similarity"]
    assert t.schema.field("similarity").type == pa.float64()
    assert np.array_equal(t.column("id").to_numpy(), ids) and np.array_equal(t.column("similarity").to_numpy(), sim)
    got = json.loads(t.schema.metadata[b"selfprune"])
    assert got == {"eps": 0.05, "k": "7", "source": "emb.npy", "nested": {"a": [1, 2]}}  # str() for the rest
    assert list(t.schema.metadata) == [b"selfprune"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_write_parquet_keeps_a_tables_own_metadata_and_matches_plain_pyarrow(tmp_path):
    import pyarrow.parquet as pq

    from selfprune.io.tables import write_parquet

    table = Scores(ids=[3, 1, 2], values=[0.5, 0.25, 1.0], name="el2n", meta={"epoch": 2}).to_table().to_arrow()
    write_parquet(tmp_path / "a.parquet", table)
    pq.write_table(table, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert read_scores(tmp_path / "a.parquet")["el2n"].meta["epoch"] == 2
    # metadata given replaces the table's own
    write_parquet(tmp_path / "c.parquet", table, {"other": 1})
    assert pq.read_table(tmp_path / "c.parquet").schema.metadata == {b"selfprune": b'{"other": 1}'}

"""The core commands end to end on real (small) data, and their manners on bad input."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from selfprune.cli import main


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_embed_score_select_pipeline(tmp_path, capsys):
    emb = tmp_path / "emb"
    assert main(["embed", "--data", "digits", "--encoder", "pixels", "--set", "dim=16", "--out", str(emb)]) == 0
    assert (
        main(["score", "--embeddings", str(emb), "--k", "10", "--seeds", "0,1", "--out", str(tmp_path / "s.parquet")])
        == 0
    )
    assert (
        main(
            [
                "score",
                "--embeddings",
                str(emb),
                "--metric",
                "class-prototypes",
                "--add-to",
                "--out",
                str(tmp_path / "s.parquet"),
            ]
        )
        == 0
    )
    from selfprune.io.tables import read_ids, read_scores

    table = read_scores(tmp_path / "s.parquet")
    assert list(table) == ["prototypes", "class-prototypes"]
    assert table["prototypes"].meta["encoder"] == "pixels" and table["prototypes"].meta["seeds"] == [0, 1]
    rc = main(
        [
            "select",
            "--scores",
            str(tmp_path / "s.parquet"),
            "--score-column",
            "prototypes",
            "--keep",
            "0.5",
            "--policy",
            "hard",
            "--balance-classes",
            "--out",
            str(tmp_path / "kept.parquet"),
        ]
    )
    assert rc == 0
    kept = read_ids(tmp_path / "kept.parquet")
    assert len(kept) == round(0.5 * 1438)
    assert read_ids(tmp_path / "kept.txt").tolist() == kept.tolist()
    out = capsys.readouterr().out
    assert "class 9" in out and "kept 719 of 1438" in out


def test_select_auto_and_d2_policies(tmp_path, capsys):
    emb, scores = tmp_path / "emb", tmp_path / "s.parquet"
    assert main(["embed", "--data", "digits", "--set", "dim=16", "--out", str(emb)]) == 0
    assert main(["score", "--embeddings", str(emb), "--k", "10", "--out", str(scores)]) == 0
    capsys.readouterr()
    rc = main(
        [
            "select",
            "--scores",
            str(scores),
            "--keep",
            "0.3",
            "--policy",
            "auto",
            "--data",
            "digits",
            "--out",
            str(tmp_path / "auto.parquet"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "auto policy" in out and "validation accuracy" in out
    import json

    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(tmp_path / "auto.parquet").metadata[b"selfprune"])
    # the file records the decision the library makes on the same inputs
    from selfprune.evaluate.auto import decide_policy
    from selfprune.io.sources import load_source
    from selfprune.io.tables import read_scores

    ds = load_source("digits")
    s = read_scores(scores)["prototypes"]
    want = decide_policy(s, 0.3, x=ds.items, y=ds.labels, x_ids=ds.ids, trainer="linear", n_seeds=2, seed=0)
    assert meta["summary"]["auto"]["policy"] == want.policy
    assert meta["summary"]["auto"]["reason"] == want.reason
    assert (
        main(
            [
                "select",
                "--scores",
                str(scores),
                "--keep",
                "0.3",
                "--policy",
                "d2",
                "--embeddings",
                str(emb),
                "--out",
                str(tmp_path / "d2.parquet"),
            ]
        )
        == 0
    )
    from selfprune.io.tables import read_ids

    assert len(read_ids(tmp_path / "d2.parquet")) == round(0.3 * 1438)
    assert (
        main(["select", "--scores", str(scores), "--keep", "0.3", "--policy", "d2", "--out", str(tmp_path / "x")]) == 2
    )
    assert "needs --embeddings" in capsys.readouterr().err


def test_score_from_npy_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.save(tmp_path / "e.npy", x)
    assert (
        main(["score", "--embeddings", str(tmp_path / "e.npy"), "--k", "3", "--out", str(tmp_path / "s.parquet")]) == 0
    )


@pytest.mark.parametrize(
    "make, args, message",
    [
        (
            lambda p: np.save(p / "e.npy", np.array([[1.0, np.nan], [0.0, 1.0]])),
            ["score", "--embeddings", "{p}/e.npy", "--out", "{p}/s.parquet"],
            "NaN or Inf",
        ),
        (
            lambda p: np.save(p / "e.npy", np.ones((5, 2))),
            ["score", "--embeddings", "{p}/e.npy", "--k", "9", "--out", "{p}/s.parquet"],
            "k=9 is larger",
        ),
        (
            lambda p: np.save(p / "e.npy", np.ones((0, 2))),
            ["score", "--embeddings", "{p}/e.npy", "--out", "{p}/s.parquet"],
            "empty",
        ),
        (
            lambda p: (p / "s.parquet").write_bytes(b"corrupt"),
            ["select", "--scores", "{p}/s.parquet", "--keep", "0.5", "--out", "{p}/k.parquet"],
            "not a readable Parquet",
        ),
        (None, ["select", "--scores", "{p}/s.parquet", "--keep", "2.5", "--out", "{p}/k.parquet"], "keep"),
        (None, ["select", "--scores", "{p}/s.parquet", "--keep", "0", "--out", "{p}/k.parquet"], "keep"),
        (None, ["select", "--scores", "{p}/s.parquet", "--keep", "999", "--out", "{p}/k.parquet"], "count must be in"),
        (
            None,
            ["select", "--scores", "{p}/s.parquet", "--keep", "0.5", "--balance-classes", "--out", "{p}/k.parquet"],
            "needs labels",
        ),
        (None, ["embed", "--data", "nowhere", "--out", "{p}/emb"], "neither a built-in"),
        (None, ["embed", "--data", "digits", "--set", "foo=1", "--out", "{p}/emb"], "bad settings for 'pixels'"),
        (
            lambda p: np.savez(p / "d.npz", X=np.zeros((3, 4, 4), np.uint8), y=[0, 1]),
            ["embed", "--data", "{p}/d.npz", "--out", "{p}/emb"],
            "2 labels for 3 rows",
        ),
        (
            lambda p: np.savez(p / "d.npz", X=np.zeros((3, 4, 4), np.uint8), ids=[1, 1, 2]),
            ["embed", "--data", "{p}/d.npz", "--out", "{p}/emb"],
            "unique",
        ),
    ],
)
def test_bad_input_one_line_exit_2_inputs_untouched(tmp_path, capsys, make, args, message):
    from selfprune import Scores
    from selfprune.io.tables import write_scores

    if make is None:
        write_scores(tmp_path / "s.parquet", Scores(ids=np.arange(10), values=np.arange(10.0), name="m"))
    else:
        make(tmp_path)
    before = {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()}
    rc = main([a.format(p=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()} == before


def test_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "selfprune.cli",
            "select",
            "--scores",
            str(tmp_path / "x.parquet"),
            "--keep",
            "0.5",
            "--out",
            str(tmp_path / "k.parquet"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "score file not found" in proc.stderr


def test_every_command_has_help(capsys):
    from selfprune.cli import _register_all, app

    _register_all()
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"embed", "score", "select", "demo"} <= set(names)
    for name in names:
        assert main([name, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out

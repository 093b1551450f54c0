"""``selfprune curve``: files written, table printed, cached rerun, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from selfprune.cli import main


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def score_file(tmp_path_factory):
    from selfprune.io.sources import load_source
    from selfprune.io.tables import write_scores
    from selfprune.metrics import prototypes

    tr = load_source("digits")
    x = tr.items.reshape(len(tr), -1).astype(np.float32)
    path = tmp_path_factory.mktemp("scores") / "scores.parquet"
    write_scores(path, prototypes(x, k=10, ids=tr.ids))
    return path


def test_curve_end_to_end_and_cached_rerun(score_file, tmp_path, capsys):
    out = tmp_path / "curve"
    args = [
        "curve",
        "--data",
        "digits",
        "--scores",
        str(score_file),
        "--policies",
        "hard,auto",
        "--keep",
        "0.2,1.0",
        "--n-seeds",
        "2",
        "--model",
        "linear",
        "--out",
        str(out),
        "--bootstrap",
        "10",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    for f in ("curve.parquet", "curve.json", "curve.png", "fit.json"):
        assert (out / f).is_file()
    assert "prototypes" in text and "random" in text and "auto for prototypes at keep 0.2" in text
    data = json.loads((out / "curve.json").read_text())
    assert {r["metric"] for r in data["rows"]} == {"random", "prototypes"}
    assert len(data["rows"]) == 2 * 2 * 3  # seeds x keeps x (random, hard, auto)
    fit = json.loads((out / "fit.json").read_text())
    assert "prototypes/hard" in fit["statements"]
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 0
    assert "trained 0 run(s)" in capsys.readouterr().out
    from selfprune.evaluate.curve import read_curve

    assert read_curve(out / "curve.parquet").rows == data["rows"]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--policies", "hardest"], "policies"),
        (["--model", "linear", "--steps", "100"], "--steps"),
        (["--keep", "0.1,abc"], "--keep"),
        (["--metrics", "nope"], "nope"),
    ],
)
def test_bad_options_are_one_line_errors(score_file, tmp_path, capsys, extra, match):
    args = [
        "curve",
        "--data",
        "digits",
        "--scores",
        str(score_file),
        "--out",
        str(tmp_path / "c"),
        "--keep",
        "0.5",
        "--n-seeds",
        "1",
        *extra,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_file_data_needs_test_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((50, 4)).astype(np.float32), y=rng.integers(0, 2, 50))
    assert main(["curve", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "c")]) == 2
    assert "--test-data" in capsys.readouterr().err

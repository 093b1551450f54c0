import numpy as np

from selfprune.cli import main  # noqa: E402
from selfprune.io.tables import read_scores  # noqa: E402


def test_dynamics_command_writes_scores_and_plot(tmp_path, capsys):
    out, png = tmp_path / "dyn.parquet", tmp_path / "map.png"
    code = main(["dynamics", "--data", "digits", "--out", str(out), "--model", "linear",
                 "--epochs", "2", "--n-seeds", "2", "--limit", "300", "--plot", str(png),
                 "--record-dir", str(tmp_path / "rec"), "--grand", "both"])  # fmt: skip
    assert code == 0
    t = read_scores(out)
    want = {"el2n", "forgetting", "aum", "confidence", "variability", "grand", "grand_last"}
    assert want <= set(t)
    assert t.n_examples == 300 and t.labels is not None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "rec" / "seed-1" / "state.json").is_file()
    assert "el2n" in capsys.readouterr().out
    again = main(["dynamics", "--data", "digits", "--out", str(out), "--model", "linear",
                  "--epochs", "1", "--n-seeds", "1", "--limit", "300",
                  "--record-dir", str(tmp_path / "rec")])  # fmt: skip
    assert again == 2 and "already holds a recording" in capsys.readouterr().err


def test_memorization_command(tmp_path):
    out = tmp_path / "mem.parquet"
    assert main(["memorization", "--data", "digits", "--out", str(out), "--model", "linear",
                 "--runs", "3", "--epochs", "1", "--limit", "200"]) == 0  # fmt: skip
    t = read_scores(out)
    v = t["memorization"].values
    assert t.n_examples == 200 and np.all((v >= -1) & (v <= 1))


def test_bad_option_is_one_line_error(tmp_path, capsys):
    code = main(["dynamics", "--data", "digits", "--out", str(tmp_path / "x.parquet"),
                 "--epochs", "0", "--limit", "50"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "epochs must be" in err and "Traceback" not in err

import json

import numpy as np
import pytest

from selfprune.demo import DemoConfig, run_demo, summarize_runs


def test_summary_pairs_seeds_and_refuses_claims_within_spread():
    rows = [
        {"keep": 0.5, "policy": "hard", "seed": 0, "n_train": 5, "test_accuracy": 0.80},
        {"keep": 0.5, "policy": "hard", "seed": 1, "n_train": 5, "test_accuracy": 0.70},
        {"keep": 0.5, "policy": "random", "seed": 0, "n_train": 5, "test_accuracy": 0.75},
        {"keep": 0.5, "policy": "random", "seed": 1, "n_train": 5, "test_accuracy": 0.74},
    ]
    hard = next(r for r in summarize_runs(rows) if r["policy"] == "hard")
    assert hard["delta_vs_random"] == pytest.approx(0.005)
    assert hard["beats_random"] is False


def test_demo_on_digits_end_to_end_and_resumes(tmp_path):
    cfg = DemoConfig(data="digits", encoder="pixels", k=10, keeps=(0.5,), n_seeds=2, trainer="linear")
    first = run_demo(cfg, tmp_path)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "accuracy.png").stat().st_size > 1000
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["runs"]) == 3 * 2  # label-free hard, prototypes hard, random x 2 seeds
    assert {r["policy"] for r in data["runs"]} == {"random", "prototypes hard", "labelfree-el2n hard"}
    report = (tmp_path / "report.md").read_text()
    assert "How far label-free got" in report and "- keep 0.5:" in report
    assert "one clustering seed" in report
    assert first.headline()["labelfree_vs_random_points_at_keep_0.5"] is not None
    assert all(0.5 < r["test_accuracy"] <= 1.0 for r in data["runs"])
    runs = sorted((tmp_path / "cache" / "runs").iterdir())
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = run_demo(cfg, tmp_path)  # every run cached: nothing retrained, same table
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache" / "runs").iterdir())] == stamps
    assert again.rows == first.rows


def _digits_npz(path, *, labels=True):
    from selfprune.io.sources import load_source

    d = load_source("digits", split="train")
    x = np.asarray(d.take(slice(0, len(d))))
    arrays = {"X": x, "ids": np.arange(len(x)) + 1000}
    if labels:
        arrays["y"] = d.labels
    np.savez(path, **arrays)
    return x, d.labels


def test_demo_splits_hold_out_a_seeded_share_of_a_path_source(tmp_path):
    from selfprune.demo import demo_splits
    from selfprune.errors import InvalidInputError

    x, y = _digits_npz(tmp_path / "d.npz")
    cfg = DemoConfig(data=str(tmp_path / "d.npz"), test_share=0.25)
    tr, te = demo_splits(cfg)
    tr2, te2 = demo_splits(cfg)
    assert np.array_equal(te.ids, te2.ids) and len(te) == round(0.25 * len(x)) and len(tr) + len(te) == len(x)
    assert not set(tr.ids.tolist()) & set(te.ids.tolist())
    pos = te.ids - 1000  # the rows travel with their labels and pixels
    assert np.array_equal(te.labels, y[pos]) and np.array_equal(np.asarray(te.items), x[pos])
    tr3, te3 = demo_splits(DemoConfig(data=str(tmp_path / "d.npz"), test_data=str(tmp_path / "d.npz")))
    assert len(tr3) == len(te3) == len(x)
    _digits_npz(tmp_path / "u.npz", labels=False)
    with pytest.raises(InvalidInputError, match="no labels"):
        demo_splits(DemoConfig(data=str(tmp_path / "u.npz")))
    (tmp_path / "t.jsonl").write_text("".join(f'{{"text": "t{i}", "label": {i % 2}}}\n' for i in range(20)))
    with pytest.raises(InvalidInputError, match="holds text"):
        demo_splits(DemoConfig(data=str(tmp_path / "t.jsonl")))
    with pytest.raises(InvalidInputError, match="test share"):
        demo_splits(DemoConfig(data=str(tmp_path / "d.npz"), test_share=1.0))


def test_cli_demo_runs_on_a_path_with_its_own_test_share(tmp_path, capsys):
    from selfprune.cli import main

    _digits_npz(tmp_path / "d.npz")
    code = main(["demo", "--data", str(tmp_path / "d.npz"), "--model", "linear", "--n-seeds", "1",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = (tmp_path / "run" / "report.md").read_text()
    assert "# selfprune demo: " in report and "20% of the data held out" in report
    cfg = json.loads((tmp_path / "run" / "results.json").read_text())["config"]
    assert cfg["data"].endswith("d.npz") and cfg["test_share"] == 0.2

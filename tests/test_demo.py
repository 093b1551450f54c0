import json

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
    assert first.headline()["labelfree_vs_random_points_at_keep_0.5"] is not None
    assert all(0.5 < r["test_accuracy"] <= 1.0 for r in data["runs"])
    runs = sorted((tmp_path / "cache" / "runs").iterdir())
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = run_demo(cfg, tmp_path)  # every run cached: nothing retrained, same table
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache" / "runs").iterdir())] == stamps
    assert again.rows == first.rows

"""``curve_summary``: the per-point table of a scaling curve, against hand-computed numbers."""

import pytest

from selfprune.evaluate.curve import Curve
from selfprune.evaluate.curve_summary import curve_summary
from selfprune.evaluate.powerlaw import analyze_curve


def _row(metric, policy, keep, seed, n, acc, chosen=None):
    return {"metric": metric, "policy": policy, "chosen_policy": chosen or policy, "keep": keep, "seed": seed,
            "n_train": n, "test_accuracy": acc}  # fmt: skip


def test_groups_seeds_in_order_with_percent_stats_and_comparison():
    rows = [
        _row("random", "random", 0.5, 0, 50, 0.70),
        _row("random", "random", 0.5, 1, 50, 0.72),
        _row("proto", "auto", 0.5, 0, 50, 0.80, chosen="hard"),
        _row("proto", "auto", 0.5, 1, 50, 0.84, chosen="easy"),
        _row("random", "random", 1.0, 0, 100, 0.90),
        _row("random", "random", 1.0, 1, 100, 0.90),
    ]
    curve = Curve(rows=rows)
    out = curve_summary(curve, analyze_curve(curve, bootstrap=0))
    assert [(r["metric"], r["policy"], r["keep"]) for r in out] == [
        ("random", "random", 0.5), ("proto", "auto", 0.5), ("random", "random", 1.0),
    ]  # fmt: skip
    auto = out[1]
    assert auto["chosen"] == ["easy", "hard"] and auto["n_train"] == 50 and auto["n_seeds"] == 2
    assert auto["mean"] == pytest.approx(82.0) and auto["std"] == pytest.approx(2.0)
    assert (auto["min"], auto["max"]) == (pytest.approx(80.0), pytest.approx(84.0))
    assert auto["vs_random"] == pytest.approx(11.0) and auto["verdict"] == "above"
    assert out[0]["vs_random"] is None and out[0]["verdict"] is None


def test_without_analysis_no_comparison():
    out = curve_summary(Curve(rows=[_row("m", "hard", 0.3, 0, 3, 0.5)]))
    assert out[0]["vs_random"] is None and out[0]["mean"] == pytest.approx(50.0) and out[0]["std"] == 0.0

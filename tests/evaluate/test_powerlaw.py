"""Power-law fits recover planted exponents; comparisons with random make no claim inside the spread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.evaluate.powerlaw import analyze_curve, compare_to_random, fit_power_law


def _synthetic(a, b, c, noise, seed, sizes=(100, 200, 400, 800, 1600, 3200, 6400), seeds=3):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.asarray(sizes, dtype=float), seeds)
    g = np.tile(np.arange(seeds), len(sizes))
    e = a * n ** (-b) + c + rng.normal(0, noise, len(n))
    return n, np.clip(e, 0, 1), g


def test_exact_curve_is_recovered():
    n, e, _ = _synthetic(3.0, 0.7, 0.02, 0.0, 0)
    f = fit_power_law(n, e)
    assert f.b == pytest.approx(0.7, abs=1e-4)
    assert f.c == pytest.approx(0.02, abs=1e-4)
    assert f.a == pytest.approx(3.0, rel=1e-3)
    assert np.allclose(f.predict(n), e, atol=1e-6)


@pytest.mark.parametrize("b_true", [0.3, 0.8])
def test_noisy_exponent_within_stated_uncertainty(b_true):
    """Over independent noisy replicates, the planted b lies within 2 stated sigmas most of the time,
    and the stated sigma is informative (well below b itself)."""
    inside = 0
    reps = 12
    for rep in range(reps):
        n, e, g = _synthetic(2.0, b_true, 0.05, 0.003, rep)
        f = fit_power_law(n, e, groups=g, bootstrap=30, seed=rep)
        assert math.isfinite(f.b_sigma) and f.b_sigma < 0.5 * b_true
        inside += abs(f.b - b_true) <= 2 * f.b_sigma
    assert inside >= 0.75 * reps


def test_different_exponents_are_told_apart():
    n, e1, g = _synthetic(2.0, 0.3, 0.05, 0.002, 1)
    _, e2, _ = _synthetic(2.0, 0.8, 0.05, 0.002, 2)
    f1 = fit_power_law(n, e1, groups=g, bootstrap=30)
    f2 = fit_power_law(n, e2, groups=g, bootstrap=30)
    assert f2.b - f1.b > 2 * math.hypot(f1.b_sigma, f2.b_sigma)


def test_three_sizes_fit_but_uncertainty_unknown():
    n = np.array([100.0, 1000.0, 10000.0])
    f = fit_power_law(n, 1.0 * n**-0.5 + 0.01)
    assert f.b == pytest.approx(0.5, abs=1e-3)
    assert math.isinf(f.b_err) and f.to_dict()["b_err"] is None


@pytest.mark.parametrize(
    "n, e, match",
    [
        ([10, 20], [0.5, 0.4], "3 distinct sizes"),
        ([10, 20, 40], [0.5, 0.4, 1.3], "error must be in"),
        ([0, 20, 40], [0.5, 0.4, 0.3], "n must be > 0"),
        ([10, 20, 40], [0.5, np.nan, 0.3], "finite"),
        ([10, 20, 40], [0.5, 0.4], "equal length"),
    ],
)
def test_bad_input(n, e, match):
    with pytest.raises(InvalidInputError, match=match):
        fit_power_law(n, e)


def _rows(metric_acc: dict[float, list[float]], random_acc: dict[float, list[float]], n_total=1000):
    rows = []
    for name, pol, table in (("random", "random", random_acc), ("m", "hard", metric_acc)):
        for keep, accs in table.items():
            for s, a in enumerate(accs):
                rows.append(
                    {
                        "metric": name,
                        "policy": pol,
                        "keep": keep,
                        "seed": s,
                        "n_train": int(keep * n_total),
                        "test_accuracy": a,
                    }
                )
    return rows


def test_no_claim_where_spreads_overlap():
    # higher mean at every size, but the seed ranges overlap: no claim of beating random
    rows = _rows(
        {0.1: [0.80, 0.86, 0.84], 0.3: [0.88, 0.90, 0.91], 1.0: [0.95, 0.95, 0.95]},
        {0.1: [0.79, 0.81, 0.82], 0.3: [0.87, 0.895, 0.89], 1.0: [0.95, 0.95, 0.95]},
    )
    cs = compare_to_random(rows, "m", "hard")
    assert [c.verdict for c in cs] == ["overlap", "overlap", "overlap"]
    assert all(c.diff >= 0 for c in cs)
    st = analyze_curve(rows, bootstrap=0).statements["m/hard"]
    assert "does not beat random" in st and "bends below" not in st


def test_claim_only_where_separated():
    rows = _rows(
        {0.1: [0.70, 0.71, 0.72], 0.3: [0.90, 0.91, 0.92], 1.0: [0.95, 0.95, 0.95]},
        {0.1: [0.75, 0.76, 0.77], 0.3: [0.85, 0.86, 0.87], 1.0: [0.95, 0.95, 0.95]},
    )
    cs = {c.keep: c for c in compare_to_random(rows, "m", "hard")}
    assert cs[0.1].verdict == "below" and cs[0.3].verdict == "above" and cs[1.0].verdict == "overlap"
    assert cs[0.3].diff == pytest.approx(0.05)
    st = analyze_curve(rows, bootstrap=0).statements["m/hard"]
    assert "beats random beyond the seed spread) at n=300 (+5.0 pts)" in st
    assert "worse than random beyond the seed spread at n=100" in st


def test_one_seed_makes_no_claim():
    rows = _rows({0.1: [0.9], 0.3: [0.95], 1.0: [0.97]}, {0.1: [0.5], 0.3: [0.6], 1.0: [0.97]})
    assert {c.verdict for c in compare_to_random(rows, "m", "hard")} == {"one seed"}
    st = analyze_curve(rows, bootstrap=0).statements["m/hard"]
    assert "does not beat random" in st and "one seed, no claim" in st


def test_analysis_without_random_and_to_dict():
    rows = [r for r in _rows({0.1: [0.8, 0.81], 0.3: [0.9, 0.9], 1.0: [0.95, 0.95]}, {}) if r["metric"] == "m"]
    a = analyze_curve(rows, bootstrap=0)
    assert "no random baseline" in a.statements["m/hard"]
    d = a.to_dict()
    assert set(d) == {"fits", "fit_errors", "comparisons", "statements", "full_accuracy"}
    assert d["full_accuracy"]["m/hard"] == pytest.approx(0.95)
    with pytest.raises(InvalidInputError, match="no random baseline"):
        compare_to_random(rows, "m", "hard")


def test_bootstrap_counts_the_resamples_it_leaves_out():
    # seed 0 ran three sizes, seed 1 only two: a resample drawing seed 1 twice has two sizes and
    # cannot be fitted. With two seeds that happens in a quarter of the resamples.
    n = np.array([100.0, 1000.0, 10000.0, 100.0, 1000.0])
    e = 1.0 * n**-0.5 + 0.01
    g = np.array([0, 0, 0, 1, 1])
    f = fit_power_law(n, e, groups=g, bootstrap=400, seed=3)
    assert f.bootstrap_fitted + f.bootstrap_dropped == 400
    assert 0.15 < f.bootstrap_dropped / 400 < 0.35
    assert f.to_dict()["bootstrap_dropped"] == f.bootstrap_dropped
    full = fit_power_law(n[:3], e[:3], groups=g[:3], bootstrap=50)
    assert full.bootstrap_dropped == 0


def test_statement_says_why_a_fit_failed():
    rows = [r for r in _rows({0.1: [0.8, 0.81], 1.0: [0.95, 0.95]}, {0.1: [0.8, 0.8], 1.0: [0.95, 0.95]})]
    st = analyze_curve(rows, bootstrap=0).statements["m/hard"]
    assert "no power-law fit (fit_power_law: needs at least 3 distinct sizes" in st

"""The automatic policy follows Sorscher et al. on a teacher-student perceptron: easy when the kept
set is small, hard when it is large, decided from pilot runs with a linear trainer."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from selfprune.errors import InvalidInputError
from selfprune.evaluate.auto import PolicyDecision, decide_policy
from selfprune.scores import Scores


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):  # oversubscribed BLAS threads make small fits crawl on busy machines
        yield


def teacher_student(n: int, d: int, seed: int, probe_noise: float = 0.0):
    """x ~ N(0, I_d), y = [t . x > 0]; the score is minus the margin to a (noisy) probe of the
    teacher: higher = closer to the boundary = harder (as in Sorscher et al. 2022)."""
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(d)
    t /= np.linalg.norm(t)
    x = rng.standard_normal((n, d))
    y = (x @ t > 0).astype(np.int64)
    probe = t + probe_noise * rng.standard_normal(d) / np.sqrt(d)
    probe /= np.linalg.norm(probe)
    return x, y, Scores(np.arange(n), -np.abs(x @ probe), "margin")


@pytest.mark.parametrize("seed", [0, 1])
def test_scarce_picks_easy(seed):
    x, y, s = teacher_student(2000, 50, seed)  # 5% kept: 80 pilot examples for 50 dimensions
    dec = decide_policy(s, 0.05, x=x, y=y, seeds=(0, 1))
    assert dec.policy == "easy", dec.reason
    arms = dec.pilot["arms"]
    assert arms["easy"]["mean"] > arms["hard"]["mean"]
    assert dec.reason.startswith("easy:") and "scarce" in dec.reason


@pytest.mark.parametrize("seed", [0, 1])
def test_abundant_picks_hard(seed):
    x, y, s = teacher_student(40000, 50, seed)  # same 5%: 1,600 pilot examples for 50 dimensions
    dec = decide_policy(s, 0.05, x=x, y=y, seeds=(0, 1))
    assert dec.policy == "hard", dec.reason
    assert dec.pilot["arms"]["hard"]["mean"] > dec.pilot["arms"]["easy"]["mean"]
    assert "abundant" in dec.reason


def test_pilot_numbers_and_sizes():
    x, y, s = teacher_student(1000, 10, 0)
    dec = decide_policy(s, 0.2, x=x, y=y, seeds=(3, 4), val_fraction=0.25)
    p = dec.pilot
    assert p["n_val"] == 250 and p["n_pool"] == 750 and p["keep"] == 150
    assert set(p["arms"]) == {"easy", "hard", "stratified", "random"}
    for arm in p["arms"].values():
        assert len(arm["accuracy"]) == 2 and arm["min"] <= arm["mean"] <= arm["max"]
    assert isinstance(dec, PolicyDecision) and dec.to_dict()["policy"] == dec.policy


def test_same_inputs_same_decision_and_alignment_by_ids():
    x, y, s = teacher_student(1500, 20, 3, probe_noise=0.2)
    a = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), seed=5)
    b = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), seed=5)
    assert a == b
    # the same examples given in another row order, named by x_ids, decide the same
    perm = np.random.default_rng(0).permutation(len(x))
    c = decide_policy(s, 0.1, x=x[perm], y=y[perm], x_ids=s.ids[perm], seeds=(0, 1), seed=5)
    assert c.pilot["arms"] == a.pilot["arms"] and c.policy == a.policy


def test_random_when_the_score_only_hurts():
    """A score equal to the label: hard keeps one class, easy the other; random wins clearly."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1200, 5))
    y = (x[:, 0] > 0).astype(np.int64)
    s = Scores(np.arange(1200), y.astype(float) + 1e-3 * rng.random(1200), "label-copy")
    dec = decide_policy(s, 0.2, x=x, y=y, seeds=(0, 1), candidates=("easy", "hard"))
    assert dec.policy == "random"
    assert "does not help" in dec.reason


def test_explicit_validation_set():
    x, y, s = teacher_student(2000, 20, 0)
    xv, yv, _ = teacher_student(500, 20, 0)  # same teacher (same seed), different draw size
    dec = decide_policy(s, 0.1, x=x, y=y, x_val=xv, y_val=yv, seeds=(0, 1))
    assert dec.pilot["n_val"] == 500 and dec.pilot["n_pool"] == 2000 and dec.pilot["keep"] == 200


def test_keep_everything_needs_no_pilots():
    calls = []

    def trainer(*a, **k):
        calls.append(1)
        raise AssertionError("no pilot expected")

    x, y, s = teacher_student(100, 5, 0)
    dec = decide_policy(s, 1.0, x=x, y=y, trainer=trainer)
    assert dec.pilot["arms"] == {} and not calls and "nothing to decide" in dec.reason


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"candidates": ("random",)}, "candidates"),
        ({"candidates": ()}, "candidates"),
        ({"seeds": ()}, "seeds"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"x_val": np.zeros((3, 5))}, "without y_val"),
        ({"trainer": "nope"}, "unknown trainer"),
    ],
)
def test_bad_input(kw, match):
    x, y, s = teacher_student(100, 5, 0)
    with pytest.raises(InvalidInputError, match=match):
        decide_policy(s, 0.5, x=x, y=y, **kw)


def test_rows_must_match_scores():
    x, y, s = teacher_student(100, 5, 0)
    with pytest.raises(InvalidInputError, match="x_ids"):
        decide_policy(s, 0.5, x=x[:50], y=y[:50])

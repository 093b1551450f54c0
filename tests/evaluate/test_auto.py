"""The automatic policy follows Sorscher et al. on a teacher-student perceptron: easy when the kept
set is small, hard when it is large, decided from pilot runs with a linear trainer. A score-driven
policy is returned only when its pilots beat random beyond the seed spread; otherwise random."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from selfprune.errors import InvalidInputError
from selfprune.evaluate.auto import PolicyDecision, decide_policy
from selfprune.evaluate.trainers import TrainResult
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
    assert arms["easy"]["min"] > arms["random"]["max"]
    assert dec.reason.startswith("easy:") and "scarce" in dec.reason
    assert "beats random beyond the seed spread" in dec.reason


@pytest.mark.parametrize("seed", [0, 1])
def test_abundant_picks_hard(seed):
    x, y, s = teacher_student(40000, 50, seed)  # same 5%: 1,600 pilot examples for 50 dimensions
    dec = decide_policy(s, 0.05, x=x, y=y, seeds=(0, 1))
    assert dec.policy == "hard", dec.reason
    assert dec.pilot["arms"]["hard"]["mean"] > dec.pilot["arms"]["easy"]["mean"]
    assert dec.pilot["arms"]["hard"]["min"] > dec.pilot["arms"]["random"]["max"]
    assert "abundant" in dec.reason and dec.pilot["candidate"] == "hard"


def test_pilot_numbers_and_sizes():
    x, y, s = teacher_student(1000, 10, 0)
    dec = decide_policy(s, 0.2, x=x, y=y, seeds=(3, 4), val_fraction=0.25)
    p = dec.pilot
    assert p["n_val"] == 250 and p["n_pool"] == 750 and p["keep"] == 150
    assert set(p["arms"]) == {"easy", "hard", "stratified", "random"}
    assert p["arms"][p["candidate"]]["mean"] == max(p["arms"][c]["mean"] for c in ("easy", "hard", "stratified"))
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
    arms = dec.pilot["arms"]
    assert arms["random"]["min"] > arms[dec.pilot["candidate"]]["max"]


def flagged(n: int = 1000, share: float = 0.2, seed: int = 0):
    """Column 0 flags the informative examples (a ``share`` of them); the score is the flag plus a
    little noise, so ``hard`` keeps flagged examples only and ``easy`` none."""
    rng = np.random.default_rng(seed)
    flag = (rng.random(n) < share).astype(np.float64)
    x = np.column_stack([flag, rng.standard_normal((n, 3))])
    y = rng.integers(0, 2, n)
    return x, y, Scores(np.arange(n), flag + 1e-3 * rng.random(n), "planted")


def by_flag(accuracy):
    """A deterministic trainer: accuracy = ``accuracy(share of flagged examples kept, seed)``."""

    def trainer(x_train, y_train, x_test, y_test, *, seed):
        return TrainResult(float(accuracy(float(np.mean(x_train[:, 0])), seed)), len(x_train), 1.0, 1)

    return trainer


def test_planted_informative_score_is_chosen():
    """Accuracy grows with the flagged share: hard keeps only flagged examples and beats random
    (which keeps about a fifth of them) beyond the seed spread."""
    x, y, s = flagged()
    dec = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1, 2), trainer=by_flag(lambda f, seed: 0.5 + 0.5 * f))
    arms = dec.pilot["arms"]
    assert dec.policy == "hard" and dec.pilot["candidate"] == "hard", dec.reason
    assert arms["hard"]["accuracy"] == [1.0, 1.0, 1.0]
    assert arms["hard"]["min"] > arms["random"]["max"] and arms["random"]["max"] < 0.75
    assert dec.reason.startswith("hard:") and "beats random beyond the seed spread" in dec.reason
    # the same score with a trainer it cannot help: nothing to choose, random
    flat = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), trainer=by_flag(lambda f, seed: 0.7))
    assert flat.policy == "random" and flat.pilot["candidate"] == "easy"


def test_planted_mid_difficulty_picks_stratified():
    """Accuracy peaks when half the kept examples are flagged: CCS spends the budget evenly over the
    two occupied strata (flagged, unflagged), so stratified is the one right answer."""
    x, y, s = flagged()
    dec = decide_policy(s, 0.1, x=x, y=y, n_seeds=2, trainer=by_flag(lambda f, seed: 1.0 - abs(f - 0.5)))
    arms = dec.pilot["arms"]
    assert dec.pilot["candidate"] == "stratified" and dec.policy == "stratified", dec.reason
    assert arms["stratified"]["accuracy"] == [1.0, 1.0]
    assert arms["hard"]["accuracy"] == arms["easy"]["accuracy"] == [0.5, 0.5]
    assert dec.pilot["seeds"] == [0, 1]


def test_seed_count_and_seed_list_agree_and_an_int_list_is_refused():
    x, y, s = flagged()
    trainer = by_flag(lambda f, seed: 0.5 + 0.5 * f - 0.01 * seed)
    assert decide_policy(s, 0.1, x=x, y=y, n_seeds=3, trainer=trainer) == decide_policy(
        s, 0.1, x=x, y=y, seeds=[0, 1, 2], trainer=trainer
    )
    with pytest.raises(InvalidInputError, match=r"^decide_policy: seeds must be a list.*n_seeds=2"):
        decide_policy(s, 0.1, x=x, y=y, seeds=2, trainer=trainer)


def test_overlapping_spreads_choose_random():
    """hard's mean is above random's, but its worst seed is below random's best: no claim, random."""
    x, y, s = flagged()
    trainer = by_flag(lambda f, seed: 0.80 + 0.01 * f + (0.03 if seed == 1 else 0.0))
    dec = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), trainer=trainer)
    arms, best = dec.pilot["arms"], dec.pilot["candidate"]
    assert best == "hard" and arms[best]["mean"] > arms["random"]["mean"]
    assert arms[best]["min"] <= arms["random"]["max"]
    assert dec.policy == "random", dec.reason
    assert dec.reason.startswith("random:") and "did not beat random" in dec.reason and "safe" in dec.reason
    assert "best score-driven policy hard" in dec.reason and "2 seeds" in dec.reason


def test_one_pilot_seed_chooses_random():
    """Even a large margin on one seed is no evidence: one seed has no spread to judge by."""
    x, y, s = flagged()
    dec = decide_policy(s, 0.1, x=x, y=y, seeds=(0,), trainer=by_flag(lambda f, seed: 0.5 + 0.5 * f))
    assert dec.pilot["candidate"] == "hard" and dec.pilot["arms"]["hard"]["accuracy"] == [1.0]
    assert dec.policy == "random", dec.reason
    assert "one pilot seed" in dec.reason and "safe" in dec.reason


def test_candidate_below_random_chooses_random():
    """The digits case: the best candidate has a tight spread below random's mean, random a wide one
    (85.5% ± 0.1 vs 86.4% ± 1.3); keeping the candidate would lose to random."""
    x, y, s = flagged()

    def accuracy(f, seed):
        sign = 1.0 if seed == 1 else -1.0
        if f > 0.99:  # hard: only flagged examples
            return 0.855 + 0.001 * sign
        if f < 0.01:  # easy: no flagged example
            return 0.80
        return 0.864 + 0.013 * sign  # mixed subsets (random)

    dec = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), candidates=("easy", "hard"), trainer=by_flag(accuracy))
    arms = dec.pilot["arms"]
    assert dec.pilot["candidate"] == "hard" and arms["hard"]["mean"] < arms["random"]["mean"]
    assert dec.policy == "random", dec.reason
    assert "85.5% ± 0.1" in dec.reason and "86.4% ± 1.3" in dec.reason and "safe" in dec.reason


def test_ties_go_to_the_earlier_candidate():
    x, y, s = flagged()
    trainer = by_flag(lambda f, seed: 0.9 if f > 0.99 or f < 0.01 else 0.6)
    a = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), candidates=("easy", "hard"), trainer=trainer)
    b = decide_policy(s, 0.1, x=x, y=y, seeds=(0, 1), candidates=("hard", "easy"), trainer=trainer)
    assert (a.policy, b.policy) == ("easy", "hard")


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
        ({"seeds": 2}, "n_seeds=2"),
        ({"n_seeds": 0}, "n_seeds must be an int >= 1"),
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

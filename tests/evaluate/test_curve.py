"""Scaling curves: resume after a crash, caching by run, equality with and without cache."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from selfprune.errors import InvalidInputError
from selfprune.evaluate.curve import (
    COLUMNS,
    read_curve,
    scaling_curve,
    trainer_identity,
    write_curve,
)
from selfprune.evaluate.trainers import TrainResult
from selfprune.scores import Scores, ScoreTable


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):  # oversubscribed BLAS threads make small fits crawl on busy machines
        yield


def centroid_trainer(x_train, y_train, x_test, y_test, *, seed=0):
    """Nearest class mean on flattened features: deterministic and fast (the seed is unused)."""
    xtr = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    xte = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    classes = np.unique(y_train)
    means = np.stack([xtr[y_train == c].mean(0) for c in classes])
    d = ((xte[:, None, :] - means[None]) ** 2).sum(-1)
    acc = float(np.mean(classes[d.argmin(1)] == y_test))
    return TrainResult(acc, len(xtr), 1.0, 1, {"trainer": "centroid"})


class Counting:
    """Wraps a trainer, counts calls and can fail on a given call (a crash midway)."""

    def __init__(self, fail_at: int | None = None):
        self.calls = 0
        self.fail_at = fail_at
        self.__qualname__ = "centroid_trainer"  # same cache identity as the plain function
        self.__module__ = centroid_trainer.__module__

    def __call__(self, *args, **kw):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("killed")
        return centroid_trainer(*args, **kw)


@pytest.fixture(scope="module")
def data():
    from selfprune.io.sources import load_source

    tr, te = load_source("digits"), load_source("digits", split="test")
    x = tr.items.reshape(len(tr), -1).astype(np.float64)
    # a planted score: distance to the own-class mean (higher = harder)
    means = {c: x[tr.labels == c].mean(0) for c in np.unique(tr.labels)}
    dist = np.array([np.linalg.norm(x[i] - means[c]) for i, c in enumerate(tr.labels)])
    rng = np.random.default_rng(0)
    table = ScoreTable(tr.ids, {"dist": dist, "noise": rng.random(len(tr))})
    return tr, te, table


def _run(data, trainer, cache=None, **kw):
    tr, te, table = data
    if "seeds" not in kw:
        kw.setdefault("n_seeds", 2)
    kw.setdefault("policies", ("hard", "easy"))
    kw.setdefault("keep", (0.1, 0.5, 1.0))
    return scaling_curve(
        table,
        x_train=tr.items,
        y_train=tr.labels,
        x_test=te.items,
        y_test=te.labels,
        train_ids=tr.ids,
        trainer=trainer,
        cache_dir=cache,
        **kw,
    )


def test_rows_and_random_baseline(data):
    c = _run(data, centroid_trainer)
    # per seed: 3 keeps x (random + 2 metrics x 2 policies)
    assert len(c) == 2 * 3 * 5
    assert set(c.rows[0]) == set(COLUMNS)
    rnd = [r for r in c.rows if r["metric"] == "random"]
    assert {r["policy"] for r in rnd} == {"random"} and len(rnd) == 6
    # equal subset sizes: every metric's n_train matches random's at the same keep
    for r in c.rows:
        same = [q["n_train"] for q in rnd if q["keep"] == r["keep"]]
        assert r["n_train"] == same[0]
    # keep 1.0 trains every policy on the same full set: identical accuracies per seed
    full = {(r["seed"], r["test_accuracy"]) for r in c.rows if r["keep"] == 1.0}
    assert len({s for s, _ in full}) == 2 and len(full) == 2


def test_resume_after_crash_retrains_nothing_cached(data, tmp_path):
    reference = _run(data, centroid_trainer)  # no cache at all
    crash = Counting(fail_at=7)
    with pytest.raises(RuntimeError, match="killed"):
        _run(data, crash, cache=tmp_path)
    finished_before = crash.calls - 1  # the 7th call died
    again = Counting()
    resumed = _run(data, again, cache=tmp_path)
    unique = reference.trained
    assert again.calls == unique - finished_before
    assert resumed.reused == len(resumed) - again.calls
    assert resumed.rows == reference.rows
    # and a third run trains nothing
    third = Counting()
    assert _run(data, third, cache=tmp_path).rows == reference.rows and third.calls == 0


def test_adding_a_seed_trains_only_the_new_runs(data, tmp_path):
    first = Counting()
    two = _run(data, first, n_seeds=2, cache=tmp_path)
    second = Counting()
    three = _run(data, second, n_seeds=3, cache=tmp_path)
    only_new = Counting()
    alone = _run(data, only_new, seeds=[2])  # seed 2 on its own, no cache
    assert second.calls == only_new.calls > 0
    assert first.calls == two.trained
    assert [r for r in three.rows if r["seed"] < 2] == two.rows
    assert [r for r in three.rows if r["seed"] == 2] == alone.rows


def test_identical_with_and_without_cache_linear_trainer(data, tmp_path):
    kw = dict(policies=("hard",), keep=(0.2, 1.0), metrics=["dist"])
    plain = _run(data, "linear", n_seeds=2, **kw)
    cached_first = _run(data, "linear", n_seeds=2, cache=tmp_path, **kw)
    cached_again = _run(data, "linear", n_seeds=2, cache=tmp_path, **kw)
    assert plain.rows == cached_first.rows == cached_again.rows
    assert cached_again.trained == 0 and cached_again.reused == len(plain)
    # the full set is trained once per seed, shared by random and hard
    assert plain.trained == 2 * (2 + 1)


def test_trainer_identity_separates_cache(data, tmp_path):
    a = Counting()
    _run(data, a, cache=tmp_path, keep=(0.5,), policies=("hard",), metrics=["dist"])
    b = Counting()
    _run(data, b, cache=tmp_path, keep=(0.5,), policies=("hard",), metrics=["dist"], trainer_key="v2")
    assert a.calls == b.calls > 0
    assert trainer_identity("small-cnn", {"epochs": 3}) != trainer_identity("small-cnn", {"epochs": 4})
    assert trainer_identity("small-cnn", {"epochs": 3}) == trainer_identity("small-cnn", {"epochs": 3})
    # a default spelled out is the same trainer; another schedule is not
    assert trainer_identity("small-cnn", {}) == trainer_identity("small-cnn", {"schedule": "cosine"})
    assert trainer_identity("small-cnn", {}) != trainer_identity("small-cnn", {"schedule": "constant"})


def test_planted_score_ordering_shows_in_the_curve(data):
    """Easy (closest to the class mean) beats hard at a tight budget with a nearest-mean model."""
    c = _run(data, centroid_trainer, n_seeds=1, keep=(0.05,), metrics=["dist"])
    acc = {r["policy"]: r["test_accuracy"] for r in c.rows}
    assert acc["easy"] > acc["hard"]


def test_auto_policy_rows_and_cached_decision(data, tmp_path):
    pilot = Counting()
    c = _run(
        data,
        centroid_trainer,
        n_seeds=2,
        keep=(0.1,),
        policies=("auto",),
        metrics=["dist"],
        pilot_trainer=pilot,
        pilot_seeds=(0, 1),
        cache=tmp_path,
    )
    auto = [r for r in c.rows if r["policy"] == "auto"]
    dec = c.meta["decisions"]
    assert len(dec) == 1 and dec[0]["metric"] == "dist"
    assert {r["chosen_policy"] for r in auto} == {dec[0]["policy"]}
    assert pilot.calls == 2 * 4  # (easy, hard, stratified, random) x 2 pilot seeds, decided once
    pilot2 = Counting()
    c2 = _run(
        data,
        centroid_trainer,
        n_seeds=2,
        keep=(0.1,),
        policies=("auto",),
        metrics=["dist"],
        pilot_trainer=pilot2,
        pilot_seeds=(0, 1),
        cache=tmp_path,
    )
    assert pilot2.calls == 0 and c2.rows == c.rows


def test_write_read_roundtrip(data, tmp_path):
    c = _run(data, centroid_trainer, n_seeds=1, keep=(0.5, 1.0))
    write_curve(tmp_path / "c.parquet", c)
    back = read_curve(tmp_path / "c.parquet")
    assert back.rows == c.rows
    assert back.meta["seeds"] == [0]


def test_random_only_without_scores(data):
    tr, te, _ = data
    c = scaling_curve(
        None,
        x_train=tr.items,
        y_train=tr.labels,
        x_test=te.items,
        y_test=te.labels,
        keep=(0.3, 1.0),
        n_seeds=1,
        trainer=centroid_trainer,
    )
    assert {r["metric"] for r in c.rows} == {"random"} and len(c) == 2


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"policies": ("hardest",)}, "policies"),
        ({"policies": ("hard", "hard")}, "policies"),
        ({"n_seeds": 0}, "n_seeds must be an int >= 1"),
        ({"seeds": 3}, "scaling_curve: seeds must be a list.*n_seeds=3"),
        ({"seeds": [1, 1]}, "repeat"),
        ({"seeds": [0], "n_seeds": 1}, "not both"),
        ({"pilot_seeds": 2}, "pilot_n_seeds=2"),
        ({"keep": (0.5, 0.5)}, "repeated subset sizes"),
        ({"keep": (1.5,)}, "keep"),
        ({"metrics": ["nope"]}, "nope"),
    ],
)
def test_bad_input(data, kw, match):
    with pytest.raises(InvalidInputError, match=match):
        _run(data, centroid_trainer, **kw)


def test_scores_must_be_in_training_data_and_not_named_random(data):
    tr, te, _ = data
    stray = Scores(np.arange(10_000, 10_010), np.arange(10.0), "stray")
    with pytest.raises(InvalidInputError, match="not in the training data"):
        scaling_curve(
            stray,
            x_train=tr.items,
            y_train=tr.labels,
            x_test=te.items,
            y_test=te.labels,
            train_ids=tr.ids,
            n_seeds=1,
            keep=(0.5,),
            trainer=centroid_trainer,
        )
    named = Scores(tr.ids, np.zeros(len(tr)), "random")
    with pytest.raises(InvalidInputError, match="built-in baseline"):
        scaling_curve(
            named,
            x_train=tr.items,
            y_train=tr.labels,
            x_test=te.items,
            y_test=te.labels,
            train_ids=tr.ids,
            n_seeds=1,
            keep=(0.5,),
            trainer=centroid_trainer,
        )


def test_parallel_workers_give_the_same_rows_bit_for_bit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 8)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=240) > 0).astype(np.int64)
    xt = rng.normal(size=(80, 8)).astype(np.float32)
    yt = (xt[:, 0] > 0).astype(np.int64)
    s = Scores(np.arange(240), np.abs(x[:, 0]), "margin")
    kw = dict(x_train=x, y_train=y, x_test=xt, y_test=yt, keep=[0.3, 0.6], n_seeds=2, trainer="mlp",
              trainer_settings={"epochs": 2}, policies=("hard", "easy"))  # fmt: skip
    one = scaling_curve(s, **kw)
    two = scaling_curve(s, jobs=2, **kw)
    assert one.rows == two.rows
    assert two.trained == one.trained == 2 * 2 * 3
    with pytest.raises(InvalidInputError, match="jobs"):
        scaling_curve(s, jobs=0, **kw)

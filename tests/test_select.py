import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfprune import InvalidInputError, Scores
from selfprune.select import select, summarize


def _scores(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return Scores(ids=np.arange(1000, 1000 + n), values=rng.random(n), name="m")


def test_hard_and_easy_take_the_extremes():
    s = _scores()
    hard = select(s, 10, policy="hard")
    easy = select(s, 10, policy="easy")
    assert hard.ids.tolist() == sorted(s.ids[np.argsort(-s.values)[:10]].tolist())
    assert easy.ids.tolist() == sorted(s.ids[np.argsort(s.values)[:10]].tolist())
    assert np.all(np.diff(hard.ids) > 0)


def test_fraction_and_count_agree():
    s = _scores()
    assert np.array_equal(select(s, 0.25).ids, select(s, 25).ids)


def test_cutoff_drops_the_hardest_first():
    s = _scores()
    sel = select(s, 0.5, policy="hard", cutoff=0.1)
    hardest10 = set(s.ids[np.argsort(-s.values)[:10]].tolist())
    assert not hardest10 & set(sel.ids.tolist())
    assert len(sel) == 50
    with pytest.raises(InvalidInputError, match="exceeds the 90 examples left"):
        select(s, 95, cutoff=0.1)


def test_balance_classes_keeps_each_share():
    s = _scores(300)
    y = np.repeat([0, 1, 2], [150, 100, 50])
    sel = select(s, 0.2, policy="hard", labels=y, balance_classes=True)
    kept = np.isin(s.ids, sel.ids)
    assert [int(kept[y == c].sum()) for c in range(3)] == [30, 20, 10]
    # within each class, the hardest of that class
    for c in range(3):
        in_c = np.flatnonzero(y == c)
        top = in_c[np.argsort(-s.values[in_c])[: int(kept[y == c].sum())]]
        assert kept[top].all()
    with pytest.raises(InvalidInputError, match="needs labels"):
        select(s, 0.2, balance_classes=True)


def test_stratified_covers_the_score_range():
    rng = np.random.default_rng(0)
    # 90% of examples easy (near 0), a thin hard tail: hard keeps only the tail, CCS keeps both
    values = np.concatenate([rng.random(900) * 0.1, 0.5 + rng.random(100) * 0.5])
    s = Scores(ids=np.arange(1000), values=values, name="m")
    sel = select(s, 0.2, policy="stratified", strata=10)
    kept = values[sel.ids]
    assert len(sel) == 200
    # six non-empty strata: the five thin tail strata (100 examples) fit their share whole,
    # the crowded easy stratum gets the rest; a random pick would keep ~180 easy ones
    assert (kept >= 0.5).sum() == 100
    assert (kept < 0.1).sum() == 100


def test_random_is_seeded_and_unbiased():
    s = _scores(1000)
    a, b = select(s, 0.3, policy="random", seed=4), select(s, 0.3, policy="random", seed=4)
    assert np.array_equal(a.ids, b.ids)
    assert not np.array_equal(a.ids, select(s, 0.3, policy="random", seed=5).ids)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 200),
    frac=st.floats(0.01, 1.0),
    policy=st.sampled_from(["hard", "easy", "random", "stratified"]),
    seed=st.integers(0, 2**16),
)
def test_selection_properties(n, frac, policy, seed):
    s = _scores(n, seed)
    sel = select(s, frac, policy=policy, seed=seed)
    assert len(sel) == max(1, round(frac * n))
    assert len(np.unique(sel.ids)) == len(sel)
    assert set(sel.ids.tolist()) <= set(s.ids.tolist())
    assert np.array_equal(sel.ids, select(s, frac, policy=policy, seed=seed).ids)


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(50))))
def test_permuting_input_does_not_change_hard_selection(perm):
    s = _scores(50)
    perm = np.array(perm)
    moved = Scores(ids=s.ids[perm], values=s.values[perm], name="m")
    assert np.array_equal(select(s, 0.3).ids, select(moved, 0.3).ids)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"keep": 0.0}, "keep"),
        ({"keep": 1.5}, "keep"),
        ({"keep": 101}, r"\[1, 100\]"),
        ({"keep": 0.5, "policy": "medium"}, "policy must be one of"),
        ({"keep": 0.5, "cutoff": 1.0}, "cutoff"),
        ({"keep": 0.5, "labels": [0, 1]}, "2 labels for 100 rows"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        select(_scores(), **kwargs)


def test_summary():
    s = _scores(10)
    sel = select(s, 3, policy="hard")
    summ = summarize(s, sel, labels=np.arange(10) % 2)
    assert summ["kept"] == 3 and summ["score_range_kept"][1] == s.values.max()
    assert sum(summ["kept_per_class"].values()) == 3


def test_auto_cutoff_counts_majority_flags_and_drops_them_first():
    from selfprune.select import auto_cutoff

    flags = np.zeros(100)
    flags[[3, 7, 11]] = 1.0
    flags[20] = 0.5  # flagged in half the runs it was eligible for: counts
    flags[21] = 0.4
    choice = auto_cutoff(flags)
    assert choice.flagged == 4 and choice.beta == pytest.approx(0.04)
    assert "4 of 100" in choice.reason
    values = np.linspace(0, 1, 100)
    values[[3, 7, 11, 20]] = 2.0  # the flagged ones are also the hardest
    s = Scores(np.arange(100), values, "aum")
    kept = select(s, 10, policy="hard", cutoff=choice.beta)
    assert not set(kept.ids) & {3, 7, 11, 20}
    assert set(kept.ids) == set(range(90, 100))
    with pytest.raises(InvalidInputError, match="fractions in"):
        auto_cutoff(np.array([0.2, 1.5]))

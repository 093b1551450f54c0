import numpy as np
import pytest

from selfprune import InvalidInputError, Scores, ScoreTable, mean_rank


def test_scores_converts_and_records_meta():
    s = Scores(ids=[3, 1, 2], values=[0.5, 1, 0], name="m", meta={"k": 3})
    assert s.values.dtype == np.float64
    assert s.ids.dtype == np.int64
    assert s.meta["k"] == 3 and s.meta["metric"] == "m" and "selfprune_version" in s.meta


@pytest.mark.parametrize(
    "ids, values, match",
    [
        ([1, 1], [0.0, 1.0], "unique"),
        ([1, 2], [0.0, np.nan], "NaN"),
        ([1, 2], [0.0, np.inf], "NaN or Inf"),
        ([1, 2, 3], [0.0, 1.0], "3 ids for 2 rows"),
        ([[1, 2]], [[0.0, 1.0]], "1-D"),
    ],
)
def test_scores_rejects_bad_input(ids, values, match):
    with pytest.raises(InvalidInputError, match=match):
        Scores(ids=ids, values=values, name="m")


def test_reserved_names_rejected():
    with pytest.raises(InvalidInputError, match="name"):
        Scores(ids=[1], values=[0.0], name="id")


def test_order_is_hardest_first_and_stable_on_ties():
    s = Scores(ids=[10, 11, 12, 13], values=[1.0, 3.0, 1.0, 2.0], name="m")
    assert s.order().tolist() == [1, 3, 0, 2]
    assert s.ranks().tolist() == [2, 0, 3, 1]


def test_table_aligns_by_id():
    a = Scores(ids=[1, 2, 3], values=[0.1, 0.2, 0.3], name="a")
    b = Scores(ids=[3, 1, 2], values=[3.0, 1.0, 2.0], name="b")
    t = ScoreTable.from_scores([a, b])
    assert t["b"].values.tolist() == [1.0, 2.0, 3.0]
    assert list(t) == ["a", "b"]
    with pytest.raises(KeyError, match="no score column 'c'"):
        t["c"]


def test_table_rejects_mismatched_ids():
    a = Scores(ids=[1, 2, 3], values=[0.1, 0.2, 0.3], name="a")
    b = Scores(ids=[1, 2, 4], values=[3.0, 1.0, 2.0], name="b")
    with pytest.raises(InvalidInputError, match="different ids"):
        ScoreTable.from_scores([a, b])


def test_with_scores_keeps_labels_aligned():
    a = Scores(ids=[1, 2, 3], values=[0.1, 0.2, 0.3], name="a")
    t = a.to_table(labels=[0, 1, 1])
    t2 = t.with_scores(Scores(ids=[3, 2, 1], values=[1.0, 2.0, 3.0], name="b"))
    assert t2.labels.tolist() == [0, 1, 1]
    assert t2["b"].values.tolist() == [3.0, 2.0, 1.0]


def test_mean_rank_against_scipy_and_by_id():
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    a = Scores(np.arange(200), rng.normal(size=200), "el2n")
    b_vals = np.round(rng.normal(size=200), 1) * 1e6  # another scale, with many ties
    perm = rng.permutation(200)
    b = Scores(perm, b_vals[perm], "el2n", {"run": 2})  # same metric name, rows in another order
    m = mean_rank([a, b], name="combo")
    expected = (rankdata(a.values) + rankdata(b_vals)) / 2 / 200
    assert m.name == "combo" and np.array_equal(m.ids, a.ids)
    assert np.allclose(m.values, expected, rtol=0, atol=1e-15)
    assert m.meta["of"] == ["el2n", "el2n"] and m.meta["inputs"][1]["run"] == 2
    # a score combined with itself keeps its order; scale does not matter
    same = mean_rank([a, Scores(a.ids, 1e9 * a.values + 5, "scaled")])
    assert np.array_equal(same.order(), a.order())


def test_mean_rank_rejects_bad_input():
    a = Scores([1, 2, 3], [0.1, 0.2, 0.3], "a")
    with pytest.raises(InvalidInputError, match="at least 2"):
        mean_rank([a])
    with pytest.raises(InvalidInputError, match="different ids"):
        mean_rank([a, Scores([1, 2, 4], [0.1, 0.2, 0.3], "b")])

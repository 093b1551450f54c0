import numpy as np
import pytest

from selfprune import InvalidInputError, Scores, ScoreTable


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

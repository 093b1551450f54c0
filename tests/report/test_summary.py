import numpy as np
import pytest

from selfprune import Scores
from selfprune.report.summary import describe, describe_table


def test_describe():
    d = describe([3.0, 1.0, 2.0, 10.0])
    assert d == {"n": 4, "min": 1.0, "median": 2.5, "mean": 4.0, "max": 10.0}


def test_describe_table_in_column_order():
    from selfprune.scores import ScoreTable

    ids = np.arange(3)
    t = ScoreTable.from_scores([Scores(ids, np.array([1.0, 2, 3]), "b"), Scores(ids, np.array([0.0, 0, 6]), "a")])
    out = describe_table(t)
    assert list(out) == ["b", "a"]
    assert out["a"]["mean"] == pytest.approx(2.0) and out["b"]["median"] == 2.0

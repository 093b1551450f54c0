import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.metrics.aum import aum, aum_threshold, aum_values, margin_values, threshold_labels


def test_margin_and_aum_hand_computed():
    logits = np.array([[3.0, 1.0, 2.0], [0.0, 4.0, 1.0]])
    np.testing.assert_allclose(margin_values(logits, np.array([0, 0])), [1.0, -4.0])
    margins = np.array([[1.0, 3.0, np.nan], [-1.0, -3.0, -2.0]])
    s = aum(margins)
    np.testing.assert_allclose(s.values, [-2.0, 2.0])  # negated mean margin
    assert s.order()[0] == 1


def test_threshold_labels_and_flags():
    y = np.repeat(np.arange(4), 25)
    new, mask = threshold_labels(y, 4, seed=3)
    assert mask.sum() == 20 and np.all(new[mask] == 4) and np.all(new[~mask] == y[~mask])
    new2, mask2 = threshold_labels(y, 4, seed=3, exclude=mask)
    assert not np.any(mask & mask2)
    same, same_mask = threshold_labels(y, 4, seed=3)
    np.testing.assert_array_equal(same_mask, mask)
    values = np.where(mask, -1.0, 2.0)
    values[[0, 1]] = [-1.5, 5.0]  # example 0 (if not a threshold sample) should be flagged
    res = aum_threshold(values, mask)
    assert res.threshold == pytest.approx(-1.0)
    assert res.flagged[0] == (not mask[0]) and not res.flagged[1] and not res.flagged[mask].any()


def test_aum_values_unseen_is_zero_and_bad_input():
    np.testing.assert_allclose(aum_values(np.array([[np.nan, np.nan], [1.0, 2.0]])), [0.0, 1.5])
    with pytest.raises(InvalidInputError, match="selects no example"):
        aum_threshold(np.zeros(3), np.zeros(3, bool))

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.metrics.el2n import el2n


def test_hand_computed_probabilities():
    # p = (0.5, 0.5, 0), y = 0: error (-0.5, 0.5, 0), norm sqrt(0.5)
    # p = (0, 0, 1),     y = 0: error (-1, 0, 1),      norm sqrt(2)
    probs = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    s = el2n(probs, [0, 0], from_logits=False)
    np.testing.assert_allclose(s.values, [np.sqrt(0.5), np.sqrt(2.0)])
    assert s.name == "el2n" and s.order()[0] == 1


def test_logits_equal_logits_plus_constant_and_runs_average():
    z = np.array([[2.0, 0.0], [0.0, 2.0]])
    a = el2n(z, [0, 0]).values
    np.testing.assert_allclose(el2n(z + 5.0, [0, 0]).values, a)
    p = 1 / (1 + np.exp(-2.0))  # softmax of (2, 0)
    np.testing.assert_allclose(a, [np.sqrt(2) * (1 - p), np.sqrt(2) * p])
    both = el2n(np.stack([z, z[::-1]]), [0, 0]).values
    np.testing.assert_allclose(both, [a.mean(), a.mean()])


def test_bad_input():
    with pytest.raises(InvalidInputError, match="labels must be < 2"):
        el2n(np.zeros((2, 2)), [0, 2])
    with pytest.raises(InvalidInputError, match="NaN"):
        el2n(np.array([[np.nan, 0.0]]), [0])

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.metrics.memorization import memorization, subset_masks


def test_hand_computed():
    in_train = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 1]], dtype=bool)
    correct = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 0]], dtype=float)
    s = memorization(correct, in_train)
    # ex0: in 2/2, out 0/2 -> 1; ex1: in 2/2, out 0/2 -> 1; ex2: always in -> undetermined 0
    np.testing.assert_allclose(s.values, [1.0, 1.0, 0.0])
    assert s.meta["undetermined"] == 1


def test_subset_masks_size_and_determinism():
    m = subset_masks(50, 6, 0.7, seed=1)
    assert m.shape == (6, 50) and np.all(m.sum(1) == 35)
    np.testing.assert_array_equal(m, subset_masks(50, 6, 0.7, seed=1))
    with pytest.raises(InvalidInputError, match="subset"):
        subset_masks(50, 6, 1.0)

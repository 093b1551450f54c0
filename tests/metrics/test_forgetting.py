import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.metrics.forgetting import forgetting

nan = np.nan


def test_hand_computed_counts():
    correct = np.array([
        [1, 0, 1, 0, 1],      # learned, forgotten twice -> 2
        [0, 1, 1, 1, 1],      # learned once, never forgotten -> 0
        [0, 0, 0, 0, 0],      # never learned -> 5 presentations
        [1, nan, 0, nan, 1],  # gaps skipped: 1 -> 0 is one event -> 1
        [nan, nan, 0, 0, nan],  # never learned, 2 presentations -> 2
    ], dtype=float)  # fmt: skip
    s = forgetting(correct)
    np.testing.assert_array_equal(s.values, [2, 0, 5, 1, 2])
    assert s.meta["never_learned"] == 2


def test_runs_are_summed_and_majority_counts_as_correct():
    a = np.array([[1.0, 0.0, 1.0]])
    b = np.array([[0.6, 0.4, 0.5]])  # majority correct, wrong, correct (0.5 = tie -> correct)
    s = forgetting(np.stack([a, b]))
    np.testing.assert_array_equal(s.values, [2])


def test_never_learned_outranks_any_learned_example():
    t = 6
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, size=(200, t)).astype(float)
    c[1:, 0] = 1  # every other example learned at least once
    c[0] = 0
    s = forgetting(c)
    assert s.values[0] > s.values[1:].max()


def test_bad_values():
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        forgetting(np.array([[2.0, 0.0]]))

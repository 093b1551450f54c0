"""Baseline deletion orders: surprisal (low first), seeded random, evenly spread uniform."""

from __future__ import annotations

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.tokens.baselines import (
    baseline_orders,
    random_order,
    surprisal_order,
    uniform_order,
    unit_surprisal,
)


def test_surprisal_low_first_ties_by_position():
    assert surprisal_order([3.0, 0.5, 2.0, 0.5, 9.0]) == [1, 3, 2, 0, 4]
    np.testing.assert_allclose(unit_surprisal([1, 2, 3, 4], [(0, 1), (1, 3), (3, 4)]), [1, 5, 4])


def test_random_is_a_seeded_permutation():
    a = random_order(30, seed=1)
    assert sorted(a) == list(range(30))
    assert a == random_order(30, seed=1) != random_order(30, seed=2)
    with pytest.raises(InvalidInputError):
        random_order(0)


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33, 128, 129])
def test_uniform_is_a_permutation_spread_at_every_prefix(n):
    order = uniform_order(n)
    assert sorted(order) == list(range(n))
    for frac in (0.25, 0.5, 0.75):
        m = int(frac * n)
        if m < 2:
            continue
        kept = np.sort(np.setdiff1d(np.arange(n), order[:m]))
        # kept units are spread: no gap in the kept positions much larger than an even split
        gaps = np.diff(np.concatenate([[-1], kept, [n]]))
        assert gaps.max() <= 2 * np.ceil(n / (n - m)) + 1


def test_baseline_orders_bundle():
    orders = baseline_orders([0.1, 5.0, 0.2, 0.3], [(0, 2), (2, 3), (3, 4)], seed=0)
    assert orders["surprisal"] == [1, 2, 0]  # unit sums 5.1, 0.2, 0.3
    assert sorted(orders["random"]) == sorted(orders["uniform"]) == [0, 1, 2]

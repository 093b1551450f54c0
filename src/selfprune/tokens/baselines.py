"""Deletion orders that do not search: surprisal (as LLMLingua), random, and uniform.

Each returns unit indices in deletion order (first deleted first), covering all units, so any keep
ratio is a prefix of the same order, like greedy's.

* :func:`surprisal_order`: lowest self-information first. A unit's self-information is the sum of
  ``-log p(token | prefix, preceding chain)`` over its tokens, measured once on the full chain with
  the same model (LLMLingua's criterion, without its segment-wise recomputation).
* :func:`random_order`: a seeded permutation.
* :func:`uniform_order`: evenly spread deletions at every prefix of the order (units are taken in
  van der Corput order over their positions, so deleting a quarter removes every fourth unit,
  deleting half removes every other one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_int

BASELINES = ("surprisal", "random", "uniform")


def unit_surprisal(token_surprisal: Sequence[float], units: Sequence[tuple[int, int]]) -> np.ndarray:
    """Sum token self-information (nats) within each ``(start, end)`` unit."""
    s = np.asarray(token_surprisal, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(s)])
    return np.array([csum[e] - csum[b] for b, e in units], dtype=np.float64)


def surprisal_order(surprisal: Sequence[float]) -> list[int]:
    """Units by increasing self-information; ties keep position order."""
    return np.argsort(np.asarray(surprisal, dtype=np.float64), kind="stable").tolist()


def random_order(n_units: int, seed: SeedLike = 0) -> list[int]:
    """A seeded random permutation of the units."""
    n_units = check_int(n_units, caller="random_order", name="n_units", low=1)
    return as_rng(seed, caller="random_order").permutation(n_units).tolist()


def _radical_inverse(i: int) -> float:
    out, f = 0.0, 0.5
    while i:
        if i & 1:
            out += f
        i >>= 1
        f /= 2
    return out


def uniform_order(n_units: int) -> list[int]:
    """Evenly spread deletion order: unit ``floor(x * n)`` for x in the van der Corput sequence."""
    n_units = check_int(n_units, caller="uniform_order", name="n_units", low=1)
    taken = np.zeros(n_units, dtype=bool)
    order: list[int] = []
    i = 0
    while len(order) < n_units:
        u = int(_radical_inverse(i) * n_units)
        i += 1
        if not taken[u]:  # a unit already taken is skipped; every unit is reached by i < 2n
            taken[u] = True
            order.append(u)
    return order


def baseline_orders(token_surprisal: Sequence[float], units: Sequence[tuple[int, int]], *,
                    seed: SeedLike = 0) -> dict[str, list[int]]:
    """All three baseline orders for one chain."""
    return {
        "surprisal": surprisal_order(unit_surprisal(token_surprisal, units)),
        "random": random_order(len(units), seed),
        "uniform": uniform_order(len(units)),
    }

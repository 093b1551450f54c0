"""Summary statistics of score values, as the command line and reports print them."""

from __future__ import annotations

import numpy as np


def describe(values) -> dict[str, float]:
    """``{"n", "min", "median", "mean", "max"}`` of finite score values (N,), N >= 1."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "n": int(v.size),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "mean": float(v.mean()),
        "max": float(v.max()),
    }


def describe_table(table) -> dict[str, dict[str, float]]:
    """:func:`describe` of every column of a :class:`~selfprune.scores.ScoreTable`, in column order."""
    return {name: describe(table[name].values) for name in table}

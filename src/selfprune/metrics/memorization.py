"""Memorization estimate (Feldman & Zhang 2020).

``mem(i) = P[correct on i | i in the training subset] - P[correct on i | i held out]``, estimated
from R short runs, each trained on a random subset (e.g. 70%) and evaluated on every example.
High memorization means the model only gets the example right by having seen it: atypical or
mislabelled examples. **Higher = harder**, no sign change; range [-1, 1].
An example that was in every run, or in none, has no estimate and scores 0 (``meta["undetermined"]``
counts them); use more runs to shrink that set (it is about ``N * (f^R + (1-f)^R)``).
"""

from __future__ import annotations

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_ids, check_int
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores


def subset_masks(n: int, runs: int, subset: float, *, seed: SeedLike = 0) -> np.ndarray:
    """(R, N) boolean masks, each selecting ``round(subset * n)`` examples uniformly at random."""
    n = check_int(n, caller="subset_masks", name="n")
    runs = check_int(runs, caller="subset_masks", name="runs")
    if not 0.0 < float(subset) < 1.0:
        raise InvalidInputError(
            f"subset_masks: subset must be a fraction in (0, 1), got {subset!r}"
        )
    rng = as_rng(seed, caller="subset_masks")
    k = max(1, min(n - 1, int(round(subset * n))))
    masks = np.zeros((runs, n), dtype=bool)
    for r in range(runs):
        masks[r, rng.choice(n, size=k, replace=False)] = True
    return masks


def memorization(correct, in_train, *, ids=None) -> Scores:
    """Memorization scores from (R, N) correctness (0/1) and (R, N) training-subset membership."""
    c = np.asarray(correct, dtype=np.float64)
    m = np.asarray(in_train)
    if c.ndim != 2 or c.shape != m.shape or c.size == 0:
        raise InvalidInputError(
            f"memorization: correct {c.shape} and in_train {m.shape} must be equal (R, N) shapes"
        )
    if not np.all(np.isin(c, (0.0, 1.0))):
        raise InvalidInputError("memorization: correct must hold 0/1 values")
    if m.dtype != bool and not np.all(np.isin(m, (0, 1))):
        raise InvalidInputError("memorization: in_train must be a boolean mask")
    m = m.astype(bool)
    ids = check_ids(ids, c.shape[1], caller="memorization")
    n_in, n_out = m.sum(axis=0), (~m).sum(axis=0)
    p_in = np.divide((c * m).sum(axis=0), n_in, out=np.zeros(c.shape[1]), where=n_in > 0)
    p_out = np.divide((c * ~m).sum(axis=0), n_out, out=np.zeros(c.shape[1]), where=n_out > 0)
    ok = (n_in > 0) & (n_out > 0)
    values = np.where(ok, p_in - p_out, 0.0)
    return Scores(
        ids,
        values,
        "memorization",
        {
            "runs": int(c.shape[0]),
            "undetermined": int(np.sum(~ok)),
            "direction": "P[correct|in] - P[correct|out]; higher = harder",
        },
    )

"""Forgetting events (Toneva et al. 2019): how often an example goes from correct to incorrect.

Input is a correctness matrix over consecutive presentations (epochs), one row per example, with
NaN where the example was not presented (partial or subsampled epochs): transitions are counted
between consecutive *presentations*, skipping the gaps. An example that is never classified
correctly is the hardest of all: it scores ``T`` (its number of presentations), more than any
learned example can reach (at most ``T // 2`` events). Counts are summed over runs (seeds).
**Higher = harder**, no sign change.
"""

from __future__ import annotations

import numpy as np

from selfprune._checks import check_ids
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores


def forgetting_counts(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row (events, ever_learned, presentations) for an (N, T) matrix of 0/1/NaN.

    A value counts as correct when >= 0.5 (a majority of repeated presentations in that epoch).
    """
    c = np.asarray(correct, dtype=np.float64)
    seen = ~np.isnan(c)
    n, t = c.shape
    # compact each row so that presentations are adjacent: stable sort puts seen columns first
    order = np.argsort(~seen, axis=1, kind="stable")
    packed = np.take_along_axis(np.where(seen, c >= 0.5, False), order, axis=1)
    packed_seen = np.take_along_axis(seen, order, axis=1)
    prev, nxt = packed[:, :-1], packed[:, 1:]
    valid = packed_seen[:, :-1] & packed_seen[:, 1:]
    events = np.sum(prev & ~nxt & valid, axis=1)
    learned = np.any(packed & packed_seen, axis=1)
    return events.astype(np.int64), learned, seen.sum(axis=1).astype(np.int64)


def forgetting(correct, *, ids=None) -> Scores:
    """Forgetting-event scores from (N, T) or (S, N, T) correctness (0/1, NaN = not presented).

    Per run: the number of correct -> incorrect transitions, or ``T_seen`` for an example never
    learned in that run; then summed over runs. Returns ``Scores`` named ``"forgetting"``.
    """
    arr = np.asarray(correct, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InvalidInputError(
            f"forgetting: correct must be (N, T) or (S, N, T), got shape {np.shape(correct)}"
        )
    finite = arr[~np.isnan(arr)]
    if np.any(np.isinf(arr)) or np.any((finite < 0) | (finite > 1)):
        raise InvalidInputError("forgetting: correct must hold values in [0, 1] or NaN")
    ids = check_ids(ids, arr.shape[1], caller="forgetting")
    total = np.zeros(arr.shape[1])
    never = np.zeros(arr.shape[1], dtype=np.int64)
    for run in arr:
        events, learned, seen = forgetting_counts(run)
        total += np.where(learned, events, seen)
        never += ~learned & (seen > 0)
    return Scores(
        ids, total, "forgetting",
        {"runs": int(arr.shape[0]), "never_learned": int(np.sum(never > 0)),
         "direction": "higher = harder; never learned = number of presentations"},
    )  # fmt: skip

"""Area Under the Margin (Pleiss et al. 2020).

The margin of an example at one epoch is its assigned label's logit minus the largest other logit;
AUM is its mean over epochs (and runs). A large positive AUM is an easy, well-learned example; a
negative AUM is an example the network keeps pulling towards another class, typical of a wrong
label. The score is **negated** (``values = -AUM``) so that higher = harder.

The threshold-sample procedure: relabel a random ``N / (C + 1)`` examples to a fake extra class,
train with ``C + 1`` outputs, and take the 99th percentile of those deliberately mislabelled
examples' AUM as the threshold; real examples whose AUM falls at or below it are flagged as likely
mislabelled (:func:`threshold_labels`, :func:`aum_threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_ids, check_int, check_labels
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores


def margin_values(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """logit[y] - max_{k != y} logit[k] for (N, C) logits and (N,) labels."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(z.shape[0])
    assigned = z[rows, labels]
    other = z.copy()
    other[rows, labels] = -np.inf
    return assigned - other.max(axis=1)


def _check_margins(margins, caller: str) -> np.ndarray:
    arr = np.asarray(margins, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InvalidInputError(
            f"{caller}: margins must be (N, T) or (S, N, T), got shape {np.shape(margins)}"
        )
    if np.any(np.isinf(arr)):
        raise InvalidInputError(f"{caller}: margins contain Inf")
    return arr


def aum_values(margins) -> np.ndarray:
    """Mean margin per example over all recorded (non-NaN) epochs and runs: (S, N, T) -> (N,).

    Examples never presented get 0 (no evidence either way).
    """
    arr = _check_margins(margins, "aum")
    flat = np.moveaxis(arr, 1, 0).reshape(arr.shape[1], -1)
    seen = ~np.isnan(flat)
    count = seen.sum(axis=1)
    total = np.where(seen, flat, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.zeros(len(total)), where=count > 0)


def aum(margins, *, ids=None) -> Scores:
    """AUM scores from (N, T) or (S, N, T) margins (NaN = not presented).

    Returns ``Scores`` named ``"aum"`` with ``values = -mean margin``: higher = harder.
    """
    arr = _check_margins(margins, "aum")
    ids = check_ids(ids, arr.shape[1], caller="aum")
    return Scores(
        ids,
        -aum_values(arr),
        "aum",
        {"runs": int(arr.shape[0]), "direction": "negated AUM: higher = harder"},
    )


def threshold_labels(
    labels, num_classes: int, *, seed: SeedLike = 0, exclude=None, fraction: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels with a random ``N / (C + 1)`` examples moved to the fake class ``C``.

    Returns ``(new_labels, is_threshold)``; train with ``C + 1`` outputs on ``new_labels``.
    ``exclude`` is a boolean mask of examples not to pick (for a second, disjoint threshold set).
    """
    c = check_int(num_classes, caller="threshold_labels", name="num_classes", low=2)
    y = check_labels(labels, len(np.asarray(labels)), caller="threshold_labels")
    if len(y) and y.max() >= c:
        raise InvalidInputError(
            f"threshold_labels: labels must be < num_classes={c}, got {y.max()}"
        )
    frac = 1.0 / (c + 1) if fraction is None else float(fraction)
    if not 0.0 < frac < 1.0:
        raise InvalidInputError(f"threshold_labels: fraction must be in (0, 1), got {fraction!r}")
    pool = np.arange(len(y))
    if exclude is not None:
        pool = pool[~np.asarray(exclude, dtype=bool)]
    k = min(len(pool), max(1, int(round(frac * len(y)))))
    pick = as_rng(seed, caller="threshold_labels").choice(pool, size=k, replace=False)
    mask = np.zeros(len(y), dtype=bool)
    mask[pick] = True
    new = y.copy()
    new[mask] = c
    return new, mask


@dataclass(frozen=True)
class AUMThreshold:
    """Result of the threshold-sample procedure (AUM on the original, un-negated scale)."""

    threshold: float
    flagged: np.ndarray  # bool (N,), True = likely mislabelled; always False on threshold samples
    percentile: float
    n_threshold_samples: int


def aum_threshold(
    aum_values_: np.ndarray, is_threshold, *, percentile: float = 99.0
) -> AUMThreshold:
    """Flag examples whose AUM is at or below the ``percentile`` of the threshold samples' AUM.

    ``aum_values_`` is the plain (not negated) mean margin, e.g. :func:`aum_values` of a run trained
    with :func:`threshold_labels`.
    """
    a = np.asarray(aum_values_, dtype=np.float64)
    mask = np.asarray(is_threshold, dtype=bool)
    if a.ndim != 1 or mask.shape != a.shape:
        raise InvalidInputError(
            f"aum_threshold: aum values {a.shape} and is_threshold {mask.shape} must be "
            "equal 1-D shapes"
        )
    if not mask.any():
        raise InvalidInputError("aum_threshold: is_threshold selects no example")
    if not 0.0 < percentile <= 100.0:
        raise InvalidInputError(f"aum_threshold: percentile must be in (0, 100], got {percentile}")
    thr = float(np.percentile(a[mask], percentile))
    return AUMThreshold(thr, (a <= thr) & ~mask, float(percentile), int(mask.sum()))

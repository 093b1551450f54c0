"""Dataset cartography (Swayamdipta et al. 2020): training dynamics of p(label).

From the probability of the assigned label over epochs: **confidence** (mean), **variability**
(standard deviation) and **correctness** (fraction of epochs predicted correctly). Easy examples
are confident and stable, hard-to-learn ones unconfident, ambiguous ones variable.

As scores (higher = harder): ``confidence`` holds ``1 - mean p(y)``; ``variability`` holds the std
as is (ambiguous = harder); ``correctness`` holds ``1 - fraction correct``.
:func:`cartography_stats` returns the raw, untransformed values for the data map plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfprune._checks import check_ids
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores, ScoreTable


@dataclass(frozen=True)
class CartographyStats:
    """Raw per-example statistics (N,): confidence, correctness in [0, 1]; variability >= 0."""

    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray


def _flatten(x, caller: str, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InvalidInputError(
            f"{caller}: {name} must be (N, T) or (S, N, T), got shape {np.shape(x)}"
        )
    fin = arr[~np.isnan(arr)]
    if np.any(np.isinf(arr)) or np.any((fin < 0) | (fin > 1)):
        raise InvalidInputError(f"{caller}: {name} must hold values in [0, 1] or NaN")
    return np.moveaxis(arr, 1, 0).reshape(arr.shape[1], -1)


def cartography_stats(probs, correct) -> CartographyStats:
    """Mean, population std of p(y) and mean correctness over epochs (and runs), NaN skipped.

    ``probs`` and ``correct`` are (N, T) or (S, N, T); examples never presented get confidence 0,
    variability 0, correctness 0.
    """
    p = _flatten(probs, "cartography", "probs")
    c = _flatten(correct, "cartography", "correct")
    if p.shape != c.shape:
        raise InvalidInputError(
            f"cartography: probs {p.shape} and correct {c.shape} differ in shape"
        )
    seen = ~np.isnan(p)
    cnt = seen.sum(axis=1)
    safe = np.maximum(cnt, 1)
    mean = np.where(seen, p, 0.0).sum(axis=1) / safe
    var = np.where(seen, (p - mean[:, None]) ** 2, 0.0).sum(axis=1) / safe
    corr = np.where(~np.isnan(c), c, 0.0).sum(axis=1) / np.maximum((~np.isnan(c)).sum(axis=1), 1)
    return CartographyStats(mean, np.sqrt(var), corr)


def cartography(probs, correct, *, ids=None) -> ScoreTable:
    """Confidence, variability and correctness as a ScoreTable, each oriented higher = harder."""
    stats = cartography_stats(probs, correct)
    ids = check_ids(ids, len(stats.confidence), caller="cartography")
    return ScoreTable.from_scores([
        Scores(ids, 1.0 - stats.confidence, "confidence", {"direction": "1 - mean p(label)"}),
        Scores(ids, stats.variability, "variability",
               {"direction": "std of p(label); higher = ambiguous"}),
        Scores(ids, 1.0 - stats.correctness, "correctness",
               {"direction": "1 - fraction of epochs correct"}),
    ])  # fmt: skip

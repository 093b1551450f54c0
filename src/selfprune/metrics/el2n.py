"""EL2N (Paul et al. 2021): the L2 norm of the error vector ``softmax(f(x)) - onehot(y)``.

Computed from a network's logits at a chosen (early) epoch and averaged over independent runs
(seeds). Range [0, sqrt(2)]; **higher = harder** (the model's prediction is further from the label),
so no sign change is needed.
"""

from __future__ import annotations

import numpy as np

from selfprune._checks import check_ids, check_labels
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (..., C) logits, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def el2n_values(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """||p - onehot(y)||_2 for (N, C) probabilities and (N,) labels, without building the one-hot.

    ||p - e_y||^2 = sum_k p_k^2 - 2 p_y + 1.
    """
    p = np.asarray(probs, dtype=np.float64)
    rows = np.arange(p.shape[0])
    sq = np.einsum("nc,nc->n", p, p) - 2.0 * p[rows, labels] + 1.0
    return np.sqrt(np.maximum(sq, 0.0))


def el2n(logits, labels, *, ids=None, from_logits: bool = True) -> Scores:
    """EL2N scores from (N, C) logits of one run, or (S, N, C) logits of S runs (averaged).

    Pass probabilities with ``from_logits=False``. Returns ``Scores`` named ``"el2n"``;
    values in [0, sqrt(2)], higher = harder.
    """
    arr = np.asarray(logits, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] < 2:
        raise InvalidInputError(
            f"el2n: logits must be (N, C) or (S, N, C) with C >= 2, got shape {np.shape(logits)}"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("el2n: logits contain NaN or Inf")
    n, c = arr.shape[1], arr.shape[2]
    y = check_labels(labels, n, caller="el2n")
    if y.max() >= c:
        raise InvalidInputError(f"el2n: labels must be < {c} (number of classes), got {y.max()}")
    if not from_logits and (arr.min() < 0 or not np.allclose(arr.sum(-1), 1.0, atol=1e-4)):
        raise InvalidInputError(
            "el2n: with from_logits=False, rows must be probabilities summing to 1"
        )
    ids = check_ids(ids, n, caller="el2n")
    probs = softmax(arr) if from_logits else arr
    values = np.mean([el2n_values(p, y) for p in probs], axis=0)
    return Scores(ids, values, "el2n", {"runs": int(arr.shape[0]), "direction": "higher = harder"})

"""What an audit needs besides the embeddings, lined up with their rows.

The inputs of :func:`selfprune.evaluate.audit.audit` come from different files (the score file, raw
data, other encoders' embeddings), each with its own row order. These functions put every one in the
order of the audited embeddings' ids, and recompute the cross-encoder scores and a label-free score's
pipeline with the same k the audit itself uses (:func:`~selfprune.evaluate.audit.default_k`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from selfprune._checks import align_ids
from selfprune.evaluate.audit import default_k
from selfprune.scores import Scores


def aligned_scores(scores: Scores, ids, *, caller: str = "audit", what: str = "the score file") -> Scores:
    """``scores`` reordered to ``ids`` (every id must be scored); name and meta kept."""
    pos = align_ids(scores.ids, ids, caller=caller, what=what)
    return Scores(np.asarray(ids), scores.values[pos], scores.name, scores.meta)


def cross_encoder_scores(
    others: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids,
    *,
    target_meta: Mapping | None = None,
    k: int | None = None,
    seed: int = 0,
    caller: str = "audit",
) -> dict[str, Scores]:
    """Prototype scores of other encoders' embeddings, on the rows ``ids``, for cross-encoder stability.

    ``others`` maps a name to ``(their ids, their embeddings (M, D'))``; each must hold every id of
    ``ids``. ``k`` defaults to the audit's own (:func:`default_k` of the audited score's meta).
    """
    from selfprune.metrics import prototypes

    ids = np.asarray(ids)
    kk = k if k is not None else default_k(len(ids), target_meta)
    out: dict[str, Scores] = {}
    for name, (o_ids, ox) in others.items():
        rows = np.asarray(ox)[align_ids(o_ids, ids, caller=caller, what=f"embeddings {name}")]
        out[name] = prototypes(rows, k=int(kk), seed=seed)
    return out


def labelfree_recheck(
    target: Scores, inputs, *, metric: str, k: int | None = None
) -> tuple[Callable[..., np.ndarray] | None, int | None]:
    """``(score_fn, k)`` for auditing a label-free score: a function that reruns its pipeline
    (pseudo-labels, then the proxy on ``inputs``) under other seeds and k, and the k to audit with
    (``k``, else the score's own k, else its pseudo-label k). ``(None, k)`` for a score that is not label-free or
    when ``inputs`` is None (its stability is then not rechecked).
    """
    if not target.meta.get("label_free") or inputs is None:
        return None, k
    from selfprune.dynamics.train import labelfree_score_fn

    settings = {"model": target.meta.get("model", "auto"), "epochs": int(target.meta.get("epochs", 2))}
    score_fn = labelfree_score_fn(inputs, metric=metric, **settings)
    if k is None:
        k = target.meta.get("k")
    return score_fn, k if k is not None else target.meta.get("pseudo_labels", {}).get("k")


def score_file_labels(table, ids, *, caller: str = "audit") -> np.ndarray | None:
    """The ``label`` column of a :class:`~selfprune.scores.ScoreTable` in the order of ``ids``, or None."""
    if table.labels is None:
        return None
    return np.asarray(table.labels, dtype=np.int64)[align_ids(table.ids, ids, caller=caller, what="score file")]

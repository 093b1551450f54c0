"""D2 pruning (Maharana et al., 2023): message passing on a kNN graph, difficulty + diversity.

1. Build the kNN graph of the embeddings (faiss; Euclidean distance on L2-normalised rows by
   default, so distances lie in [0, 2]).
2. **Forward message passing**: every example gathers the difficulty of its neighbours, weighted by
   an RBF of the distance: ``g(u) = s(u) + sum_{v in N(u)} exp(-gamma_f * d(u, v)) * s(v)``. A hard
   example in a region of hard examples scores highest; ``s`` is the difficulty min-max scaled to
   [0, 1] (D2 needs non-negative importance; the scaling keeps the ranking of any Scores).
3. **Reverse message passing** (greedy selection): repeatedly take the example with the highest
   ``g``, then lower its neighbours: ``g(v) -= exp(-gamma_r * d(u, v)) * g(u)`` for ``v in N(u)``,
   so the next picks come from elsewhere (diversity).

Ties are broken by example id, so the result does not depend on the input order.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, align_ids, check_embeddings, check_ids, check_int, resolve_keep
from selfprune.errors import InvalidInputError
from selfprune.metrics.density import knn_graph
from selfprune.scores import Scores
from selfprune.select import Selection


def d2_select(
    scores: Scores,
    embeddings,
    keep,
    *,
    k: int = 10,
    gamma_forward: float = 1.0,
    gamma_reverse: float = 1.0,
    ids=None,
    normalize: bool = True,
    index: str = "auto",
    seed: SeedLike = 0,
) -> Selection:
    """Select ``keep`` examples (fraction in (0, 1] or count) by D2 pruning.

    Returns a :class:`~selfprune.select.Selection` like :func:`~selfprune.select.select`: sorted
    kept ``ids``, ``policy="d2"``, and ``details`` with ``keep`` (the count), ``k`` and ``seed``.

    ``scores``: difficulty (higher = harder), one per example. ``embeddings`` (N, D): rows aligned
    with ``ids`` (default: with ``scores.ids``). ``k`` neighbours per example; ``gamma_forward`` and
    ``gamma_reverse`` are the RBF widths of the two passes (larger = neighbours matter less).
    ``seed`` drives the approximate (IVF) neighbour index used above 200,000 examples.
    """
    caller = "d2_select"
    if not isinstance(scores, Scores):
        raise InvalidInputError(f"{caller}: scores must be a Scores, got {type(scores).__name__}")
    x = check_embeddings(embeddings, caller=caller, min_rows=2)
    n = len(x)
    if ids is None:
        if len(scores) != n:
            raise InvalidInputError(
                f"{caller}: {len(scores)} scores for {n} embedding rows; pass ids= to align them"
            )
        ids = scores.ids
        values = scores.values
    else:
        ids = check_ids(ids, n, caller=caller)
        values = _align(scores, ids, caller=caller)
    k = check_int(k, caller=caller, name="k", low=1)
    if k >= n:
        raise InvalidInputError(f"{caller}: k must be in [1, N-1={n - 1}], got {k}")
    gf = _check_gamma(gamma_forward, caller=caller, name="gamma_forward")
    gr = _check_gamma(gamma_reverse, caller=caller, name="gamma_reverse")
    count = resolve_keep(keep, n, caller=caller)

    if normalize:
        norms = np.linalg.norm(x, axis=1)
        if np.any(norms == 0):
            raise InvalidInputError(
                f"{caller}: embeddings have zero norm at row {np.flatnonzero(norms == 0)[0]}; "
                "pass normalize=False to use raw Euclidean distances"
            )
        x = np.ascontiguousarray(x / norms[:, None], dtype=np.float32)
    dist, nbr = knn_graph(x, k, metric="l2", index=index, seed=seed, caller=caller)
    rows = d2_rows(values, dist, nbr, count, ids=ids, gamma_forward=gf, gamma_reverse=gr)
    details: dict[str, Any] = {"keep": count, "k": k}
    if isinstance(seed, int):
        details["seed"] = seed
    return Selection(ids=np.sort(ids[rows]), policy="d2", n_total=n, details=details)


def d2_rows(
    values: np.ndarray,
    dist: np.ndarray,
    nbr: np.ndarray,
    count: int,
    *,
    ids: np.ndarray,
    gamma_forward: float = 1.0,
    gamma_reverse: float = 1.0,
) -> np.ndarray:
    """The D2 core over a precomputed kNN graph: rows (in pick order) of the ``count`` selected.

    ``values`` (N,) difficulty, ``dist``/``nbr`` (N, k) neighbour distances and rows (-1 = none).
    """
    n = len(values)
    lo, hi = float(values.min()), float(values.max())
    s = (values - lo) / (hi - lo) if hi > lo else np.ones(n)
    valid = nbr >= 0
    safe = np.where(valid, nbr, 0)
    w_f = np.where(valid, np.exp(-gamma_forward * dist.astype(np.float64)), 0.0)
    w_r = np.where(valid, np.exp(-gamma_reverse * dist.astype(np.float64)), 0.0)
    g = s + (w_f * s[safe]).sum(axis=1)

    by_id = np.argsort(ids, kind="stable")
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[by_id] = np.arange(n)

    # lazy max-heap: an entry is live while its value still equals g[row]
    heap = list(zip((-g).tolist(), id_rank.tolist(), range(n), strict=True))
    heapq.heapify(heap)
    chosen = np.zeros(n, dtype=bool)
    picked = np.empty(count, dtype=np.int64)
    got = 0
    while got < count:
        neg, _, u = heapq.heappop(heap)
        if chosen[u] or -neg != g[u]:
            continue
        chosen[u] = True
        picked[got] = u
        got += 1
        m = valid[u] & ~chosen[safe[u]]
        vs = safe[u][m]
        if len(vs):
            g[vs] -= w_r[u][m] * g[u]
            for v, gv in zip(vs.tolist(), g[vs].tolist(), strict=True):
                heapq.heappush(heap, (-gv, int(id_rank[v]), v))
    return picked


def _align(scores: Scores, ids: np.ndarray, *, caller: str) -> np.ndarray:
    where = align_ids(scores.ids, ids, caller=caller, what="scores")
    if len(scores) != len(ids):
        raise InvalidInputError(
            f"{caller}: {len(scores)} scores for {len(ids)} embedding rows; "
            "they must cover the same ids"
        )
    return scores.values[where]


def _check_gamma(value, *, caller: str, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInputError(f"{caller}: {name} must be a number >= 0, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{caller}: {name} must be a number >= 0, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise InvalidInputError(f"{caller}: {name} must be a finite number >= 0, got {value!r}")
    return v


__all__ = ["d2_select", "d2_rows"]

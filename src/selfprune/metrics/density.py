"""kNN density: how crowded each example's neighbourhood is in embedding space (sparse = hard).

An example in a sparse region has few close neighbours: it covers part of the distribution that
little else covers, so it is worth keeping (higher score = harder). An example in a dense region is
one of many alike (redundant). The score is the mean distance to the ``k`` nearest other examples.

Neighbours come from faiss: an exact flat index by default (``index="auto"`` below 200,000 rows), an
IVF index (centroids fitted on a sample, ``nprobe`` lists searched) above it. Queries run in chunks,
so memory stays ``O(N x D + chunk x k)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_embeddings, check_ids, check_int, seed_int
from selfprune.errors import InvalidInputError
from selfprune.metrics._kmeans import knn_index
from selfprune.scores import Scores

METRICS = ("cosine", "l2")
INDEXES = ("auto", "flat", "ivf")
_EXACT_UP_TO = 200_000
_CHUNK = 8192


def knn_density(
    embeddings,
    *,
    k: int = 10,
    ids=None,
    metric: str = "cosine",
    index: str = "auto",
    nlist: int | None = None,
    nprobe: int = 16,
    seed: SeedLike = 0,
    name: str = "density",
    progress: Callable[[int, int], None] | None = None,
) -> Scores:
    """Mean distance to the ``k`` nearest other examples. (N, D) -> Scores (N,). Sparser = harder.

    ``metric="cosine"``: distance ``1 - cos`` in [0, 2] on L2-normalised rows; ``"l2"``: Euclidean.
    Exact duplicates count as neighbours at distance 0 (they make a region dense).
    ``progress(done, total)`` is called after each chunk of queries (rows done of N).
    """
    caller = "knn_density"
    x = check_embeddings(embeddings, caller=caller, min_rows=2)
    n = len(x)
    ids = check_ids(ids, n, caller=caller)
    k = check_int(k, caller=caller, name="k", low=1)
    if k >= n:
        raise InvalidInputError(
            f"{caller}: k must be in [1, N-1={n - 1}] (neighbours other than itself), got {k}"
        )
    dist, _ = knn_graph(
        x, k, metric=metric, index=index, nlist=nlist, nprobe=nprobe, seed=seed, caller=caller,
        progress=progress,
    )
    values = dist.mean(axis=1, dtype=np.float64)
    kind = _resolve_index(index, n)
    meta = {"k": k, "distance": metric, "index": kind, "direction": "sparse = hard"}
    if meta["index"] == "ivf":
        seed_meta = seed if isinstance(seed, int) else None
        meta.update(nlist=_nlist(nlist, n), nprobe=nprobe, seed=seed_meta)
    return Scores(ids=ids, values=values, name=name, meta=meta)


def knn_graph(
    x: np.ndarray,
    k: int,
    *,
    metric: str = "cosine",
    index: str = "auto",
    nlist: int | None = None,
    nprobe: int = 16,
    seed: SeedLike = 0,
    caller: str = "knn_graph",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest *other* rows of every row: (distances (N, k) float32, rows (N, k) int64).

    Rows sorted by distance, ties by row number. ``x`` must already be a validated float32 array.
    Missing neighbours (only with an IVF index and a tiny ``nprobe``) are -1 at distance inf.
    ``progress(done, total)`` is called after each chunk of queries.
    """
    if metric not in METRICS:
        raise InvalidInputError(f"{caller}: metric must be one of {METRICS}, got {metric!r}")
    if index not in INDEXES:
        raise InvalidInputError(f"{caller}: index must be one of {INDEXES}, got {index!r}")
    nprobe = check_int(nprobe, caller=caller, name="nprobe", low=1)
    n = len(x)
    kind = _resolve_index(index, n)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise InvalidInputError(
                f"{caller}: embeddings have zero norm at row {zero[0]}; "
                "cosine distance is undefined"
            )
        base = np.ascontiguousarray(x / norms[:, None], dtype=np.float32)
    else:
        base = x
    space = "ip" if metric == "cosine" else "l2"

    if kind == "flat":
        idx = knn_index(base, metric=space)
    else:
        lists = _nlist(nlist, n)
        rng = as_rng(seed, caller=caller)
        sample = np.sort(rng.choice(n, size=min(n, lists * 64), replace=False))
        idx = knn_index(
            base, metric=space, ivf_lists=lists, train=base[sample], train_seed=seed_int(rng),
            nprobe=min(nprobe, lists),
        )

    kk = k + 1
    dist = np.empty((n, k), dtype=np.float32)
    nbr = np.empty((n, k), dtype=np.int64)
    for a in range(0, n, _CHUNK):
        q = base[a : a + _CHUNK]
        s, lab = idx.search(q, kk)
        if metric == "cosine":
            dd = (1.0 - s).astype(np.float32)
        else:
            dd = np.sqrt(np.maximum(s, 0)).astype(np.float32)
        dd[lab < 0] = np.inf
        dd = np.maximum(dd, 0)  # rounding can give -1e-7 for identical rows
        rows = np.arange(a, a + len(q))[:, None]
        # drop the query itself; if it is not among the results (many identical rows), drop the last
        is_self = lab == rows
        no_self = ~is_self.any(axis=1)
        is_self[no_self, -1] = True
        keep = ~is_self
        dd = dd[keep].reshape(len(q), k)
        lab = lab[keep].reshape(len(q), k)
        # deterministic order: by distance, then row number
        o = np.lexsort((np.where(lab < 0, n, lab), dd), axis=-1)
        dist[a : a + len(q)] = np.take_along_axis(dd, o, axis=1)
        nbr[a : a + len(q)] = np.take_along_axis(lab, o, axis=1)
        if progress is not None:
            progress(a + len(q), n)
    return dist, nbr


def _resolve_index(index: str, n: int) -> str:
    if index == "auto":
        return "flat" if n <= _EXACT_UP_TO else "ivf"
    return index


def _nlist(nlist: int | None, n: int) -> int:
    if nlist is None:
        return int(max(1, min(n // 64, round(4 * np.sqrt(n)))))
    return check_int(nlist, caller="knn_density", name="nlist", low=1, high=n)


__all__ = ["knn_density", "knn_graph", "METRICS", "INDEXES"]

"""kNN density: how crowded each example's neighbourhood is in embedding space (sparse = hard).

An example in a sparse region has few close neighbours: it covers part of the distribution that
little else covers, so it is worth keeping (higher score = harder). An example in a dense region is
one of many alike (redundant). The score is the mean distance to the ``k`` nearest other examples.

Neighbours come from faiss: an exact flat index by default (``index="auto"`` below 200,000 rows), an
IVF index (centroids fitted on a sample, ``nprobe`` lists searched) above it. The index is the
*fit*; the queries are the *map*: chunk by chunk on the engine, so memory stays
``O(M x D + chunk x k)`` for an index of M rows.

**Reference rows.** The neighbours are sought among all N rows up to ``REFERENCE_AUTO`` rows; above
it (or when ``reference=M`` is given) among a seeded uniform sample of M rows, so that a store of
10^7 rows is scored with an index of bounded size. The score is then the mean distance to the k
nearest *sampled* rows: the same ordering of sparse against dense regions (a kNN density estimate
on a subsample), on a scale stretched by about ``(N / M) ** (1 / d)`` for intrinsic dimension d.
A row never counts itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_embeddings, check_ids, check_int, seed_int
from selfprune.engine.base import ArraySource, Engine, Source, get_engine, source_of, stack
from selfprune.errors import InvalidInputError
from selfprune.metrics._kmeans import deserialize_index, forget_index, knn_index, normalize_rows, serialize_index
from selfprune.scores import Scores

METRICS = ("cosine", "l2")
INDEXES = ("auto", "flat", "ivf")
_EXACT_UP_TO = 200_000
REFERENCE_AUTO = 250_000
"""Most rows held in the neighbour index by default; larger inputs are compared with a sample."""


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
    reference: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | str | None = None,
) -> Scores:
    """Mean distance to the ``k`` nearest other examples. (N, D) -> Scores (N,). Sparser = harder.

    ``embeddings``: an (N, D) array, a ``.npy`` memory map or an EmbeddingStore (streamed).
    ``metric="cosine"``: distance ``1 - cos`` in [0, 2] on L2-normalised rows; ``"l2"``: Euclidean.
    Exact duplicates count as neighbours at distance 0 (they make a region dense).
    ``reference``: rows held in the index (``None``: all up to ``REFERENCE_AUTO``, else a sample).
    ``progress(done, total)`` is called after each chunk of queries (rows done of N).
    """
    caller = "knn_density"
    x = source_of(embeddings, caller=caller)
    n = len(x)
    if ids is None and getattr(x, "ids", None) is not None:
        ids = x.ids
    ids = check_ids(ids, n, caller=caller)
    k = check_int(k, caller=caller, name="k", low=1)
    if n < 2:
        raise InvalidInputError(f"{caller}: needs at least 2 rows of embeddings, got {n}")
    m = min(n, REFERENCE_AUTO) if reference is None else check_int(reference, caller=caller, name="reference", low=2)
    m = min(m, n)
    if k >= m:
        raise InvalidInputError(
            f"{caller}: k must be in [1, N-1={m - 1}] (neighbours other than itself), got {k}"
        )
    rng = as_rng(seed, caller=caller)
    ref_seed = seed_int(rng)
    state, kind = _fit(x, k, m, metric=metric, index=index, nlist=nlist, nprobe=nprobe, rng=rng, ref_seed=ref_seed,
                       caller=caller)  # fmt: skip
    state["mean_only"] = np.array(True)
    try:
        parts = get_engine(engine).map(neighbours_chunk, x, state, progress=progress)
    finally:
        forget_index()
    values = stack(parts, "mean")
    meta = {"k": k, "distance": metric, "index": kind, "direction": "sparse = hard", "reference": m}
    if m < n:
        meta["reference_seed"] = ref_seed
    if kind == "ivf":
        seed_meta = seed if isinstance(seed, int) else None
        meta.update(nlist=_nlist(nlist, m), nprobe=nprobe, seed=seed_meta)
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
    engine: Engine | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest *other* rows of every row: (distances (N, k) float32, rows (N, k) int64).

    Rows sorted by distance, ties by row number. ``x`` must already be a validated float32 array.
    Missing neighbours (only with an IVF index and a tiny ``nprobe``) are -1 at distance inf.
    The queries run chunk by chunk on ``engine``; ``progress(done, total)`` is called as they finish.
    """
    src = source_of(x, caller=caller)
    n = len(src)
    state, _ = _fit(src, k, n, metric=metric, index=index, nlist=nlist, nprobe=nprobe, rng=as_rng(seed, caller=caller),
                    ref_seed=0, caller=caller)  # fmt: skip
    state["mean_only"] = np.array(False)
    try:
        parts = get_engine(engine).map(neighbours_chunk, src, state, progress=progress)
    finally:
        forget_index()
    return stack(parts, "dist").reshape(n, k), stack(parts, "rows").reshape(n, k).astype(np.int64)


def _fit(
    x: Source, k: int, m: int, *, metric, index, nlist, nprobe, rng, ref_seed: int, caller: str
) -> tuple[dict[str, np.ndarray], str]:
    """The fitted state of a neighbour search: the index over ``m`` reference rows (all when m = N)."""
    if metric not in METRICS:
        raise InvalidInputError(f"{caller}: metric must be one of {METRICS}, got {metric!r}")
    if index not in INDEXES:
        raise InvalidInputError(f"{caller}: index must be one of {INDEXES}, got {index!r}")
    nprobe = check_int(nprobe, caller=caller, name="nprobe", low=1)
    n = len(x)
    if m < n:
        refpos = np.sort(np.random.default_rng(ref_seed).choice(n, size=m, replace=False))
        base = _rows(x, refpos)
    else:
        refpos = np.arange(n, dtype=np.int64)
        base = _rows(x, None)
    fresh = not (isinstance(x, ArraySource) and base is x.array)  # a copy of ours: normalised in place
    base = check_embeddings(base, caller=caller)
    if metric == "cosine":
        base = _unit(base, 0, caller=caller, positions=refpos, inplace=fresh)
    kind = _resolve_index(index, m)
    space = "ip" if metric == "cosine" else "l2"
    if kind == "flat":
        idx = knn_index(base, metric=space)
    else:
        lists = _nlist(nlist, m)
        sample = np.sort(rng.choice(m, size=min(m, lists * 64), replace=False))
        idx = knn_index(
            base, metric=space, ivf_lists=lists, train=base[sample], train_seed=seed_int(rng),
            nprobe=min(nprobe, lists),
        )
    del base
    data = serialize_index(idx)
    del idx  # from here on only the serialised copy is held (the map deserialises it once)
    state = {
        "index": data,
        "refpos": refpos.astype(np.int64),
        "k": np.array(k),
        "cosine": np.array(metric == "cosine"),
        "n": np.array(n),
    }
    return state, kind


def _rows(x: Source, positions: np.ndarray | None) -> np.ndarray:
    """Rows of a source (all, or at sorted ``positions``) as one float32 array."""
    if isinstance(x, ArraySource) and x.path is None:
        return x.array if positions is None else x.array[positions]
    parts = []
    for c in range(x.n_chunks):
        lo, hi = x.bounds(c)
        if positions is None:
            parts.append(x.chunk(c))
        else:
            a, b = np.searchsorted(positions, [lo, hi])
            parts.append(x.rows_of_chunk(c, positions[a:b] - lo))
    return np.concatenate(parts)


def _unit(
    x: np.ndarray, lo: int, *, caller: str, positions: np.ndarray | None = None, inplace: bool = False
) -> np.ndarray:
    unit = normalize_rows(x, inplace=inplace)  # zero rows stay zero
    zero = np.flatnonzero(~unit.any(axis=1))
    if zero.size:
        row = int(positions[zero[0]]) if positions is not None else lo + int(zero[0])
        raise InvalidInputError(f"{caller}: embeddings have zero norm at row {row}; cosine distance is undefined")
    return unit


def neighbours_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: the ``k`` nearest reference rows of each row other than itself.

    Returns ``mean`` (mean distance, float64) when ``state["mean_only"]``, else ``dist`` (n, k)
    float32 and ``rows`` (n, k) global row numbers, sorted by distance then row number.
    """
    k, n = int(state["k"]), int(state["n"])
    q = check_embeddings(chunk, caller="knn_density")
    if bool(state["cosine"]):
        q = _unit(q, lo, caller="knn_density")
    idx = deserialize_index(state["index"])
    refpos = state["refpos"]
    s, lab = idx.search(q, k + 1)
    dd = (1.0 - s).astype(np.float32) if bool(state["cosine"]) else np.sqrt(np.maximum(s, 0)).astype(np.float32)
    dd[lab < 0] = np.inf
    dd = np.maximum(dd, 0)  # rounding can give -1e-7 for identical rows
    rows = np.where(lab < 0, -1, refpos[np.maximum(lab, 0)])
    # drop the query itself; if it is not among the results (many identical rows), drop the last
    is_self = rows == np.arange(lo, lo + len(q))[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    dd = dd[keep].reshape(len(q), k)
    rows = rows[keep].reshape(len(q), k)
    # deterministic order: by distance, then row number
    o = np.lexsort((np.where(rows < 0, n, rows), dd), axis=-1)
    dd = np.take_along_axis(dd, o, axis=1)
    if bool(state["mean_only"]):
        return {"mean": dd.mean(axis=1, dtype=np.float64)}
    return {"dist": dd, "rows": np.take_along_axis(rows, o, axis=1)}


def _resolve_index(index: str, n: int) -> str:
    if index == "auto":
        return "flat" if n <= _EXACT_UP_TO else "ivf"
    return index


def _nlist(nlist: int | None, n: int) -> int:
    if nlist is None:
        return int(max(1, min(n // 64, round(4 * np.sqrt(n)))))
    return check_int(nlist, caller="knn_density", name="nlist", low=1, high=n)


__all__ = ["knn_density", "knn_graph", "neighbours_chunk", "METRICS", "INDEXES", "REFERENCE_AUTO"]

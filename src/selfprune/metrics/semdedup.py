"""Semantic deduplication (SemDeDup, Abbas et al. 2023) over an (N, D) embedding array.

The method: spherical k-means on the L2-normalised embeddings (fitted on a sample), then, cluster
by cluster, walk the members in a fixed order (farthest from the centroid first by default) and
remove an example when its cosine similarity to an earlier **kept** example exceeds ``1 - eps``.

Two differences from the reference code, both on purpose:

* an example is removed only for duplicating one that is kept. The reference compares each example
  with every earlier one, removed ones included, so a chain ``a ~ b ~ c`` where ``a`` and ``c`` are
  not duplicates loses ``c`` for duplicating the already removed ``b``. Here ``c`` survives, and
  every removed example names the kept one it duplicates (``duplicate_of``). A tight group (all
  pairwise within ``eps``) therefore keeps exactly one member.
* duplicates across a cluster boundary: each example is also compared with the kept examples of
  its second-nearest cluster when that cluster was walked before its own (``cross_check``); the
  paper looks inside clusters only and keeps both halves of a group that k-means cut in two.
* bit-identical embedding rows are grouped first, by hashing, and removed as exact duplicates of
  their first member (similarity 1.0). So ``eps = 0`` removes exactly the exact duplicates, with no
  dependence on float rounding, and identical rows can never land in different clusters.

Results do not depend on the input order: the k-means sample, the processing order and every tie
are decided by example id, not by row position. Within a cluster the comparisons run in tiles of
``tile`` rows, so memory is ``O(cluster x D + tile x tile)``: a 200,000-example cluster never
materialises its similarity matrix. The input array is never copied as a whole.

**At scale.** ``embeddings`` may be an EmbeddingStore or a ``.npy`` memory map (float16 or
float32): rows are then read from disk as each step needs them (a cluster at a time), so memory is
``O(N)`` for the per-row bookkeeping (about 60 bytes a row) plus the largest cluster, never the
whole array. Every pass runs on the engine, chunk by chunk: the norms, the assignment to the two
nearest centroids (its decisions are exact, so they depend neither on the batch nor on the input
order) and the cluster pass, one task per cluster.

**The cluster pass as independent tasks, and the cross-check.** With ``cross_check`` a cluster
compares its rows with the *kept* rows of earlier clusters, so cluster ``c`` depends on the
clusters before it. The pass therefore runs in two steps that give exactly the sequential result:

1. one independent task per cluster (on the engine, checkpointed with its ``workdir``): the greedy
   walk of the cluster alone, and the best match among the rows it keeps for every later row that
   names it as its second-nearest cluster;
2. on the driver, clusters in walk order: a cluster none of whose rows matched a kept row of an
   earlier cluster keeps its task's answer as it is. Only a cluster with such a match (a
   duplicate group cut by a boundary) is walked again with those matches, and, if that changed
   which of its rows are kept, its later rows are matched again against the new kept set.

Step 2 redoes work only at boundary duplicates, so on most data it costs next to nothing; in the
worst case (a match into every cluster) it walks every cluster a second time. Without the
cross-check step 2 only collects the results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_embeddings, check_ids, check_int, seed_int
from selfprune.engine.base import Engine, GroupedSource, RowReader, Source, get_engine, rows_of, source_of, stack
from selfprune.errors import InvalidInputError
from selfprune.metrics._kernel import pairs_above
from selfprune.metrics._kmeans import kmeans, nearest_centroids

ORDERS = ("farthest", "nearest", "random")
_CHUNK = 16384  # rows per streamed chunk (normalise, hash, assign)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class DedupResult:
    """What semantic dedup decided.

    ``kept``: sorted ids that survive. ``removed``: ids removed, sorted; ``duplicate_of[i]`` is the
    kept id that ``removed[i]`` duplicates and ``similarity[i]`` their cosine similarity
    (float64, ``> 1 - eps``; exactly 1.0 for bit-identical rows). ``cluster``: the k-means
    cluster of every input row, in input order. ``meta``: the parameters and diagnostics.
    """

    kept: np.ndarray
    removed: np.ndarray
    duplicate_of: np.ndarray
    similarity: np.ndarray
    cluster: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_examples(self) -> int:
        return len(self.kept) + len(self.removed)

    @property
    def fraction_removed(self) -> float:
        return len(self.removed) / self.n_examples

    def __repr__(self) -> str:
        return (
            f"DedupResult(kept={len(self.kept)}, removed={len(self.removed)}, "
            f"eps={self.meta.get('eps')}, k={self.meta.get('k')})"
        )


@dataclass(frozen=True, eq=False)
class EpsSweep:
    """Fraction of examples removed at each ``eps`` (same clustering for all)."""

    eps: np.ndarray
    n_removed: np.ndarray
    fraction_removed: np.ndarray
    n_examples: int
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# public API


def semdedup(
    embeddings,
    *,
    eps: float = 0.05,
    k: int = 100,
    ids=None,
    order: str = "farthest",
    seed: SeedLike = 0,
    tile: int = 1024,
    niter: int = 20,
    max_points_per_centroid: int = 256,
    cross_check: bool = True,
    progress: Progress | None = None,
    engine: Engine | str | None = None,
) -> DedupResult:
    """Semantic dedup of (N, D) ``embeddings``: drop each with cosine > ``1 - eps`` to a kept one.

    ``eps`` in [0, 2); ``k`` clusters (1 <= k <= N) fitted on at most
    ``k * max_points_per_centroid`` rows; ``order`` is the walk order inside a cluster
    (``farthest`` from the centroid first, as in the paper, ``nearest`` first, or ``random``);
    ``tile`` rows are compared at a time (the result does not depend on it).
    ``cross_check``: also compare each example with the kept examples of its second-nearest
    cluster when that cluster comes earlier in the walk, so a duplicate group cut by a cluster
    boundary still keeps one member (the paper compares within clusters only).
    ``progress(done, total)`` is called as the cluster pass advances (rows of the pass, a cluster at
    a time).
    """
    caller = "semdedup"
    eps = _check_eps(eps, caller=caller)
    plan = _plan(
        embeddings, k=k, ids=ids, order=order, seed=seed, tile=tile, niter=niter,
        max_points_per_centroid=max_points_per_centroid, cross_check=cross_check, caller=caller, engine=engine,
    )
    kept_rows, dup_rows, sims = _dedup_clusters(plan, [eps], progress=progress, engine=engine)[0]
    return _result(plan, eps, kept_rows, dup_rows, sims)


def semdedup_sweep(
    embeddings,
    eps_values: Sequence[float] = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    *,
    k: int = 100,
    ids=None,
    order: str = "farthest",
    seed: SeedLike = 0,
    tile: int = 1024,
    niter: int = 20,
    max_points_per_centroid: int = 256,
    cross_check: bool = True,
    progress: Progress | None = None,
    engine: Engine | str | None = None,
) -> EpsSweep:
    """Fraction removed at each ``eps`` in ``eps_values``, clustering once (to choose ``eps``).

    Each entry equals ``semdedup(..., eps=e).fraction_removed`` with the same other arguments.
    """
    caller = "semdedup_sweep"
    values = np.asarray(eps_values, dtype=np.float64).ravel()
    if values.size == 0:
        raise InvalidInputError(f"{caller}: eps_values is empty; give at least one eps in [0, 2)")
    eps_list = [_check_eps(float(e), caller=caller, name="eps_values") for e in values]
    plan = _plan(
        embeddings, k=k, ids=ids, order=order, seed=seed, tile=tile, niter=niter,
        max_points_per_centroid=max_points_per_centroid, cross_check=cross_check, caller=caller, engine=engine,
    )
    outs = _dedup_clusters(plan, eps_list, progress=progress, engine=engine)
    n = plan.n
    n_removed = np.array([n - len(kept) for kept, _, _ in outs], dtype=np.int64)
    return EpsSweep(
        eps=np.asarray(eps_list),
        n_removed=n_removed,
        fraction_removed=n_removed / n,
        n_examples=n,
        meta=dict(plan.meta),
    )


# ----------------------------------------------------------------------------------------------
# validation


def _check_eps(eps, *, caller: str, name: str = "eps") -> float:
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{caller}: {name} must be a number in [0, 2), got {eps!r}"
        ) from None
    if isinstance(eps, bool) or not np.isfinite(value) or not 0.0 <= value < 2.0:
        raise InvalidInputError(f"{caller}: {name} must be in [0, 2), got {eps!r}")
    return value


# ----------------------------------------------------------------------------------------------
# planning: exact duplicates, clustering, walk order


@dataclass
class _Plan:
    source: Source  # the input, chunked
    x: np.ndarray | RowReader  # (N, D) float32 input (not normalised, not copied; a store is read by rows)
    ids: np.ndarray  # (N,) ids in input order
    n: int
    inv_norm: np.ndarray  # (N,) float32, 1 / ||x_i||
    exact_of: np.ndarray  # (N,) row of the first (smallest id) bit-identical row; itself if unique
    cluster: np.ndarray  # (N,) cluster per row (copies share their representative's)
    walks: list[np.ndarray]  # per cluster: representative rows in walk order
    tile: int
    second: np.ndarray | None  # (N,) second-nearest cluster of each representative, or None
    meta: dict[str, Any]


def _plan(
    embeddings, *, k, ids, order, seed, tile, niter, max_points_per_centroid, cross_check, caller, engine
) -> _Plan:
    src = source_of(embeddings, caller=caller)
    x = rows_of(src)
    n, d = len(src), src.dim
    if ids is None and getattr(src, "ids", None) is not None:
        ids = src.ids
    ids = check_ids(ids, n, caller=caller)
    k = check_int(k, caller=caller, name="k", low=1)
    if k > n:
        raise InvalidInputError(f"{caller}: k must be in [1, N={n}], got {k}")
    tile = check_int(tile, caller=caller, name="tile", low=1)
    niter = check_int(niter, caller=caller, name="niter", low=1)
    max_points_per_centroid = check_int(
        max_points_per_centroid, caller=caller, name="max_points_per_centroid", low=1
    )
    if order not in ORDERS:
        raise InvalidInputError(f"{caller}: order must be one of {ORDERS}, got {order!r}")
    rng = as_rng(seed, caller=caller)

    # rows in id order: every tie and every sample is decided on it, never on row position
    by_id = np.argsort(ids, kind="stable")

    inv_norm = stack(get_engine(engine).map(inverse_norms_chunk, src), "inv_norm")
    exact_of = _exact_groups(x, by_id)
    reps_by_id = by_id[exact_of[by_id] == by_id]  # representative rows, in id order
    n_unique = len(reps_by_id)

    k_eff = min(k, n_unique)
    kseed = seed_int(rng)
    sample_size = min(n_unique, k_eff * max_points_per_centroid)
    if sample_size < n_unique:
        pick = np.sort(rng.choice(n_unique, size=sample_size, replace=False))
        sample_rows = reps_by_id[pick]
    else:
        sample_rows = reps_by_id
    sample = x[sample_rows]  # the only sizeable copy: at most k * max_points_per_centroid rows
    sample *= inv_norm[sample_rows, None]
    centroids, obj = _fit_centroids(sample, k_eff, seed=kseed, niter=niter)
    del sample

    # assign every row chunk by chunk on the engine; representatives take theirs
    cluster = np.empty(n, dtype=np.int64)
    sim_to_centroid = np.empty(n, dtype=np.float32)
    parts = get_engine(engine).map(assign_chunk, src, {"centroids": centroids, "inv_norm": inv_norm})
    rep_cluster = stack(parts, "label")[reps_by_id]
    rep_sim = stack(parts, "sim")[reps_by_id]
    rep_second = stack(parts, "second")[reps_by_id]
    cluster[reps_by_id] = rep_cluster
    sim_to_centroid[reps_by_id] = rep_sim
    cluster[:] = cluster[exact_of]

    if order == "farthest":
        key = sim_to_centroid[reps_by_id].astype(np.float64)
    elif order == "nearest":
        key = -sim_to_centroid[reps_by_id].astype(np.float64)
    else:
        key = rng.random(n_unique)  # drawn in id order: independent of input order
    # sort by (cluster, key, id); reps_by_id is already in id order, so lexsort's stability does it
    walk = reps_by_id[np.lexsort((key, rep_cluster))]
    bounds = np.searchsorted(cluster[walk], np.arange(k_eff + 1))
    walks = [walk[bounds[c] : bounds[c + 1]] for c in range(k_eff)]

    sizes = np.diff(bounds)
    meta = {
        "method": "semdedup",
        "k": k,
        "k_fitted": k_eff,
        "order": order,
        "seed": seed if isinstance(seed, int) else kseed,
        "tile": tile,
        "cross_check": bool(cross_check),
        "niter": niter,
        "sample_size": int(sample_size),
        "n_examples": n,
        "dim": d,
        "n_exact_duplicates": int(n - n_unique),
        "kmeans_objective": float(obj),
        "largest_cluster": int(sizes.max()),
        "empty_clusters": int((sizes == 0).sum()),
    }
    second = None
    if cross_check and k_eff > 1:
        second = np.full(n, -1, dtype=np.int64)
        second[reps_by_id] = rep_second
    return _Plan(src, x, ids, n, inv_norm, exact_of, cluster, walks, tile, second, meta)


def inverse_norms_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: ``1 / ||x_i||`` (float32) of each validated row; a zero row is an error."""
    x = check_embeddings(chunk, caller="semdedup")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise InvalidInputError(
            f"semdedup: embeddings have zero norm (no direction) at row {lo + zero[0]}; "
            "cosine similarity is undefined for them"
        )
    return {"inv_norm": (1.0 / norms).astype(np.float32)}


def _row_hashes(x: np.ndarray, rows: np.ndarray, salt: int) -> np.ndarray:
    """64-bit hash of each row's float32 bits (+0.0 and -0.0 hash alike)."""
    d = x.shape[1]
    w = np.random.default_rng(0x5E3DED + salt).integers(1, 2**63, size=d, dtype=np.uint64) | 1
    out = np.empty(len(rows), dtype=np.uint64)
    for a in range(0, len(rows), _CHUNK):
        chunk = x[rows[a : a + _CHUNK]] + np.float32(0.0)  # turns -0.0 into +0.0
        bits = chunk.view(np.uint32).astype(np.uint64)
        bits ^= bits >> np.uint64(7)
        out[a : a + _CHUNK] = (bits * w).sum(axis=1, dtype=np.uint64)
    return out


def _exact_groups(x: np.ndarray, by_id: np.ndarray) -> np.ndarray:
    """For each row, the row of the smallest-id bit-identical row (itself when unique)."""
    n = len(x)
    exact_of = np.arange(n)
    todo = by_id  # rows still to group, in id order
    salt = 0
    while len(todo) > 1:
        h = _row_hashes(x, todo, salt)
        _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        # np.unique's first index is the first occurrence in ``todo``, i.e. the smallest id
        cand = todo[first[inverse]]
        multi = cand != todo
        if not multi.any():
            break
        rows, reps = todo[multi], cand[multi]
        same = np.ones(len(rows), dtype=bool)
        for a in range(0, len(rows), _CHUNK):
            s = slice(a, a + _CHUNK)
            same[s] = np.all((x[rows[s]] + np.float32(0)) == (x[reps[s]] + np.float32(0)), axis=1)
        exact_of[rows[same]] = reps[same]
        # hash collisions (not identical): group them again among themselves with a new salt
        todo = rows[~same]
        salt += 1
    return exact_of


def _fit_centroids(
    sample: np.ndarray, k: int, *, seed: int, niter: int
) -> tuple[np.ndarray, float]:
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if k == 1:
        c = sample.mean(axis=0, keepdims=True)
        c /= max(float(np.linalg.norm(c)), np.finfo(np.float32).tiny)
        return c.astype(np.float32), 0.0
    # the caller already sampled: faiss trains on every row it is given
    return kmeans(
        sample, k=k, seed=seed, niter=niter, max_points_per_centroid=len(sample) + 1, min_points_per_centroid=1
    )


def assign_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: the nearest centroid (``label``), its cosine similarity (``sim``) and the
    second-nearest centroid (``second``, -1 if k = 1) of each row, normalised by
    ``state["inv_norm"]`` as the cluster pass normalises it. The kernel's decisions are exact, so a
    row's answer does not depend on the rows it is batched with (nor on the input order)."""
    cents = state["centroids"]
    x = np.ascontiguousarray(chunk * state["inv_norm"][lo : lo + len(chunk), None])
    kk = min(2, len(cents))
    s, lab = nearest_centroids(x, cents, top=kk)
    second = lab[:, 1] if kk == 2 else np.full(len(x), -1, dtype=np.int64)
    return {"label": lab[:, 0].astype(np.int64), "sim": s[:, 0].astype(np.float32), "second": second}


# ----------------------------------------------------------------------------------------------
# the greedy, cluster by cluster, tile by tile


def _dedup_clusters(
    plan: _Plan, eps_list: list[float], *, progress: Progress | None, engine: Engine | str | None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each eps: (kept rows, duplicate-of row per row (-1 = kept), similarity per row).

    The global walk is cluster 0's walk, then cluster 1's, ... An example is compared with the
    kept examples of its own cluster and, when ``plan.second`` says so, with the kept examples of
    its second-nearest cluster if that one comes earlier in the walk (already final). The clusters
    run as independent tasks (:func:`cluster_pass_chunk`); the driver then settles them in walk
    order, walking again only a cluster that an earlier one reached (see the module docstring).
    """
    n = plan.n
    thresholds = [1.0 - e for e in eps_list]
    dup_of = [np.full(n, -1, dtype=np.int64) for _ in eps_list]
    sim = [np.zeros(n, dtype=np.float64) for _ in eps_list]
    # eps = 0: no cosine exceeds 1 (only float32 rounding could say otherwise) and bit-identical
    # rows are handled apart, so eps = 0 means exact duplicates only: no comparisons at all.
    active = [e for e, eps in enumerate(eps_list) if eps > 0.0]
    if active:
        _settle(plan, [thresholds[e] for e in active], [dup_of[e] for e in active], [sim[e] for e in active],
                progress=progress, engine=engine)  # fmt: skip

    outs = []
    copies = np.flatnonzero(plan.exact_of != np.arange(n))
    for e in range(len(eps_list)):
        d, s = dup_of[e], sim[e]
        # bit-identical copies: of their representative when it is kept, else of whatever it
        # duplicates (they come right after it in the walk, with the same similarities)
        rep = plan.exact_of[copies]
        rep_removed = d[rep] >= 0
        d[copies] = np.where(rep_removed, d[rep], rep)
        s[copies] = np.where(rep_removed, s[rep], 1.0)
        kept_rows = np.flatnonzero(d < 0)
        outs.append((kept_rows, d, s))
    return outs


def _settle(
    plan: _Plan, thresholds: list[float], dup_of: list[np.ndarray], sim: list[np.ndarray], *,
    progress: Progress | None, engine: Engine | str | None,
) -> None:  # fmt: skip
    """Fill ``dup_of``/``sim`` (one per threshold, in place) from the per-cluster tasks, walking
    again on the driver the clusters that a kept row of an earlier cluster reaches."""
    n = plan.n
    cross = _cross_lists(plan)
    groups = [np.concatenate([w, r]) for w, r in zip(plan.walks, cross, strict=True)]
    order = np.concatenate(groups) if groups else np.empty(0, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    is_walk = np.concatenate([np.arange(len(g)) < len(w) for g, w in zip(groups, plan.walks, strict=True)])
    state = {
        "inv_norm": plan.inv_norm[order],
        "walk": is_walk,
        "thresholds": np.asarray(thresholds, dtype=np.float64),
        "tile": np.asarray(plan.tile, dtype=np.int64),
    }
    parts = get_engine(engine).map(cluster_pass_chunk, GroupedSource(plan.source, order, bounds), state,
                                   progress=progress)  # fmt: skip
    pre_best = [np.full(n, -np.inf, dtype=np.float64) for _ in thresholds]
    pre_row = [np.full(n, -1, dtype=np.int64) for _ in thresholds]
    for walk, later, part in zip(plan.walks, cross, parts, strict=True):
        m = len(walk)
        xc = None
        for a, thr in enumerate(thresholds):
            pos_dup, pos_sim = part["dup"][:m, a], part["sim"][:m, a]
            pb = pre_best[a][walk]
            changed = False  # the kept set differs from the task's
            if np.isfinite(pb).any():  # a kept row of an earlier cluster matches one of these rows
                xc = _unit_rows(plan, walk) if xc is None else xc
                alone = pos_dup == -1
                pos_dup, pos_sim = _greedy(xc, thr, plan.tile, pb)
                changed = not np.array_equal(pos_dup == -1, alone)
            internal = pos_dup >= 0
            external = pos_dup == -2
            dup_of[a][walk[internal]] = walk[pos_dup[internal]]
            dup_of[a][walk[external]] = pre_row[a][walk[external]]
            gone = internal | external
            sim[a][walk[gone]] = pos_sim[gone]
            if len(later):
                if changed:  # match the later rows against the new kept set
                    best, arg = _best_match(_unit_rows(plan, later), xc, np.flatnonzero(~gone), plan.tile, thr)
                else:
                    best, arg = part["sim"][m:, a], part["dup"][m:, a]
                pre_best[a][later] = best
                pre_row[a][later] = np.where(arg >= 0, walk[np.maximum(arg, 0)], -1)


def _unit_rows(plan: _Plan, rows: np.ndarray) -> np.ndarray:
    """Rows of the input normalised as every pass normalises them (by ``plan.inv_norm``)."""
    return plan.x[rows] * plan.inv_norm[rows, None]


def cluster_pass_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: one cluster alone. ``chunk`` is the cluster's walk (the rows flagged in
    ``state["walk"]``, in walk order), then the later rows naming it as second-nearest cluster.

    Per threshold (a column each): for a walk row, the position of the earlier kept row it
    duplicates (-1 kept) and the similarity (``dup``, ``sim``); for a later row, the position of
    its best match among the kept walk rows above the threshold (-1: none) and that similarity
    (``-inf``: none)."""
    n = len(chunk)
    m = int(np.count_nonzero(state["walk"][lo : lo + n]))
    x = chunk * state["inv_norm"][lo : lo + n, None]
    xc, xr = x[:m], x[m:]
    tile = int(state["tile"])
    thresholds = state["thresholds"]
    dup = np.empty((n, len(thresholds)), dtype=np.int64)
    sim = np.empty((n, len(thresholds)), dtype=np.float64)
    for a, thr in enumerate(thresholds.tolist()):
        dup[:m, a], sim[:m, a] = _greedy(xc, thr, tile)
        sim[m:, a], dup[m:, a] = _best_match(xr, xc, np.flatnonzero(dup[:m, a] == -1), tile, thr)
    return {"dup": dup, "sim": sim}


def _cross_lists(plan: _Plan) -> list[np.ndarray]:
    """Per cluster g: representative rows of later clusters whose second-nearest cluster is g."""
    k = len(plan.walks)
    if plan.second is None:
        return [np.empty(0, dtype=np.int64)] * k
    reps = np.concatenate(plan.walks) if k else np.empty(0, dtype=np.int64)
    g = plan.second[reps]
    mine = plan.cluster[reps]
    sel = (g >= 0) & (g < mine)
    rows, g = reps[sel], g[sel]
    o = np.argsort(g, kind="stable")
    rows, g = rows[o], g[o]
    bounds = np.searchsorted(g, np.arange(k + 1))
    return [rows[bounds[i] : bounds[i + 1]] for i in range(k)]


def _row_best(i: np.ndarray, j: np.ndarray, v: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``n_rows``: the highest ``v`` among its pairs and its ``j`` (the earliest ``j`` on
    ties); ``-inf`` and -1 for a row without pairs."""
    best = np.full(n_rows, -np.inf, dtype=np.float64)
    arg = np.full(n_rows, -1, dtype=np.int64)
    if len(i):
        o = np.lexsort((j, -v, i))
        first = np.ones(len(o), dtype=bool)
        first[1:] = i[o][1:] != i[o][:-1]
        sel = o[first]
        best[i[sel]] = v[sel]
        arg[i[sel]] = j[sel]
    return best, arg


def _closer(rows: np.ndarray, xc: np.ndarray, cols: np.ndarray, tile: int, thr: float,
            tb: np.ndarray, ta: np.ndarray) -> None:
    """Raise ``tb``/``ta`` (in place) to each row's most similar ``xc[cols]`` above ``thr``, in
    blocks of ``tile`` columns (ties: the value already there, then the earliest column)."""
    for c0 in range(0, len(cols), tile):
        cc = cols[c0 : c0 + tile]
        i, j, v = pairs_above(rows, xc[cc], thr)
        rb, rj = _row_best(i, j, v, len(rows))
        better = rb > tb
        tb[better] = rb[better]
        ta[better] = cc[rj[better]]


def _best_match(
    xr: np.ndarray, xc: np.ndarray, cols: np.ndarray, tile: int, thr: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``xr``: highest similarity to ``xc[cols]`` above ``thr`` and its position (earliest
    on ties); ``-inf`` and -1 when none is above it."""
    best = np.full(len(xr), -np.inf, dtype=np.float64)
    arg = np.full(len(xr), -1, dtype=np.int64)
    for a in range(0, len(xr), tile):
        _closer(xr[a : a + tile], xc, cols, tile, thr, best[a : a + tile], arg[a : a + tile])
    return best, arg


def _greedy(
    xc: np.ndarray, thr: float, tile: int, pre_best: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sequential greedy over the rows of ``xc`` (normalised, in walk order), in tiles.

    Row i is removed iff its similarity to some earlier *kept* row exceeds ``thr``; it then points
    at the most similar earlier kept row (ties: the earliest). ``pre_best`` (optional) is each
    row's best similarity to kept rows that precede this whole walk (another cluster); they count
    as earlier than every row here. Returns (dup: position, -1 kept, -2 the external row; sim).
    """
    m = len(xc)
    dup = np.full(m, -1, dtype=np.int64)
    best = np.full(m, -np.inf, dtype=np.float64)
    kept_pos = np.empty(m, dtype=np.int64)
    n_kept = 0
    for a in range(0, m, tile):
        b = min(a + tile, m)
        rows = xc[a:b]
        if pre_best is None:
            tb = np.full(b - a, -np.inf, dtype=np.float64)
        else:
            tb = pre_best[a:b].astype(np.float64, copy=True)
        ta = np.where(np.isfinite(tb), -2, -1).astype(np.int64)
        # 1. against every kept row of earlier tiles
        _closer(rows, xc, kept_pos[:n_kept], tile, thr, tb, ta)
        hit = tb > thr
        dup[a:b][hit] = ta[hit]
        best[a:b][hit] = tb[hit]
        # 2. inside the tile, among rows that survived step 1; edges point back in the walk
        live = np.flatnonzero(~hit)
        if len(live) == 0:
            continue
        i, j, v = pairs_above(rows, rows, thr, lower=True)
        at = np.full(b - a, -1, dtype=np.int64)
        at[live] = np.arange(len(live))
        both = (at[i] >= 0) & (at[j] >= 0)
        status, tdup, tsim = _greedy_tile(len(live), at[i[both]], at[j[both]], v[both])
        gone = status == 2
        pos = a + live
        dup[pos[gone]] = a + live[tdup[gone]]
        best[pos[gone]] = tsim[gone]
        new_kept = live[status == 1]
        # rows removed in step 1 may be even closer to a row kept earlier in this same tile
        h = np.flatnonzero(hit)
        if len(h) and len(new_kept):
            is_new = np.zeros(b - a, dtype=bool)
            is_new[new_kept] = True
            sel = hit[i] & is_new[j]
            rb, rj = _row_best(i[sel], j[sel], v[sel], b - a)
            better = h[rb[h] > tb[h]]
            dup[a + better] = a + rj[better]
            best[a + better] = rb[better]
        kept_pos[n_kept : n_kept + len(new_kept)] = a + new_kept
        n_kept += len(new_kept)
    return dup, best


def _greedy_tile(t: int, i: np.ndarray, j: np.ndarray, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact sequential greedy inside one tile of ``t`` rows (in walk order), given its conflict
    edges ``i -> j`` (``j < i``, similarity ``ev`` above the threshold).

    Resolved by vectorised rounds over the edges; each round settles at least the first unsettled
    row, and usually all of them in two rounds. status: 1 kept, 2 removed; dup: index of the most
    similar earlier kept row.
    """
    status = np.zeros(t, dtype=np.int8)
    if len(i) == 0:
        status[:] = 1
        return status, np.full(t, -1, dtype=np.int64), np.zeros(t, dtype=np.float64)
    while True:
        open_ = status == 0
        if not open_.any():
            break
        # removed: an open row with an edge to a kept row
        hit = (status[j] == 1) & open_[i]
        status[i[hit]] = 2
        open_ = status == 0
        # kept: an open row none of whose earlier neighbours is still open
        blocked = np.zeros(t, dtype=bool)
        blocked[i[open_[j] & open_[i]]] = True
        status[open_ & ~blocked] = 1
    # each removed row points at its most similar kept earlier row (ties: the earliest)
    e = status[j] == 1
    sim, dup = _row_best(i[e], j[e], ev[e], t)
    return status, dup, np.where(np.isfinite(sim), sim, 0.0)


def _result(
    plan: _Plan, eps: float, kept_rows: np.ndarray, dup: np.ndarray, sim: np.ndarray
) -> DedupResult:
    ids = plan.ids
    kept = np.sort(ids[kept_rows])
    removed_rows = np.flatnonzero(dup >= 0)
    o = np.argsort(ids[removed_rows], kind="stable")
    removed_rows = removed_rows[o]
    meta = {**plan.meta, "eps": eps, "n_kept": int(len(kept)), "n_removed": int(len(removed_rows))}
    return DedupResult(
        kept=kept,
        removed=ids[removed_rows],
        duplicate_of=ids[dup[removed_rows]],
        similarity=sim[removed_rows],
        cluster=plan.cluster.copy(),
        meta=meta,
    )


__all__ = ["DedupResult", "EpsSweep", "semdedup", "semdedup_sweep", "ORDERS"]

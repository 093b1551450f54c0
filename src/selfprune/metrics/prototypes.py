"""Sorscher et al. (2022) self-supervised prototype metric, its class-aware twin, and a random score.

Far from every prototype = atypical = hard, so the score is the cosine *distance* to the nearest
centroid: 0 for an example sitting on a prototype, up to 2 for one pointing away from all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_ids, check_int, check_labels, seed_int
from selfprune._seeds import seed_list as seed_list_of
from selfprune.engine.base import Engine, get_engine, sample_rows, source_of, stack
from selfprune.errors import InvalidInputError
from selfprune.metrics._kmeans import fit_centroids, nearest_chunk, normalize_rows, unit_rows
from selfprune.scores import Scores

DEFAULT_K = 100
"""Default number of prototypes. Sorscher et al. found the metric robust to k over an order of
magnitude on ImageNet (they used 100 per 1,000 classes ~ the class count); 100 is a safe default for
data sets of 10^4 to 10^6 examples; use roughly the number of classes or more."""


def prototypes(
    embeddings,
    *,
    k: int = DEFAULT_K,
    seed: int = 0,
    n_seeds: int | None = None,
    seeds: Sequence[int] | None = None,
    ids=None,
    niter: int = 20,
    max_points_per_centroid: int = 256,
    encoder: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | str | None = None,
) -> Scores:
    """Cosine distance to the nearest of ``k`` spherical k-means centroids. (N, D) -> (N,), in [0, 2].

    ``embeddings`` is an (N, D) array, a ``.npy`` memory map (float16 or float32) or an
    :class:`~selfprune.io.store.EmbeddingStore`; maps and stores are streamed chunk by chunk on
    ``engine`` (see :mod:`selfprune.engine.base`; ``None``: the current one, local by default).
    Rows are L2-normalised. Centroids are fitted on a sample of at most
    ``k * max_points_per_centroid`` rows. ``seed`` seeds the k-means fit; ``n_seeds`` (seeds
    ``0..n-1``) or ``seeds`` (a list) instead average the score over several k-means restarts.
    Higher = harder (far from every prototype). ``progress(done, total)`` is called after each
    chunk is scored (rows done over all seeds, of ``N x len(seeds)``).
    """
    caller = "prototypes"
    x = source_of(embeddings, caller=caller)
    n = len(x)
    check_int(k, caller=caller, name="k", low=1)
    if k > n:
        raise InvalidInputError(f"prototypes: k={k} is larger than the number of examples ({n})")
    if seeds is None and n_seeds is None:
        seed = check_int(seed, caller=caller, name="seed", low=0)
        seed_list = [seed]
    elif seed != 0:
        raise InvalidInputError(
            f"prototypes: give seed= (one k-means run) or n_seeds=/seeds= (restarts), not both; got seed={seed!r}"
        )
    else:
        seed_list = list(seed_list_of(seeds, n_seeds, caller=caller))
    if ids is None and hasattr(x, "ids"):
        ids = x.ids
    ids = check_ids(ids, n, caller=caller)

    total = np.zeros(n, dtype=np.float64)
    eng = get_engine(engine)
    for j, s in enumerate(seed_list):
        # the sample is a temporary of the call: freed before the map, so peak memory stays low
        cents = fit_centroids(
            normalize_rows(sample_rows(x, k * max_points_per_centroid, seed=s), inplace=True),
            k=k,
            seed=s,
            niter=niter,
            max_points_per_centroid=max_points_per_centroid,
        )
        step = None if progress is None else (lambda done, _n, j=j: progress(j * n + done, n * len(seed_list)))
        total += 1.0 - stack(eng.map(nearest_chunk, x, {"centroids": cents}, progress=step), "sim")
    values = np.clip(total / len(seed_list), 0.0, 2.0)
    meta = {"k": k, "seeds": seed_list, "niter": niter, "max_points_per_centroid": max_points_per_centroid}
    if encoder:
        meta["encoder"] = encoder
    return Scores(ids=ids, values=values, name="prototypes", meta=meta)


def class_prototypes(
    embeddings, labels, *, ids=None, encoder: str | None = None, engine: Engine | str | None = None
) -> Scores:
    """Cosine distance to the example's own class centroid (mean of its class's normalised rows).

    Needs labels. Higher = harder (atypical for its class, or mislabelled). Two passes over the
    chunks on ``engine``: per-class sums (added in chunk order), then each row against its centroid.
    """
    caller = "class_prototypes"
    x = source_of(embeddings, caller=caller)
    y = check_labels(labels, len(x), caller=caller)
    if ids is None and getattr(x, "ids", None) is not None:
        ids = x.ids
    ids = check_ids(ids, len(x), caller=caller)
    classes, inverse = np.unique(y, return_inverse=True)
    eng = get_engine(engine)
    state = {"inverse": inverse.astype(np.int64), "n_classes": np.array(len(classes))}
    sums = np.sum([p["sums"] for p in eng.map(class_sums_chunk, x, state)], axis=0)
    cents = normalize_rows(sums.astype(np.float32))
    sim = stack(eng.map(own_centroid_chunk, x, {"inverse": state["inverse"], "centroids": cents}), "sim")
    meta = {"n_classes": int(len(classes))}
    if encoder:
        meta["encoder"] = encoder
    return Scores(ids=ids, values=np.clip(1.0 - sim, 0.0, 2.0), name="class-prototypes", meta=meta)


def class_sums_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: float64 sums of the normalised rows per class (``state["inverse"]``)."""
    x = unit_rows(chunk, caller="class_prototypes")
    sums = np.zeros((int(state["n_classes"]), x.shape[1]), dtype=np.float64)
    np.add.at(sums, state["inverse"][lo : lo + len(x)], x)
    return {"sums": sums}


def own_centroid_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: cosine similarity (float64) of each row to its own class's centroid."""
    x = unit_rows(chunk, caller="class_prototypes")
    own = state["centroids"][state["inverse"][lo : lo + len(x)]]
    return {"sim": np.einsum("nd,nd->n", x.astype(np.float64), own.astype(np.float64))}


def random_scores(n_or_ids, *, seed: SeedLike = 0) -> Scores:
    """Uniform random scores: the baseline every metric must beat. Seeded; no other meaning."""
    if isinstance(n_or_ids, int | np.integer) and not isinstance(n_or_ids, bool):
        check_int(int(n_or_ids), caller="random_scores", name="n", low=1)
        ids = np.arange(int(n_or_ids), dtype=np.int64)
    else:
        ids = check_ids(n_or_ids, len(n_or_ids), caller="random_scores")
        if len(ids) == 0:
            raise InvalidInputError("random_scores: no ids given")
    rng = as_rng(seed, caller="random_scores")
    meta_seed = seed if isinstance(seed, int) else seed_int(rng)
    return Scores(ids=ids, values=rng.random(len(ids)), name="random", meta={"seed": meta_seed})

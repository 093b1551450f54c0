"""The clustering core: the one module that talks to faiss (thin wrappers, one conversion each).

* :func:`kmeans` / :func:`fit_centroids`: spherical k-means fitted on a sample of normalised rows;
* :func:`nearest_centroids` / :func:`nearest_similarity`: the top-1 or top-2 centroids of each row
  (inner product, so cosine similarity on normalised rows), one chunk at a time, on the fast kernel
  with an exact re-check (:mod:`selfprune.metrics._kernel`);
* :func:`knn_index`: an exact flat or an IVF index of rows, for nearest-neighbour queries.

Prototypes, pseudo-labels, semantic dedup, kNN density and the audit all go through here.
"""

from __future__ import annotations

import numpy as np

from selfprune.errors import require


def _faiss():
    return require("faiss", "faiss")


def normalize_rows(x: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """L2-normalise rows (a float32 copy, or ``x`` itself when ``inplace``); zero rows stay zero."""
    if not (inplace and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable):
        x = np.array(x, dtype=np.float32, copy=True, order="C")
    # in row blocks: a whole-array norm makes a temporary the size of ``x`` (the squares); each
    # row's norm is the same either way
    norms = np.empty((len(x), 1), dtype=np.float32)
    for a in range(0, len(x), 16_384):
        norms[a : a + 16_384] = np.linalg.norm(x[a : a + 16_384], axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def unit_rows(chunk, *, caller: str) -> np.ndarray:
    """A chunk validated (:func:`~selfprune._checks.check_embeddings`) and L2-normalised as float32.

    Where validation already made a float32 copy (a float16 chunk), that copy is normalised in
    place; the caller's array is never written.
    """
    from selfprune._checks import check_embeddings

    x = check_embeddings(chunk, caller=caller)
    return normalize_rows(x, inplace=not np.may_share_memory(x, chunk))


def kmeans(
    sample: np.ndarray,
    *,
    k: int,
    seed: int,
    niter: int = 20,
    max_points_per_centroid: int = 256,
    min_points_per_centroid: int = 39,
) -> tuple[np.ndarray, float]:
    """Spherical k-means of already-normalised rows: centroids (k, D) float32 and the final objective.

    faiss trains on at most ``k * max_points_per_centroid`` of the rows (it subsamples beyond);
    ``min_points_per_centroid`` only sets when faiss warns (39 is its own default).

    Training runs in the calling process only (the fit of *fit on a sample, then map*), so its
    fp32 rounding is the same on every engine; the map's assignments use the exact kernel.
    """
    faiss = _faiss()
    x = np.ascontiguousarray(sample, dtype=np.float32)
    km = faiss.Kmeans(
        x.shape[1],
        int(k),
        niter=niter,
        seed=int(seed),
        spherical=True,
        max_points_per_centroid=max_points_per_centroid,
        min_points_per_centroid=min_points_per_centroid,
        verbose=False,
    )
    km.train(x)
    obj = float(km.obj[-1]) if len(km.obj) else 0.0
    return np.ascontiguousarray(km.centroids, dtype=np.float32), obj


def fit_centroids(
    sample: np.ndarray,
    *,
    k: int,
    seed: int,
    niter: int = 20,
    max_points_per_centroid: int = 256,
) -> np.ndarray:
    """Spherical k-means centroids (k, D) of already-normalised rows (see :func:`kmeans`).

    A small sample is legitimate here (the caller chose k), so faiss's too-few-points warning,
    which it prints straight to stderr, is switched off.
    """
    return kmeans(
        sample, k=k, seed=seed, niter=niter, max_points_per_centroid=max_points_per_centroid,
        min_points_per_centroid=1,
    )[0]


def faiss_search(x: np.ndarray, centroids: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's exact fp32 inner-product search: similarities (n, top) float32, indices (n, top)."""
    faiss = _faiss()
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(x, dtype=np.float32), int(top))


def nearest_centroids(x: np.ndarray, centroids: np.ndarray, *, top: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` most similar centroids (by inner product) of each row of ``x``, most similar first.

    Returns similarities (n, top) float64 and centroid indices (n, top) int64; ``top`` may not
    exceed the number of centroids. For cosine similarity pass normalised rows and centroids.
    The products run on the kernel of :mod:`selfprune.metrics._kernel`: exact (float64) decisions
    and values by default, whatever the batch; ``set_kernel("fp32")`` gives faiss's fp32 search.
    """
    from selfprune.metrics._kernel import nearest

    return nearest(x, centroids, top=int(top))


def nearest_similarity(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity to, and index of, the nearest centroid for normalised rows of ``x``."""
    sims, idx = nearest_centroids(x, centroids, top=1)
    return sims[:, 0].astype(np.float64), idx[:, 0].astype(np.int64)


def nearest_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: cosine similarity to (``sim``, float64) and index of (``label``) the nearest
    of ``state["centroids"]`` for each row, after validating and L2-normalising the rows."""
    sim, label = nearest_similarity(unit_rows(chunk, caller="embeddings"), state["centroids"])
    return {"sim": sim, "label": label}


def knn_index(
    base: np.ndarray,
    *,
    metric: str = "ip",
    ivf_lists: int | None = None,
    train: np.ndarray | None = None,
    train_seed: int = 0,
    nprobe: int = 1,
):
    """An index holding the rows of ``base`` (float32, C-contiguous); query it with ``.search(q, k)``.

    ``metric``: ``"ip"`` (inner product, larger = nearer) or ``"l2"`` (squared distance).
    ``ivf_lists=None``: exact flat index. Otherwise an IVF index with that many lists, its coarse
    centroids trained on the rows ``train`` (seeded by ``train_seed``), searching ``nprobe`` lists.
    """
    faiss = _faiss()
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    d = base.shape[1]
    if ivf_lists is None:
        idx = faiss.IndexFlat(d, faiss_metric)
    else:
        quantizer = faiss.IndexFlat(d, faiss_metric)
        idx = faiss.IndexIVFFlat(quantizer, d, int(ivf_lists), faiss_metric)  # keeps the quantizer alive
        idx.cp.seed = int(train_seed)
        idx.train(np.ascontiguousarray(train, dtype=np.float32))
        idx.nprobe = int(nprobe)
    idx.add(np.ascontiguousarray(base, dtype=np.float32))
    return idx


def serialize_index(index) -> np.ndarray:
    """A faiss index as a uint8 array (fitted state that a worker can load from a file)."""
    return np.asarray(_faiss().serialize_index(index), dtype=np.uint8)


_LOADED: list = []  # (the serialized array, its index): the last one loaded in this process


def deserialize_index(data: np.ndarray):
    """The index of :func:`serialize_index`; the last one is kept, so a chunk loop loads it once."""
    if _LOADED and _LOADED[0][0] is data:  # held here, so its id cannot be reused
        return _LOADED[0][1]
    index = _faiss().deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
    _LOADED[:] = [(data, index)]
    return index


def forget_index() -> None:
    """Drop the index kept by :func:`deserialize_index` (its memory)."""
    _LOADED.clear()


__all__ = [
    "normalize_rows",
    "unit_rows",
    "kmeans",
    "fit_centroids",
    "nearest_centroids",
    "nearest_similarity",
    "nearest_chunk",
    "knn_index",
    "serialize_index",
    "deserialize_index",
    "forget_index",
]

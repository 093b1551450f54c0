"""Spherical k-means and nearest-centroid search with faiss (thin wrappers, one conversion)."""

from __future__ import annotations

import numpy as np

from selfprune.errors import require


def normalize_rows(x: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """L2-normalise rows (a float32 copy, or ``x`` itself when ``inplace``); zero rows stay zero."""
    if not (inplace and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable):
        x = np.array(x, dtype=np.float32, copy=True, order="C")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def fit_centroids(
    sample: np.ndarray,
    *,
    k: int,
    seed: int,
    niter: int = 20,
    max_points_per_centroid: int = 256,
) -> np.ndarray:
    """Spherical k-means centroids (k, D) of already-normalised rows, trained by faiss."""
    faiss = require("faiss", "faiss")
    x = np.ascontiguousarray(sample, dtype=np.float32)
    km = faiss.Kmeans(
        x.shape[1],
        int(k),
        niter=niter,
        seed=int(seed),
        spherical=True,
        max_points_per_centroid=max_points_per_centroid,
        verbose=False,
    )
    km.train(x)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def nearest_similarity(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity to, and index of, the nearest centroid for normalised rows of ``x``."""
    faiss = require("faiss", "faiss")
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return sims[:, 0].astype(np.float64), idx[:, 0].astype(np.int64)

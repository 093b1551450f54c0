"""Local streaming engine: apply a chunk function over an array or an embedding store.

A metric over N examples is written as *fit on a sample, then map over chunks*; this module is the
"map" half. Anything with ``iter_chunks()`` yielding float32 (n, D) arrays (the EmbeddingStore) or a
plain (N, D) array works; results are concatenated in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

DEFAULT_CHUNK_ROWS = 65_536


def iter_chunks(source, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Yield consecutive float32 C-contiguous row blocks of ``source``."""
    if hasattr(source, "iter_chunks"):
        yield from source.iter_chunks()
        return
    for lo in range(0, len(source), chunk_rows):
        yield np.ascontiguousarray(source[lo : lo + chunk_rows], dtype=np.float32)


def map_chunks(source, fn: Callable[[np.ndarray], np.ndarray], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """Concatenate ``fn(chunk)`` over the chunks of ``source``."""
    parts = [fn(chunk) for chunk in iter_chunks(source, chunk_rows)]
    return np.concatenate(parts) if parts else np.empty(0)


def sample_rows(source, n: int, seed: int) -> np.ndarray:
    """A uniform sample of ``n`` rows (sorted positions), read chunk by chunk."""
    total = len(source)
    rng = np.random.default_rng(seed)
    pos = np.sort(rng.choice(total, size=min(n, total), replace=False))
    if not hasattr(source, "iter_chunks"):
        return np.ascontiguousarray(source[pos], dtype=np.float32)
    out, offset = [], 0
    for chunk in source.iter_chunks():
        hit = pos[(pos >= offset) & (pos < offset + len(chunk))] - offset
        if len(hit):
            out.append(chunk[hit])
        offset += len(chunk)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

"""``embed``: run an encoder over a data source into a resumable :class:`EmbeddingStore`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from selfprune._checks import check_int
from selfprune.embed.base import Encoder
from selfprune.errors import InvalidInputError
from selfprune.io.sources import Dataset
from selfprune.io.store import DTYPES, EmbeddingStore


def embed(
    dataset: Dataset,
    encoder: Encoder,
    out: str | os.PathLike,
    *,
    chunk_rows: int = 8192,
    batch_size: int = 512,
    fit_rows: int = 20_000,
    seed: int = 0,
    dtype: str = "float32",
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddingStore:
    """Embed every example of ``dataset`` into a store at ``out``; resumes a killed run.

    ``dtype="float16"`` stores half-size chunks (rows are encoded in float32 and rounded once).
    Encoders that learn (``fit``) are fitted once on a seeded sample of ``fit_rows`` examples and
    their state saved in the store before any chunk is written, so a resumed run encodes with the
    very same state. ``progress(done_rows, total_rows)`` is called after each chunk.
    """
    check_int(chunk_rows, caller="embed", name="chunk_rows", low=1)
    check_int(batch_size, caller="embed", name="batch_size", low=1)
    if dtype not in DTYPES:
        raise InvalidInputError(f"embed: dtype must be one of {DTYPES}, got {dtype!r}")
    if len(dataset) == 0:
        raise InvalidInputError("embed: the data set is empty")
    if encoder.modality != dataset.modality and not (encoder.name == "pixels" and dataset.modality == "features"):
        raise InvalidInputError(
            f"embed: encoder {encoder.name!r} takes {encoder.modality} data, {dataset.name!r} is {dataset.modality}"
        )
    state_dir = Path(out) / "encoder"
    has_state = hasattr(encoder, "save_state") and hasattr(encoder, "load_state")
    resuming = has_state and state_dir.is_dir() and (Path(out) / "manifest.json").is_file()
    dim = _fit_or_reload(encoder, dataset, fit_rows, seed, state_dir if resuming else None)
    store = EmbeddingStore.create(
        out,
        ids=dataset.ids,
        dim=dim,
        encoder=encoder.name,
        params={**encoder.params(), "fit_rows": fit_rows, "seed": seed},
        source={"name": dataset.name, "fingerprint": dataset.fingerprint(), "modality": dataset.modality},
        chunk_rows=chunk_rows,
        labels=dataset.labels,
        dtype=dtype,
    )
    if has_state and not resuming:
        encoder.save_state(state_dir)  # type: ignore[attr-defined]
    missing = store.missing_chunks()
    done_rows = len(dataset) - sum(store.chunk_bounds(i)[1] - store.chunk_bounds(i)[0] for i in missing)
    if progress:
        progress(done_rows, len(dataset))
    for i in missing:
        lo, hi = store.chunk_bounds(i)
        parts = [encoder.encode(dataset.take(slice(b, min(b + batch_size, hi)))) for b in range(lo, hi, batch_size)]
        store.write_chunk(i, np.concatenate(parts))
        done_rows += hi - lo
        if progress:
            progress(done_rows, len(dataset))
    return EmbeddingStore(out)


def _fit_or_reload(encoder: Encoder, dataset: Dataset, fit_rows: int, seed: int, state_dir: Path | None) -> int:
    """Reload the saved state (resume) or fit on a seeded sample; return the output dimension."""
    if state_dir is not None:
        encoder.load_state(state_dir)  # type: ignore[attr-defined]
    else:
        rng = np.random.default_rng(seed)
        n_fit = min(fit_rows, len(dataset))
        pos = np.sort(rng.choice(len(dataset), size=n_fit, replace=False))
        encoder.fit(dataset.take(pos), seed=seed)
    return int(encoder.encode(dataset.take(slice(0, 1))).shape[1])

"""Semantic-dedup files: ``kept.parquet`` (ids), ``removed.parquet`` (id, duplicate_of, similarity)
and the eps sweep's ``eps_sweep.json``; meta in the Parquet key-value metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selfprune.io.atomic import write_json_atomic
from selfprune.io.tables import write_ids, write_parquet


def write_dedup(out: str | os.PathLike, result, *, meta: dict[str, Any] | None = None) -> list[Path]:
    """Write a :class:`~selfprune.metrics.semdedup.DedupResult` into folder ``out``: ``kept.parquet``
    (with its ``.txt`` twin) and ``removed.parquet``; ``meta`` is added to the result's meta."""
    import pyarrow as pa

    out = Path(out)
    full = {**result.meta, **(meta or {})}
    paths = list(write_ids(out / "kept.parquet", result.kept, meta=full))
    removed = pa.table(
        {
            "id": pa.array(result.removed),
            "duplicate_of": pa.array(result.duplicate_of),
            "similarity": pa.array(result.similarity, type=pa.float64()),
        }
    )
    paths.append(write_parquet(out / "removed.parquet", removed, full))
    return paths


def write_eps_sweep(path: str | os.PathLike, sweep) -> Path:
    """Write an :class:`~selfprune.metrics.semdedup.EpsSweep` as JSON (eps, removed counts and
    fractions, N, meta)."""
    write_json_atomic(
        path,
        {
            "eps": sweep.eps,
            "n_removed": sweep.n_removed,
            "fraction_removed": sweep.fraction_removed,
            "n_examples": sweep.n_examples,
            "meta": sweep.meta,
        },
    )
    return Path(path)

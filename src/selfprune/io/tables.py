"""Score and selection files: Parquet with ``id`` first, meta in the key-value metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from selfprune.errors import DataSourceError, InvalidInputError
from selfprune.io.atomic import atomic_path, write_text_atomic
from selfprune.scores import RESERVED_COLUMNS, Scores, ScoreTable


def write_scores(path: str | os.PathLike, scores: Scores | ScoreTable) -> Path:
    """Write a Scores or ScoreTable to Parquet atomically; returns the path."""
    import pyarrow.parquet as pq

    table = scores.to_table() if isinstance(scores, Scores) else scores
    with atomic_path(path) as tmp:
        pq.write_table(table.to_arrow(), tmp)
    return Path(path)


def read_scores(path: str | os.PathLike) -> ScoreTable:
    """Read a score Parquet file (ours, or any with ``id`` + float columns) into a ScoreTable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"score file not found: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"{path} is not a readable Parquet file ({exc})") from exc
    if "id" not in table.column_names:
        raise DataSourceError(f"{path} has no 'id' column; columns are {table.column_names}")
    md = (table.schema.metadata or {}).get(b"selfprune")
    meta = json.loads(md)["metrics"] if md else {}
    cols = {}
    for name in table.column_names:
        if name in RESERVED_COLUMNS:
            continue
        if pa.types.is_floating(table.schema.field(name).type) or pa.types.is_integer(table.schema.field(name).type):
            col = table.column(name)
            if col.null_count:
                raise DataSourceError(f"{path}: column {name!r} has {col.null_count} missing values")
            cols[name] = col.to_numpy().astype(np.float64)
    if not cols:
        raise DataSourceError(f"{path} has no numeric score columns")
    labels = table.column("label").to_numpy() if "label" in table.column_names else None
    try:
        return ScoreTable(table.column("id").to_numpy(), cols, meta, labels=labels)
    except InvalidInputError as exc:
        raise DataSourceError(f"{path}: {exc}") from exc


def write_ids(path: str | os.PathLike, ids: np.ndarray, meta: dict | None = None) -> list[Path]:
    """Write kept ids as Parquet (column ``id``) and, beside it, plain text (one id a line)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.table({"id": pa.array(np.asarray(ids))})
    if meta:
        table = table.replace_schema_metadata({b"selfprune": json.dumps(meta, default=str).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    txt = path.with_suffix(".txt")
    write_text_atomic(txt, "".join(f"{i}\n" for i in np.asarray(ids).tolist()))
    return [path, txt]


def read_ids(path: str | os.PathLike) -> np.ndarray:
    """Read ids from a Parquet file with an ``id`` column or a text file of one id per line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"id file not found: {path}")
    if path.suffix == ".txt":
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        try:
            return np.array([int(x) for x in lines], dtype=np.int64)
        except ValueError:
            return np.array(lines)
    try:
        table = pq.read_table(path, columns=["id"])
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise DataSourceError(f"{path}: cannot read an 'id' column ({exc})") from exc
    return table.column("id").to_numpy()

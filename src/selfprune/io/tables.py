"""Score and selection files: Parquet with ``id`` first, meta in the key-value metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import DataSourceError, InvalidInputError
from selfprune.io.atomic import atomic_path, write_text_atomic
from selfprune.scores import RESERVED_COLUMNS, Scores, ScoreTable


def _read_parquet(path: Path, what: str):
    """The whole Parquet file at ``path``, or a DataSourceError naming ``what`` is missing or broken."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataSourceError(f"{what} not found: {path}")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"{path} is not a readable Parquet file ({exc})") from exc


def write_parquet(path: str | os.PathLike, table, meta: dict[str, Any] | None = None) -> Path:
    """Write ``table`` (a pyarrow Table, or a mapping of column name to array) to Parquet atomically.

    ``meta`` goes into the file's key-value metadata as JSON under ``selfprune`` (values JSON cannot
    hold are written as their ``str``), replacing the table's own; ``None`` keeps the table's
    metadata as it is. Returns the path.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.table(dict(table))
    if meta is not None:
        table = table.replace_schema_metadata({b"selfprune": json.dumps(meta, default=str).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def write_scores(path: str | os.PathLike, scores: Scores | ScoreTable) -> Path:
    """Write a Scores or ScoreTable to Parquet atomically; returns the path."""
    table = scores.to_table() if isinstance(scores, Scores) else scores
    return write_parquet(path, table.to_arrow())


def read_scores(path: str | os.PathLike) -> ScoreTable:
    """Read a score Parquet file (ours, or any with ``id`` + float columns) into a ScoreTable."""
    import pyarrow as pa

    path = Path(path)
    table = _read_parquet(path, "score file")
    if "id" not in table.column_names:
        raise DataSourceError(f"{path} has no 'id' column; columns are {table.column_names}")
    md = (table.schema.metadata or {}).get(b"selfprune")
    try:
        meta = json.loads(md)["metrics"] if md else {}
    except (ValueError, KeyError, TypeError):
        raise DataSourceError(
            f"{path} is not a score file (its selfprune metadata has no 'metrics'; a kept-ids or "
            "pseudo-label file?)"
        ) from None
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
    pseudo = table.column("pseudo_label").to_numpy() if "pseudo_label" in table.column_names else None
    try:
        return ScoreTable(table.column("id").to_numpy(), cols, meta, labels=labels, pseudo_labels=pseudo)
    except InvalidInputError as exc:
        raise DataSourceError(f"{path}: {exc}") from exc


def write_ids(path: str | os.PathLike, ids: np.ndarray, meta: dict | None = None) -> list[Path]:
    """Write kept ids as Parquet (column ``id``) and, beside it, plain text (one id a line)."""
    import pyarrow as pa

    path = Path(path)
    write_parquet(path, {"id": pa.array(np.asarray(ids))}, meta or None)
    txt = path.with_suffix(".txt")
    write_text_atomic(txt, "".join(f"{i}\n" for i in np.asarray(ids).tolist()))
    return [path, txt]


def read_selection(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Kept ids (as :func:`read_ids`) and the settings ``select`` stored with them (``{}`` for text)."""
    import pyarrow.parquet as pq

    ids = read_ids(path)
    if Path(path).suffix == ".txt":
        return ids, {}
    md = (pq.read_schema(path).metadata or {}).get(b"selfprune")
    return ids, json.loads(md) if md else {}


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


def write_pseudo_labels(path: str | os.PathLike, pseudo) -> Path:
    """Write :class:`~selfprune.metrics.pseudo.PseudoLabels` as Parquet ``id, pseudo_label, confidence``.

    The settings (k, refinement, seed, encoder) go into the key-value metadata. Pseudo-labels kept
    for several heads add ``pseudo_label_1``, ... ``pseudo_label_<R-1>``: restarts 1 to R-1
    (``pseudo_label`` is restart 0).
    """
    import pyarrow as pa

    columns = {
        "id": pa.array(pseudo.ids),
        "pseudo_label": pa.array(pseudo.labels, type=pa.int64()),
        "confidence": pa.array(pseudo.confidence, type=pa.float64()),
    }
    if pseudo.restart_labels is not None:
        for r, labels in enumerate(pseudo.restart_labels[1:], start=1):
            columns[f"pseudo_label_{r}"] = pa.array(labels, type=pa.int64())
    return write_parquet(path, columns, {"pseudo_labels": {**pseudo.meta, "k": int(pseudo.k)}})


def read_pseudo_labels(path: str | os.PathLike):
    """Read a pseudo-label Parquet file (``id``, ``pseudo_label``, optional ``confidence``)."""
    import pyarrow as pa

    from selfprune.metrics.pseudo import PseudoLabels

    path = Path(path)
    table = _read_parquet(path, "pseudo-label file")
    missing = [c for c in ("id", "pseudo_label") if c not in table.column_names]
    if missing:
        raise DataSourceError(
            f"{path} is not a pseudo-label file: no {missing[0]!r} column; columns are {table.column_names}"
        )
    n_heads = 1
    while f"pseudo_label_{n_heads}" in table.column_names:
        n_heads += 1
    heads = []
    for name in ["pseudo_label"] + [f"pseudo_label_{r}" for r in range(1, n_heads)]:
        col = table.column(name)
        if col.null_count or not pa.types.is_integer(col.type):
            raise DataSourceError(f"{path}: {name!r} must be integers without missing values")
        head = col.to_numpy().astype(np.int64)
        if len(head) < 2:
            raise DataSourceError(f"{path}: needs at least 2 rows, got {len(head)}")
        if head.min() < 0:
            raise DataSourceError(f"{path}: {name!r} must be >= 0, got {head.min()}")
        if len(np.unique(head)) < 2:
            where = "" if name == "pseudo_label" else f" in {name!r}"
            raise DataSourceError(
                f"{path}: all rows share one pseudo-label{where}; training dynamics need at least 2 clusters"
            )
        heads.append(head)
    labels = heads[0]
    md = (table.schema.metadata or {}).get(b"selfprune")
    meta = json.loads(md).get("pseudo_labels", {}) if md else {}
    has_conf = "confidence" in table.column_names
    conf = table.column("confidence").to_numpy().astype(np.float64) if has_conf else np.ones(len(labels))
    k = max(int(meta.get("k", 0)), *(int(h.max()) + 1 for h in heads))
    try:
        from selfprune._checks import check_ids

        ids = check_ids(table.column("id").to_numpy(), len(labels), caller=str(path))
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    restart_labels = np.stack(heads) if n_heads > 1 else None
    return PseudoLabels(ids=ids, labels=labels, confidence=conf, k=k, meta=meta, restart_labels=restart_labels)

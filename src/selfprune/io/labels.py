"""Labels from the command line's one spelling: ``auto``, ``none``, a ``.npy`` file or a Parquet file.

Every command that takes ``--labels`` resolves it here, so the forms mean the same everywhere:

- ``auto``: the labels that travel with the input (the embedding store's, or the score file's
  ``label`` column), passed in by the caller as ``auto``; ``None`` when there are none;
- ``none``: no labels;
- ``path.npy``: one integer label per row, in the order of ``ids``;
- ``path.parquet``: columns ``id`` and ``label`` (or ``pseudo_label``: the file ``pseudo-labels``
  writes); rows are matched by id, ids without a row get ``-1`` (unlabelled), rows whose id is not
  among ``ids`` are ignored.

Labels come back as an (N,) int64 array aligned with ``ids``, or ``None``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from selfprune._checks import align_ids
from selfprune.errors import DataSourceError, InvalidInputError

FORMS = "auto, none, a .npy file or a Parquet file with id and label (or pseudo_label) columns"


def _as_int_labels(values: np.ndarray, n: int, *, caller: str, source: str) -> np.ndarray:
    if values.dtype == object or values.dtype.kind not in "biuf":
        raise InvalidInputError(f"{caller}: {source} holds {values.dtype} values; labels must be integers")
    if values.shape != (n,):
        raise InvalidInputError(f"{caller}: {source} holds labels of shape {values.shape} for {n} rows; want ({n},)")
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise InvalidInputError(f"{caller}: {source} holds non-integer labels; labels must be integers")
    return values.astype(np.int64)


def _load_npy(path: Path, n: int, *, caller: str) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InvalidInputError(f"{caller}: {path} holds Python objects; labels must be integers") from None
        raise DataSourceError(f"{caller}: {path} is not a readable .npy file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataSourceError(f"{caller}: {path} is not a readable .npy file ({type(exc).__name__})") from None
    if not isinstance(values, np.ndarray):  # an .npz archive under a .npy name
        values.close()
        raise DataSourceError(f"{caller}: {path} is an .npz archive, not a .npy array of labels")
    return _as_int_labels(values, n, caller=caller, source=str(path))


def _load_parquet(path: Path, ids: np.ndarray, *, caller: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"{caller}: {path} is not a readable Parquet file ({exc})") from None
    column = next((c for c in ("label", "pseudo_label") if c in table.column_names), None)
    if "id" not in table.column_names or column is None:
        have = table.column_names
        raise DataSourceError(f"{caller}: {path} needs columns id and label (or pseudo_label), has {have}")
    lid = table.column("id").to_numpy(zero_copy_only=False)
    lab = _as_int_labels(
        np.asarray(table.column(column).to_numpy(zero_copy_only=False)), len(lid), caller=caller, source=str(path)
    )
    at = align_ids(lid, ids, caller=caller, what=f"labels file {path}", allow_missing=True)
    if len(ids) and not np.any(at >= 0):
        raise InvalidInputError(f"{caller}: none of the ids in {path} is an id of the {len(ids)} rows")
    return np.where(at >= 0, lab[np.maximum(at, 0)] if len(lab) else -1, -1).astype(np.int64)


def load_labels(spec: str | os.PathLike | None, ids, *, caller: str, auto=None) -> np.ndarray | None:
    """Resolve a ``--labels`` value (see the module docstring) to (N,) int64 labels aligned with ``ids``.

    ``spec`` ``None`` means ``auto``. ``auto`` is what ``auto`` resolves to: labels already aligned
    with ``ids``, or ``None``. Bad files raise a one-line :class:`InvalidInputError` or
    :class:`DataSourceError` naming ``caller``.
    """
    ids = np.asarray(ids)
    text = "auto" if spec is None else os.fspath(spec)
    if text == "none":
        return None
    if text == "auto":
        return None if auto is None else _as_int_labels(np.asarray(auto), len(ids), caller=caller, source="labels")
    path = Path(text)
    if not path.is_file():
        raise DataSourceError(f"{caller}: --labels must be {FORMS}; {text!r} is none of these (no such file)")
    if path.suffix == ".npy":
        return _load_npy(path, len(ids), caller=caller)
    return _load_parquet(path, ids, caller=caller)

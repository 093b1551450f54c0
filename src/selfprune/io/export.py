"""Write the pruned data itself, not only its ids: Parquet, JSONL, an image folder or an HF dataset.

:func:`export` takes a :class:`~selfprune.io.sources.Dataset` and the kept ids and writes every
kept example with its id, its label (and class name) when the source has them, and the example
itself: images as PNG bytes (Parquet: an ``image`` struct column ``{bytes, path}``, the layout
Hugging Face ``datasets`` reads as an ``Image`` feature; JSONL: base64 PNG), vectors as a list
column ``features``, texts as ``text``. Rows follow the source's order. The selection's settings
travel with the data: in the Parquet key-value metadata, in ``selfprune.json`` beside an image
folder's class folders, in ``PATH.meta.json`` beside a JSONL file (whose every line stays one
example), in the ``datasets`` info's description of an HF folder. Every output is written
atomically; a folder is never merged into an existing one.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import kept_indices
from selfprune.errors import InvalidInputError
from selfprune.io.atomic import atomic_dir, atomic_path, write_json_atomic
from selfprune.io.sources import Dataset
from selfprune.io.tables import write_parquet

FORMATS = ("parquet", "jsonl", "imagefolder", "hf")
_BATCH = 1024


def kept_positions(source: Dataset, kept_ids) -> np.ndarray:
    """Sorted positions in ``source`` of the kept ids; every kept id must belong to the source."""
    return kept_indices(source.ids, kept_ids, caller="export")


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
    return buf.getvalue()


def _batches(source: Dataset, pos: np.ndarray):
    for lo in range(0, len(pos), _BATCH):
        at = pos[lo : lo + _BATCH]
        yield at, source.take(at)


def _common(source: Dataset, at: np.ndarray) -> dict[str, Any]:
    cols: dict[str, Any] = {"id": source.ids[at]}
    if source.labels is not None:
        cols["label"] = source.labels[at]
        if source.classes is not None:
            cols["class_name"] = [source.classes[int(c)] for c in source.labels[at]]
    return cols


def format_of(out: str | os.PathLike) -> str:
    """The format ``out`` names: ``.parquet``, ``.jsonl``, ``.hf`` (a datasets folder), no suffix (images)."""
    suffix = Path(out).suffix.lower()
    by_suffix = {".parquet": "parquet", ".jsonl": "jsonl", "": "imagefolder", ".hf": "hf"}
    if suffix not in by_suffix:
        raise InvalidInputError(f"export: cannot tell the format from {out}; give format= ({', '.join(FORMATS)})")
    return by_suffix[suffix]


def export(source: Dataset, kept_ids, out: str | os.PathLike, *, format: str | None = None,
           meta: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Write the kept examples of ``source`` to ``out`` in ``format``; returns ``out``.

    ``format=None`` reads it from ``out``: ``.parquet``, ``.jsonl``, or no suffix for an image folder.
    """
    format = format_of(out) if format is None else format
    if format not in FORMATS:
        raise InvalidInputError(f"export: format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "imagefolder" and source.modality != "image":
        raise InvalidInputError(f"export: an image folder needs image data; {source.name} holds {source.modality}")
    pos = kept_positions(source, kept_ids)
    meta = {"source": source.name, "n_source": len(source), "n_kept": len(pos), **(meta or {})}
    out = Path(out)
    if format == "parquet":
        return _parquet(source, pos, out, meta)
    if format == "jsonl":
        return _jsonl(source, pos, out, meta)
    if format == "hf":
        return _hf(source, pos, out, meta)
    return _imagefolder(source, pos, out, meta)


def _parquet(source: Dataset, pos: np.ndarray, out: Path, meta: dict[str, Any]) -> Path:
    import pyarrow as pa

    parts = []
    for at, raw in _batches(source, pos):
        cols = _common(source, at)
        if source.modality == "image":
            cols["image"] = pa.array([{"bytes": _png(im), "path": None} for im in raw],
                                     type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))  # fmt: skip
        elif source.modality == "text":
            cols["text"] = list(raw)
        else:
            arr = np.asarray(raw)
            cols["features"] = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])
        parts.append(pa.table(cols))
    return write_parquet(out, pa.concat_tables(parts), meta)


def _hf(source: Dataset, pos: np.ndarray, out: Path, meta: dict[str, Any]) -> Path:
    """A ``save_to_disk`` folder built from the Parquet layout (images as ``Image``, classes as ``ClassLabel``)."""
    import tempfile

    from selfprune.integrations.hf import _datasets

    datasets = _datasets()
    with tempfile.TemporaryDirectory(
        prefix=".selfprune-export-", dir=out.parent if out.parent.exists() else None
    ) as scratch:
        _parquet(source, pos, Path(scratch) / "rows.parquet", meta)
        ds = datasets.Dataset.from_parquet(str(Path(scratch) / "rows.parquet"), cache_dir=str(Path(scratch) / "cache"))
        if source.modality == "image":
            ds = ds.cast_column("image", datasets.Image())
        if source.classes is not None:
            ds = ds.cast_column("label", datasets.ClassLabel(names=list(source.classes)))
        ds.info.description = json.dumps(meta, default=str)
        with atomic_dir(out) as tmp:
            ds.save_to_disk(str(tmp))
    return out


def _jsonl(source: Dataset, pos: np.ndarray, out: Path, meta: dict[str, Any]) -> Path:
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for at, raw in _batches(source, pos):
            common = _common(source, at)
            for j in range(len(at)):
                rec = {k: (v[j].item() if isinstance(v, np.ndarray) else v[j]) for k, v in common.items()}
                if source.modality == "image":
                    rec["image_png_base64"] = base64.b64encode(_png(raw[j])).decode("ascii")
                elif source.modality == "text":
                    rec["text"] = raw[j]
                else:
                    rec["features"] = np.asarray(raw[j], dtype=np.float64).tolist()
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    write_json_atomic(out.with_name(out.name + ".meta.json"), meta)
    return out


def _imagefolder(source: Dataset, pos: np.ndarray, out: Path, meta: dict[str, Any]) -> Path:
    with atomic_dir(out) as tmp:
        for at, raw in _batches(source, pos):
            for j, i in enumerate(at.tolist()):
                if source.labels is None:
                    folder = tmp
                elif source.classes is not None:
                    folder = tmp / source.classes[int(source.labels[i])].replace("/", "-")
                else:
                    folder = tmp / str(source.labels[i].item())
                folder.mkdir(exist_ok=True)
                (folder / f"{source.ids[i]}.png").write_bytes(_png(raw[j]))
        (tmp / "selfprune.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return out

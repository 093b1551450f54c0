"""Hugging Face ``datasets`` in and out: a ``Dataset``/``DatasetDict``/``save_to_disk`` folder as a
selfprune source, and the pruned set written back with ``Dataset.select`` and ``save_to_disk``.

Ids: the ``id`` column when the dataset has one, else the row positions ``0..N-1``.

```python
import datasets
from selfprune.integrations.hf import from_hf, select_kept, save_kept

source = from_hf(datasets.load_from_disk("data/reviews"))   # or from_hf("data/reviews")
...                                                         # embed, score, select as usual
pruned = select_kept(hf_dataset, kept_ids)                  # a datasets.Dataset of the kept rows
save_kept(hf_dataset, kept_ids, "data/reviews-pruned")      # atomically, via save_to_disk
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import DataSourceError, InvalidInputError, MissingExtraError
from selfprune.io.atomic import atomic_dir
from selfprune.io.sources import Dataset, stack_images

MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def _datasets():
    try:
        import datasets
    except ImportError as exc:
        raise MissingExtraError("Hugging Face datasets are read with the datasets package: pip install "
                                "'selfprune[hf]'") from exc  # fmt: skip
    return datasets


def is_hf_folder(path: str | os.PathLike) -> bool:
    """A folder that ``datasets.save_to_disk`` wrote (a ``Dataset`` or a ``DatasetDict``)."""
    return Path(path).is_dir() and any((Path(path) / m).is_file() for m in MARKERS)


def _one(obj: Any, split: str):
    datasets = _datasets()
    if isinstance(obj, str | os.PathLike):
        try:
            obj = datasets.load_from_disk(str(obj))
        except (FileNotFoundError, ValueError) as exc:
            raise DataSourceError(f"{obj}: not a Hugging Face dataset folder ({exc})") from exc
    if isinstance(obj, datasets.DatasetDict):
        if split not in obj:
            raise DataSourceError(f"the DatasetDict has no split {split!r}; it has {sorted(obj)}")
        obj = obj[split]
    if not isinstance(obj, datasets.Dataset):
        kind = type(obj).__name__
        raise InvalidInputError(f"from_hf: expected a datasets.Dataset, DatasetDict or folder, got {kind}")
    return obj


def hf_ids(ds) -> np.ndarray:
    """The dataset's ids: its ``id`` column, or the row positions."""
    return np.asarray(ds["id"]) if "id" in ds.column_names else np.arange(len(ds), dtype=np.int64)


def from_hf(obj: Any, *, split: str = "train", image_column: str = "image", text_column: str = "text",
            label_column: str = "label") -> Dataset:  # fmt: skip
    """A selfprune :class:`~selfprune.io.sources.Dataset` over a Hugging Face dataset (read lazily)."""
    from selfprune._checks import check_ids, check_labels

    datasets = _datasets()
    ds = _one(obj, split)
    name = getattr(ds.info, "dataset_name", None) or (Path(obj).name if isinstance(obj, str | os.PathLike) else "hf")
    caller = f"from_hf({name})"
    try:
        ids = check_ids(hf_ids(ds), len(ds), caller=caller)
        labels = classes = None
        if label_column in ds.column_names:
            labels = check_labels(np.asarray(ds[label_column]), len(ds), caller=caller)
            feature = ds.features[label_column]
            if isinstance(feature, datasets.ClassLabel):
                classes = tuple(feature.names)
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    if image_column in ds.column_names and isinstance(ds.features[image_column], datasets.Image):
        column = ds.select_columns([image_column])

        def reader(positions) -> np.ndarray:
            return stack_images([np.asarray(column[int(i)][image_column]) for i in positions], name)

        return Dataset(name, ids, list(range(len(ds))), "image", labels, classes, reader)
    if text_column in ds.column_names:
        return Dataset(name, ids, list(ds[text_column]), "text", labels, classes)
    vector = next((c for c in ds.column_names if isinstance(ds.features[c], datasets.Sequence | list)), None)
    if vector is None:
        raise DataSourceError(f"{name}: no {image_column!r} image column, {text_column!r} column or vector column")
    return Dataset(name, ids, np.asarray(ds.with_format("numpy")[vector], dtype=np.float32), "features", labels,
                   classes)  # fmt: skip


def select_kept(obj: Any, kept_ids, *, split: str = "train"):
    """The kept rows of a Hugging Face dataset, in its order (``Dataset.select``)."""
    from selfprune._checks import kept_indices

    ds = _one(obj, split)
    return ds.select(kept_indices(hf_ids(ds), kept_ids, caller="select_kept").tolist())


def save_kept(obj: Any, kept_ids, out: str | os.PathLike, *, split: str = "train") -> Path:
    """Write the kept rows with ``save_to_disk`` into the new folder ``out``, atomically."""
    pruned = select_kept(obj, kept_ids, split=split)
    with atomic_dir(out) as tmp:
        pruned.save_to_disk(str(tmp))
    return Path(out)

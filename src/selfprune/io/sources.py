"""Data sources with stable example ids. Labels are always optional.

``load_source`` understands built-in names (``fashion-mnist``, ``digits``), ``.npy``/``.npz``
arrays, Parquet files (a feature/embedding column, an ``image`` struct column of encoded bytes or a
``text`` column, plus optional ``id``/``label``), image folders (class sub-folders, or flat and
unlabelled), Hugging Face ``save_to_disk`` folders and JSONL text. Image folders are read lazily, a batch
at a time, so a data set never needs to fit in memory.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfprune._checks import check_ids, check_labels
from selfprune.errors import DataSourceError, InvalidInputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
BUILTINS = ("fashion-mnist", "digits")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Examples with ids and optional labels.

    ``items`` is an array (images (N, H, W[, C]) uint8, or features (N, D)) or a list (texts, or
    image paths when ``reader`` is set: ``reader(paths) -> uint8 array``).
    """

    name: str
    ids: np.ndarray
    items: np.ndarray | Sequence
    modality: str  # "image", "text" or "features"
    labels: np.ndarray | None = None
    classes: tuple[str, ...] | None = None
    reader: Callable[[Sequence], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, positions) -> np.ndarray | list:
        """Raw examples at ``positions`` (a slice or an index array)."""
        if isinstance(positions, slice):
            chunk = self.items[positions]
        elif isinstance(self.items, np.ndarray):
            chunk = self.items[np.asarray(positions)]
        else:
            chunk = [self.items[i] for i in np.asarray(positions).tolist()]
        if self.reader is not None:
            return self.reader(chunk)
        return chunk

    def iter_batches(self, batch_size: int, start: int = 0) -> Iterator[tuple[int, np.ndarray | list]]:
        """Yield ``(offset, raw batch)`` from position ``start`` on."""
        for lo in range(start, len(self), batch_size):
            yield lo, self.take(slice(lo, min(lo + batch_size, len(self))))

    def fingerprint(self) -> str:
        """A cheap identity of the source (name, size, ids) for resume checks."""
        import hashlib

        h = hashlib.sha256(f"{self.name}|{len(self)}|{self.modality}".encode())
        h.update(
            np.ascontiguousarray(self.ids).astype(str).tobytes() if self.ids.dtype.kind == "U" else self.ids.tobytes()
        )
        return h.hexdigest()[:16]


def load_source(
    source: str | os.PathLike,
    *,
    split: str = "train",
    text_field: str = "text",
    image_size: tuple[int, int] | None = None,
    skip_corrupt: bool = False,
) -> Dataset:
    """Open a data source by built-in name or path. See the module docstring for formats."""
    spec = str(source)
    if spec in BUILTINS:
        if split not in ("train", "test"):
            raise InvalidInputError(f"load_source: split must be 'train' or 'test', got {split!r}")
        return _fashion_mnist(split) if spec == "fashion-mnist" else _digits(split)
    path = Path(spec)
    if not path.exists():
        raise DataSourceError(
            f"load_source: {spec!r} is neither a built-in ({', '.join(BUILTINS)}) nor an existing path"
        )
    if path.is_dir():
        from selfprune.integrations.hf import from_hf, is_hf_folder

        if is_hf_folder(path):
            return from_hf(path, split=split)
        return _image_folder(path, image_size=image_size, skip_corrupt=skip_corrupt)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _from_arrays(path.stem, _load_npy(path), None, None)
    if suffix == ".npz":
        return _npz(path)
    if suffix == ".parquet":
        return _parquet(path)
    if suffix in (".jsonl", ".json"):
        return _jsonl(path, text_field=text_field)
    raise DataSourceError(
        f"load_source: unsupported file type {suffix!r} for {path}; use .npy, .npz, .parquet, .jsonl or a folder"
    )


# ---------------------------------------------------------------- built-ins


def fashion_mnist_dir() -> Path | None:
    """Where the Debian package's files are: system-wide, or unpacked into the cache."""
    cache = Path(os.environ.get("SELFPRUNE_CACHE", Path.home() / ".cache" / "selfprune"))
    candidates = [
        os.environ.get("SELFPRUNE_FASHION_MNIST"),
        "/usr/share/datasets/fashion-mnist",
        cache / "deb/usr/share/datasets/fashion-mnist",
    ]
    for c in candidates:
        if c and (Path(c) / "train-images-idx3-ubyte.gz").is_file():
            return Path(c)
    return None


def read_idx(path: Path, *, expected_dims: int) -> np.ndarray:
    """Read a gzipped idx file (the MNIST format): magic, dims, then uint8 data."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataSourceError(f"{path} is not a readable gzip idx file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expected_dims:
        raise DataSourceError(f"{path}: not a uint8 idx file with {expected_dims} dimension(s)")
    dims = np.frombuffer(raw, dtype=">u4", count=expected_dims, offset=4).astype(int)
    offset = 4 + 4 * expected_dims
    if len(raw) - offset != int(np.prod(dims)):
        raise DataSourceError(f"{path}: truncated ({len(raw) - offset} bytes for shape {tuple(dims)})")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _fashion_mnist(split: str) -> Dataset:
    folder = fashion_mnist_dir()
    if folder is None:
        raise DataSourceError(
            "fashion-mnist is not installed: run `make data` (installs the Debian package "
            "dataset-fashion-mnist) or set SELFPRUNE_FASHION_MNIST to its folder"
        )
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", expected_dims=3)
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", expected_dims=1).astype(np.int64)
    return Dataset(
        name=f"fashion-mnist-{split}",
        ids=np.arange(len(images), dtype=np.int64),
        items=images,
        modality="image",
        labels=labels,
        classes=FASHION_MNIST_CLASSES,
    )


def _digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(d.images * 16, 0, 255).astype(np.uint8)
    # a fixed, documented split: every fifth example is test
    idx = np.arange(len(images))
    mask = idx % 5 == 4 if split == "test" else idx % 5 != 4
    return Dataset(
        name=f"digits-{split}",
        ids=idx[mask].astype(np.int64),
        items=images[mask],
        modality="image",
        labels=d.target[mask].astype(np.int64),
        classes=tuple(str(c) for c in range(10)),
    )


# ---------------------------------------------------------------- arrays and tables


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataSourceError(f"{path} is not a readable .npy array ({exc})") from exc


def _from_arrays(name: str, x: np.ndarray, labels, ids) -> Dataset:
    caller = f"load_source({name})"
    if x.ndim < 2 or len(x) == 0:
        raise DataSourceError(f"{caller}: expected a non-empty array of 2 or more dimensions, got shape {x.shape}")
    modality = "features" if x.ndim == 2 else "image"
    if modality == "image" and x.dtype != np.uint8:
        raise DataSourceError(f"{caller}: image arrays must be uint8 (N, H, W[, C]), got {x.dtype}")
    try:
        ids = check_ids(ids, len(x), caller=caller)
        labels = None if labels is None else check_labels(labels, len(x), caller=caller)
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    return Dataset(name=name, ids=ids, items=x, modality=modality, labels=labels)


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise DataSourceError(f"{path} is not a readable .npz archive ({exc})") from exc
    key = next((k for k in ("X", "x", "images", "embeddings", "features") if k in arrays), None)
    if key is None:
        raise DataSourceError(f"{path}: no array named X, images, embeddings or features (has {sorted(arrays)})")
    labels = next((arrays[k] for k in ("y", "labels", "label") if k in arrays), None)
    return _from_arrays(path.stem, arrays[key], labels, arrays.get("ids"))


def parquet_vectors(path: Path, column: str | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Read (vectors, ids, labels) from Parquet: a list/fixed-size-list column or numeric columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"{path} is not a readable Parquet file ({exc})") from exc
    names = table.column_names
    ids = table.column("id").to_numpy() if "id" in names else None
    labels = table.column("label").to_numpy() if "label" in names else None
    list_cols = [
        n
        for n in names
        if pa.types.is_list(table.schema.field(n).type)
        or pa.types.is_fixed_size_list(table.schema.field(n).type)
        or pa.types.is_large_list(table.schema.field(n).type)
    ]
    if column is not None:
        if column not in names:
            raise DataSourceError(f"{path}: no column {column!r}; columns are {names}")
        list_cols = [column]
    if list_cols:
        col = table.column(list_cols[0]).combine_chunks()
        if col.null_count:
            raise DataSourceError(f"{path}: column {list_cols[0]!r} has {col.null_count} missing rows")
        lengths = np.asarray(col.value_lengths()) if hasattr(col, "value_lengths") else None
        if lengths is not None and len(lengths) and (lengths != lengths[0]).any():
            raise DataSourceError(f"{path}: rows of {list_cols[0]!r} have different lengths")
        flat = col.flatten().to_numpy(zero_copy_only=False)
        vectors = np.asarray(flat).reshape(len(col), -1)
    else:
        numeric = [
            n
            for n in names
            if n not in ("id", "label")
            and (pa.types.is_floating(table.schema.field(n).type) or pa.types.is_integer(table.schema.field(n).type))
        ]
        if not numeric:
            raise DataSourceError(f"{path}: no list column and no numeric feature columns")
        vectors = np.column_stack([table.column(n).to_numpy() for n in numeric])
    return vectors, ids, labels


def _parquet(path: Path) -> Dataset:
    """Vectors (``parquet_vectors``), or the image layout (a struct column ``image {bytes, path}``,
    as Hugging Face ``datasets`` and ``selfprune export`` write it), or a string column ``text``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"{path} is not a readable Parquet file ({exc})") from exc
    image = next((f.name for f in schema if pa.types.is_struct(f.type) and f.type.get_field_index("bytes") >= 0), None)
    text = "text" if "text" in schema.names and pa.types.is_string(schema.field("text").type) else None
    if image is None and text is None:
        vectors, ids, labels = parquet_vectors(path)
        return _from_arrays(path.stem, vectors.astype(np.float32), labels, ids)
    column = image or text
    wanted = [c for c in (column, "id", "label") if c in schema.names]
    table = pq.read_table(path, columns=wanted)
    caller = f"load_source({path.name})"
    values = table.column(column).to_pylist()
    if image is not None:
        values = [v["bytes"] if v else None for v in values]
    if any(v is None for v in values):
        raise DataSourceError(f"{path}: column {column!r} has missing rows")
    try:
        ids = check_ids(table.column("id").to_numpy() if "id" in wanted else None, len(values), caller=caller)
        labels = None if "label" not in wanted else check_labels(table.column("label").to_numpy(), len(values),
                                                                 caller=caller)  # fmt: skip
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    if text is not None and image is None:
        return Dataset(name=path.stem, ids=ids, items=values, modality="text", labels=labels)
    return Dataset(name=path.stem, ids=ids, items=values, modality="image", labels=labels, reader=_decode_png_bytes)


def _decode_png_bytes(blobs: Sequence[bytes]) -> np.ndarray:
    """Encoded images (PNG, JPEG...) -> one uint8 array; every image must have the same shape."""
    import io

    from PIL import Image

    arrays = []
    for b in blobs:
        try:
            with Image.open(io.BytesIO(b)) as im:
                arrays.append(np.asarray(im))
        except OSError as exc:
            raise DataSourceError(f"corrupt encoded image in a Parquet image column ({exc})") from None
    return stack_images(arrays, "a Parquet image column")


def stack_images(arrays: Sequence[np.ndarray], where: str) -> np.ndarray:
    """Decoded images -> one uint8 array; images of different shapes are refused, naming ``where``."""
    if len({a.shape for a in arrays}) > 1:
        raise DataSourceError(f"images of different shapes in {where}; resize them first")
    return np.stack(arrays).astype(np.uint8, copy=False)


def _jsonl(path: Path, *, text_field: str) -> Dataset:
    texts, ids, labels = [], [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                raise DataSourceError(f"{path}:{lineno}: row needs a string field {text_field!r}")
            texts.append(row[text_field])
            ids.append(row.get("id", len(ids)))
            labels.append(row.get("label"))
    if not texts:
        raise DataSourceError(f"{path}: no rows")
    has_labels = [lab is not None for lab in labels]
    if any(has_labels) and not all(has_labels):
        raise DataSourceError(f"{path}: 'label' is present on some rows but not all")
    try:
        id_arr = check_ids(np.asarray(ids), len(texts), caller=f"load_source({path.name})")
        lab_arr = (
            check_labels(np.asarray(labels), len(texts), caller=f"load_source({path.name})")
            if all(has_labels)
            else None
        )
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    return Dataset(name=path.stem, ids=id_arr, items=texts, modality="text", labels=lab_arr)


# ---------------------------------------------------------------- image folders


def _image_folder(root: Path, *, image_size, skip_corrupt: bool) -> Dataset:
    try:
        from PIL import Image
    except ImportError as exc:
        from selfprune.errors import MissingExtraError

        raise MissingExtraError("image folders need Pillow: pip install 'selfprune[vision]'") from exc
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataSourceError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    good: list[Path] = []
    for p in files:
        try:
            with Image.open(p) as im:
                im.verify()
        except Exception as exc:
            if not skip_corrupt:
                raise DataSourceError(
                    f"corrupt image {p} ({type(exc).__name__}); fix or remove it, or pass --skip-corrupt"
                ) from None
            warnings.warn(f"skipping corrupt image {p}", stacklevel=2)
            continue
        good.append(p)
    if not good:
        raise DataSourceError(f"{root}: every image is corrupt")
    rel = [p.relative_to(root) for p in good]
    nested = [r for r in rel if len(r.parts) > 1]
    if nested and len(nested) != len(rel):
        raise DataSourceError(f"{root}: mix of images in class sub-folders and at the top level")
    labels = classes = None
    if nested:
        classes = tuple(sorted({r.parts[0] for r in rel}))
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[r.parts[0]] for r in rel], dtype=np.int64)
    if image_size is None:
        with Image.open(good[0]) as im:
            image_size = (im.height, im.width)

    def reader(paths: Sequence[Path]) -> np.ndarray:
        out = np.empty((len(paths), image_size[0], image_size[1], 3), dtype=np.uint8)
        for j, p in enumerate(paths):
            try:
                with Image.open(p) as im:
                    im = im.convert("RGB")
                    if (im.height, im.width) != tuple(image_size):
                        im = im.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
                    out[j] = np.asarray(im)
            except OSError as exc:
                raise DataSourceError(f"corrupt image {p} ({exc})") from None
        return out

    return Dataset(
        name=root.name,
        ids=np.array([r.as_posix() for r in rel]),
        items=good,
        modality="image",
        labels=labels,
        classes=classes,
        reader=reader,
    )

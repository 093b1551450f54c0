"""The embedding store: a folder of fixed-size float32 (or float16) chunks plus a JSON manifest.

::

    store/
      manifest.json      encoder, its parameters, source fingerprint, n, dim, dtype, chunk_rows, chunks done
      ids.npy            example ids, in order (int64 or unicode)
      labels.npy         optional class labels
      encoder/           optional fitted encoder state (PCA basis, contrastive weights)
      chunk-00000.npy    rows [0, chunk_rows) ...

Each chunk is written atomically and then recorded in the manifest (also atomic), so a killed run
leaves a valid store that ``embed`` resumes, recomputing only missing chunks; the result is
identical to an uninterrupted run. Reading streams chunk by chunk (memory-mapped).

``dtype="float16"`` halves the store on disk (10M x 384 is 7.7 GB); readers get float32 rows one
chunk at a time, so nothing ever holds the whole store in float32.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from selfprune._checks import check_embeddings
from selfprune.errors import DataSourceError, InvalidInputError, StoreError
from selfprune.io.atomic import atomic_path, write_json_atomic

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DTYPES = ("float32", "float16")


class EmbeddingStore:
    """Open an existing store folder (read side). Create one with :meth:`create`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        mpath = self.path / MANIFEST
        if not mpath.is_file():
            raise StoreError(f"{self.path} is not an embedding store (no {MANIFEST})")
        try:
            self.manifest: dict[str, Any] = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{mpath} is corrupt ({exc.msg})") from exc
        for key in ("n", "dim", "chunk_rows", "chunks_done", "encoder"):
            if key not in self.manifest:
                raise StoreError(f"{mpath} lacks {key!r}")
        try:
            self.ids = np.load(self.path / "ids.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.path}/ids.npy is missing or corrupt ({exc})") from exc
        lab = self.path / "labels.npy"
        self.labels = np.load(lab, allow_pickle=False) if lab.is_file() else None

    # -------------------------------------------------------------- create / write

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        ids: np.ndarray,
        dim: int,
        encoder: str,
        params: dict[str, Any],
        source: dict[str, Any],
        chunk_rows: int = 8192,
        labels: np.ndarray | None = None,
        dtype: str = "float32",
    ) -> EmbeddingStore:
        """Create a store, or reopen a matching unfinished one to resume it.

        Raises StoreError when the folder holds a store made by a different encoder, parameters
        or source (never overwrites someone else's embeddings).
        """
        path = Path(path)
        if dtype not in DTYPES:
            raise InvalidInputError(f"store dtype must be one of {DTYPES}, got {dtype!r}")
        header = {
            "format": FORMAT_VERSION,
            "encoder": encoder,
            "params": params,
            "source": source,
            "n": int(len(ids)),
            "dim": int(dim),
            "chunk_rows": int(chunk_rows),
        }
        if dtype != "float32":  # stores written before float16 existed have no dtype: float32
            header["dtype"] = dtype
        mpath = path / MANIFEST
        if mpath.is_file():
            store = cls(path)
            old = {k: store.manifest.get(k) for k in header}
            if json.loads(json.dumps(old)) != json.loads(json.dumps(header, default=str)) or store.dtype != dtype:
                diff = sorted(
                    {k for k in header if json.dumps(old[k], default=str) != json.dumps(header[k], default=str)}
                    | ({"dtype"} if store.dtype != dtype else set())
                )
                raise StoreError(
                    f"{path} holds a different embedding run (differs in {', '.join(diff)}); "
                    "choose another --out or delete it"
                )
            return store
        if path.exists() and any(p.name != "encoder" for p in path.iterdir()):
            raise StoreError(f"{path} exists and is not an embedding store; choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        with atomic_path(path / "ids.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(ids), allow_pickle=False)
        if labels is not None:
            with atomic_path(path / "labels.npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(labels), allow_pickle=False)
        write_json_atomic(mpath, {**header, "chunks_done": [], "complete": False})
        return cls(path)

    @classmethod
    def from_array(
        cls,
        path: str | os.PathLike,
        x: np.ndarray,
        *,
        ids: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        chunk_rows: int = 8192,
        dtype: str = "float32",
        encoder: str = "given",
        params: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
    ) -> EmbeddingStore:
        """Write an (N, D) array (in memory or a memory map) as a store, chunk by chunk; resumable
        like :meth:`create` (a rerun writes only the missing chunks)."""
        ids = np.arange(len(x), dtype=np.int64) if ids is None else np.asarray(ids)
        store = cls.create(
            path, ids=ids, dim=int(x.shape[1]), encoder=encoder, params=params or {},
            source=source or {"name": "array", "n": int(len(x))}, chunk_rows=chunk_rows, labels=labels,
            dtype=dtype,
        )  # fmt: skip
        for i in store.missing_chunks():
            store.write_chunk(i, np.asarray(x[slice(*store.chunk_bounds(i))]))
        return cls(path)

    @property
    def n_chunks(self) -> int:
        return -(-self.manifest["n"] // self.manifest["chunk_rows"])

    def chunk_bounds(self, i: int) -> tuple[int, int]:
        lo = i * self.manifest["chunk_rows"]
        return lo, min(lo + self.manifest["chunk_rows"], self.manifest["n"])

    def missing_chunks(self) -> list[int]:
        done = set(self.manifest["chunks_done"])
        return [i for i in range(self.n_chunks) if i not in done or not self._chunk_path(i).is_file()]

    def write_chunk(self, i: int, values: np.ndarray) -> None:
        """Atomically write chunk ``i`` and record it in the manifest."""
        lo, hi = self.chunk_bounds(i)
        values = check_embeddings(values, caller="EmbeddingStore.write_chunk")
        if values.shape != (hi - lo, self.manifest["dim"]):
            raise StoreError(f"chunk {i} has shape {values.shape}, expected {(hi - lo, self.manifest['dim'])}")
        if self.dtype != np.float32:
            limit = float(np.finfo(self.dtype).max)
            if np.abs(values).max() > limit:
                raise StoreError(f"chunk {i} overflows {self.dtype} (values beyond +-{limit:g}); use a float32 store")
            values = values.astype(self.dtype)
        with atomic_path(self._chunk_path(i)) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, values, allow_pickle=False)
        done = sorted(set(self.manifest["chunks_done"]) | {i})
        self.manifest["chunks_done"] = done
        self.manifest["complete"] = len(done) == self.n_chunks
        write_json_atomic(self.path / MANIFEST, self.manifest)

    def _chunk_path(self, i: int) -> Path:
        return self.path / f"chunk-{i:05d}.npy"

    # -------------------------------------------------------------- read

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def encoder(self) -> str:
        return self.manifest["encoder"]

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest.get("dtype", "float32"))

    def __len__(self) -> int:
        return int(self.manifest["n"])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.dim

    def _require_complete(self) -> None:
        if not self.complete:
            missing = len(self.missing_chunks())
            raise StoreError(f"{self.path} is incomplete ({missing} chunk(s) missing); rerun embed to resume it")

    def read_chunk(self, i: int) -> np.ndarray:
        """Chunk ``i`` memory-mapped, in the store's dtype, after checking its shape and dtype."""
        path = self._chunk_path(i)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise StoreError(f"{path} is missing; rerun embed to resume the store") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path} is corrupt ({exc})") from exc
        lo, hi = self.chunk_bounds(i)
        if arr.shape != (hi - lo, self.dim):
            raise StoreError(f"{path} has shape {arr.shape}, expected {(hi - lo, self.dim)}")
        if arr.dtype != self.dtype:
            raise StoreError(f"{path} holds {arr.dtype}, but the store's manifest says {self.dtype} (mixed dtypes)")
        return arr

    def iter_chunks(self) -> Iterator[np.ndarray]:
        """Yield each chunk as a float32 (rows, dim) array, in order (memory-mapped for float32)."""
        self._require_complete()
        for i in range(self.n_chunks):
            arr = self.read_chunk(i)
            yield arr if arr.dtype == np.float32 else arr.astype(np.float32)

    def __getitem__(self, rows) -> np.ndarray:
        """Rows by slice or positions (reads only the chunks it needs)."""
        pos = np.arange(len(self))[rows]
        scalar = np.ndim(pos) == 0
        pos = np.atleast_1d(pos)
        out = np.empty((len(pos), self.dim), dtype=np.float32)
        cr = self.manifest["chunk_rows"]
        self._require_complete()
        for c in np.unique(pos // cr):
            sel = np.flatnonzero(pos // cr == c)
            out[sel] = self.read_chunk(int(c))[pos[sel] - c * cr]
        return out[0] if scalar else out

    def to_array(self) -> np.ndarray:
        """All embeddings in memory (N, dim) float32. Prefer :meth:`iter_chunks` for big stores."""
        return np.concatenate(list(self.iter_chunks())) if len(self) else np.empty((0, self.dim), np.float32)

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r}, n={len(self)}, dim={self.dim}, encoder={self.encoder!r})"


class Embeddings(NamedTuple):
    """Embeddings with their row ids: ``x`` (an (N, D) float32 array, or an EmbeddingStore that
    streams it), ``ids`` (N,), ``labels`` (N,) or None, and ``meta`` (the encoder and its settings).

    It unpacks in that order: ``x, ids, labels, meta = open_embeddings(path)``.
    """

    x: Any
    ids: np.ndarray
    labels: np.ndarray | None
    meta: dict[str, Any]


def open_embeddings(path: str | os.PathLike, *, column: str | None = None) -> Embeddings:
    """Open embeddings for streaming: an EmbeddingStore folder, or load a file into memory.

    Returns :class:`Embeddings` whose ``x`` is the EmbeddingStore (a folder), the read-only memory
    map of a float16 or float32 ``.npy`` (streamed, never loaded whole), or an array (other files).
    """
    p = Path(path)
    if p.is_dir():
        store = EmbeddingStore(p)
        store._require_complete()
        meta = {"encoder": store.encoder, **store.manifest.get("params", {})}
        return Embeddings(store, store.ids, store.labels, meta)
    if not p.is_file():
        raise DataSourceError(f"embeddings not found: {p}")
    if p.suffix == ".npy":
        try:
            x = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"{p} is not a readable .npy array ({exc})") from exc
        if x.ndim == 2 and x.dtype in (np.float16, np.float32) and min(x.shape) > 0:
            # streamed as it is (float16 stays float16 on disk); each chunk is checked as it is read
            return Embeddings(x, np.arange(len(x), dtype=np.int64), None, {"encoder": f"file:{p.name}"})
        ids, labels = None, None
    elif p.suffix == ".npz":
        from selfprune.io.sources import load_source

        ds = load_source(p)
        x, ids, labels = ds.items, ds.ids, ds.labels
    elif p.suffix == ".parquet":
        from selfprune.io.sources import parquet_vectors

        x, ids, labels = parquet_vectors(p, column)
    else:
        raise DataSourceError(f"{p}: embeddings must be a store folder, .npy, .npz or .parquet")
    try:
        x = check_embeddings(x, caller=f"embeddings {p.name}")
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    from selfprune._checks import check_ids

    try:
        ids = check_ids(ids, len(x), caller=f"embeddings {p.name}")
    except InvalidInputError as exc:
        raise DataSourceError(str(exc)) from exc
    return Embeddings(x, ids, labels, {"encoder": f"file:{p.name}"})


def load_embeddings(path: str | os.PathLike, *, column: str | None = None) -> Embeddings:
    """:class:`Embeddings` in memory (``x`` an (N, D) float32 array) from a store folder, ``.npy``,
    ``.npz`` or Parquet file: ``x, ids, labels, meta = load_embeddings(path)``."""
    opened = open_embeddings(path, column=column)
    x = opened.x.to_array() if isinstance(opened.x, EmbeddingStore) else opened.x
    if isinstance(x, np.memmap):
        try:
            x = check_embeddings(x, caller=f"embeddings {Path(path).name}")
        except InvalidInputError as exc:
            raise DataSourceError(str(exc)) from exc
    return opened._replace(x=check_embeddings(x, caller="load_embeddings"))

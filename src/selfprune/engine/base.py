"""The engine seam: *fit on a sample, then map a pure function over chunks, results keyed by row*.

Every metric that scans all N examples is written as two halves. The **fit** (k-means centroids, a
neighbour head, an index) runs on the driver, on a sample read with :func:`sample_rows`. The **map**
is a module-level function ``fn(chunk, lo, state) -> {column: array}``: ``chunk`` is the float32
(n, D) block of rows ``[lo, lo + n)``, ``state`` a mapping of numpy arrays (the fitted state), and
the result a dict of arrays (one row per input row, or a per-chunk aggregate). An engine runs the
map and returns the results **in chunk order**, whatever order the chunks finished in, so results
are keyed by row position (and so by id), never by arrival:

* :class:`LocalEngine` streams the chunks in this process (the default);
* ``RayEngine`` (``selfprune.engine.ray``, the ``ray`` extra) runs the same function as Ray Data
  ``map_batches`` in actors that load the state from a path.

Metrics never import a concrete engine: they call :func:`get_engine` with what the caller gave
(``engine=`` argument, or ``None`` for the one set by :func:`use_engine`, like scikit-learn's
``parallel_backend``).

**Resume.** An engine with a ``workdir`` writes each finished chunk's result atomically to
``workdir/<task>/part-<chunk>.npz``, where ``<task>`` is a digest of the function, the state and the
source; a rerun after ``kill -9`` reuses the finished parts and recomputes the rest, so its result
is identical to an uninterrupted run.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import hashlib
import importlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import check_embeddings
from selfprune.errors import InvalidInputError, SelfpruneError, StoreError

DEFAULT_CHUNK_ROWS = 16_384
"""Rows per chunk of an in-memory or ``.npy`` array (a store has its own chunk size)."""

ENGINES = ("local", "ray")

ChunkFn = Callable[[np.ndarray, int, Mapping[str, np.ndarray]], dict[str, np.ndarray]]
Progress = Callable[[int, int], None]


class ChunkError(SelfpruneError):
    """A chunk function failed; the message names the chunk, its rows and the error, once."""


# ----------------------------------------------------------------------------------------------
# sources: chunked float32 rows that a worker can reopen from a description


class ArraySource:
    """An (N, D) array (in memory or a ``.npy`` memory map, any real dtype) read in row blocks."""

    def __init__(self, array: np.ndarray, chunk_rows: int = DEFAULT_CHUNK_ROWS, path: str | None = None) -> None:
        if array.ndim != 2:
            raise InvalidInputError(f"embeddings must be 2-D (N, D), got shape {array.shape}")
        self.array = array
        self.chunk_rows = int(chunk_rows)
        self.path = path
        self.ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def n_chunks(self) -> int:
        return -(-len(self) // self.chunk_rows)

    def bounds(self, i: int) -> tuple[int, int]:
        lo = i * self.chunk_rows
        return lo, min(lo + self.chunk_rows, len(self))

    def chunk(self, i: int) -> np.ndarray:
        lo, hi = self.bounds(i)
        return np.ascontiguousarray(self.array[lo:hi], dtype=np.float32)

    def rows_of_chunk(self, i: int, local: np.ndarray) -> np.ndarray:
        """Rows ``local`` (positions inside chunk ``i``) as float32, reading only those."""
        return np.ascontiguousarray(self.array[self.bounds(i)[0] + local], dtype=np.float32)

    def spec(self) -> dict[str, Any] | None:
        """How a worker reopens this source (``None``: in memory only)."""
        if self.path is None:
            return None
        return {"kind": "npy", "path": self.path, "chunk_rows": self.chunk_rows}

    def fingerprint(self) -> str:
        if self.path is not None:
            st = os.stat(self.path)
            return f"npy:{os.path.abspath(self.path)}:{st.st_size}:{st.st_mtime_ns}:{self.chunk_rows}"
        h = hashlib.sha256(f"{self.array.shape}:{self.array.dtype}:{self.chunk_rows}".encode())
        for i in range(self.n_chunks):
            h.update(np.ascontiguousarray(self.array[slice(*self.bounds(i))]).tobytes())
        return "array:" + h.hexdigest()


class StoreSource:
    """An :class:`~selfprune.io.store.EmbeddingStore` read one chunk file at a time."""

    def __init__(self, store) -> None:
        store._require_complete()
        self.store = store
        self.chunk_rows = int(store.manifest["chunk_rows"])
        self.ids = store.ids

    def __len__(self) -> int:
        return len(self.store)

    @property
    def dim(self) -> int:
        return self.store.dim

    @property
    def dtype(self) -> np.dtype:
        return self.store.dtype

    @property
    def n_chunks(self) -> int:
        return self.store.n_chunks

    def bounds(self, i: int) -> tuple[int, int]:
        return self.store.chunk_bounds(i)

    def chunk(self, i: int) -> np.ndarray:
        return np.ascontiguousarray(self.store.read_chunk(i), dtype=np.float32)

    def rows_of_chunk(self, i: int, local: np.ndarray) -> np.ndarray:
        """Rows ``local`` (positions inside chunk ``i``) as float32, reading only those."""
        return np.ascontiguousarray(self.store.read_chunk(i)[local], dtype=np.float32)

    def spec(self) -> dict[str, Any]:
        return {"kind": "store", "path": str(Path(self.store.path).resolve())}

    def fingerprint(self) -> str:
        m = self.store.manifest
        return f"store:{Path(self.store.path).resolve()}:{m['n']}:{m['dim']}:{m['chunk_rows']}:{m.get('source')}"


Source = ArraySource | StoreSource


def as_source(x, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Source:
    """Wrap an array, a ``.npy`` memory map or an EmbeddingStore as a chunked source."""
    if isinstance(x, ArraySource | StoreSource | GroupedSource):
        return x
    if hasattr(x, "read_chunk") and hasattr(x, "manifest"):
        return StoreSource(x)
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    path = getattr(arr, "filename", None) if isinstance(arr, np.memmap) else None
    if path is not None and arr.base is not None and _is_whole_npy(arr, path):
        return ArraySource(arr, chunk_rows, path=str(path))
    return ArraySource(arr, chunk_rows)


def _is_whole_npy(arr: np.memmap, path) -> bool:
    """True when ``arr`` maps the whole of the ``.npy`` file at ``path`` (not a slice of it)."""
    try:
        head = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return head.shape == arr.shape and head.dtype == arr.dtype and getattr(arr, "offset", None) == head.offset


def open_source(spec: Mapping[str, Any]) -> Source:
    """Reopen a source from :meth:`spec` (in a worker process)."""
    if spec["kind"] == "store":
        from selfprune.io.store import EmbeddingStore

        return StoreSource(EmbeddingStore(spec["path"]))
    if spec["kind"] == "grouped":
        try:
            with np.load(spec["index"], allow_pickle=False) as z:
                order, bounds = z["order"], z["bounds"]
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"{spec['index']} is missing or not a readable group index ({exc})") from exc
        return GroupedSource(open_source(spec["base"]), order, bounds)
    if spec["kind"] == "npy":
        try:
            arr = np.load(spec["path"], mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{spec['path']} is missing or not a readable .npy array ({exc})") from exc
        return ArraySource(arr, spec["chunk_rows"], path=spec["path"])
    raise InvalidInputError(f"unknown source kind {spec['kind']!r}")


def source_of(x, *, caller: str) -> Source:
    """A chunked source for a metric: stores and ``.npy`` maps as they are (each chunk is validated
    as it is read), anything else validated and converted to float32 in memory first."""
    if isinstance(x, ArraySource | StoreSource) or hasattr(x, "read_chunk"):
        return as_source(x)
    if isinstance(x, np.memmap):
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise InvalidInputError(f"{caller}: embeddings must be a non-empty 2-D (N, D) array, got {x.shape}")
        if x.dtype.kind != "f":
            raise InvalidInputError(f"{caller}: embeddings must be floating point, got dtype {x.dtype}")
        return as_source(x)
    return ArraySource(check_embeddings(x, caller=caller))


class RowReader:
    """Rows of a chunked source by slice or positions, as float32, reading only the chunks touched.

    Nothing stays mapped between reads, so scattered reads over a store larger than memory keep
    the resident set to what one read returns.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.shape = (len(source), source.dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        src = self.source
        pos = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        out = np.empty((len(pos), self.shape[1]), dtype=np.float32)
        if isinstance(src, ArraySource):
            out[:] = src.array[pos]
            return out
        chunk_of = pos // src.chunk_rows
        order = np.argsort(chunk_of, kind="stable")
        bounds = np.searchsorted(chunk_of[order], np.arange(src.n_chunks + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            sel = order[bounds[c] : bounds[c + 1]]
            arr = src.store.read_chunk(int(c))
            out[sel] = arr[pos[sel] - c * src.chunk_rows]
            del arr
        return out


class GroupedSource:
    """The rows of another source regrouped: chunk ``g`` is rows ``order[bounds[g]:bounds[g + 1]]``
    of ``base`` (the members of one cluster, say), so a map runs one task per group.

    Positions (``lo`` of a chunk, and the rows of its result) count along ``order``. A group may
    be empty. Only in memory (``spec()`` is ``None``): the Ray engine writes the index beside the
    task's parts (see ``selfprune.engine.ray``) and a worker reopens it with :func:`open_source`.

    A group's rows may be scattered over every chunk file of a store, so reading one group at a time
    would open every file once per group. A read therefore takes the requested group and the groups
    after it, up to ``prefetch_bytes`` of float32 rows, in one pass over the files, and serves those
    groups from memory until they are asked for (a worker that is handed groups out of order, as
    Ray's are, may read some groups twice; the rows it returns are the same).
    """

    def __init__(
        self, base: Source, order: np.ndarray, bounds: np.ndarray, *, prefetch_bytes: int = 128 * 2**20
    ) -> None:
        self.base = base
        self.order = np.asarray(order, dtype=np.int64)
        self.group_bounds = np.asarray(bounds, dtype=np.int64)
        if (
            self.group_bounds.ndim != 1 or len(self.group_bounds) < 1 or self.group_bounds[0] != 0
            or self.group_bounds[-1] != len(self.order) or np.any(np.diff(self.group_bounds) < 0)
        ):  # fmt: skip
            raise InvalidInputError("group bounds must rise from 0 to the length of the order")
        self.ids: np.ndarray | None = None
        self.prefetch_bytes = int(prefetch_bytes)
        self._rows = RowReader(base)
        self._ahead: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.order)

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def n_chunks(self) -> int:
        return len(self.group_bounds) - 1

    def bounds(self, i: int) -> tuple[int, int]:
        return int(self.group_bounds[i]), int(self.group_bounds[i + 1])

    def chunk(self, i: int) -> np.ndarray:
        if i not in self._ahead:
            self._ahead = self._read_from(i)
        return self._ahead.pop(i)

    def _read_from(self, i: int) -> dict[int, np.ndarray]:
        """Groups ``i, i + 1, ...`` (at least ``i``) up to ``prefetch_bytes`` of rows, read at once."""
        b = self.group_bounds
        limit = b[i] + max(self.prefetch_bytes // (4 * self.dim), 1)
        j = i + 1
        while j < self.n_chunks and b[j + 1] <= limit:
            j += 1
        rows = self._rows[self.order[b[i] : b[j]]]
        return {g: rows[b[g] - b[i] : b[g + 1] - b[i]] for g in range(i, j)}

    def rows_of_chunk(self, i: int, local: np.ndarray) -> np.ndarray:
        return self._rows[self.order[self.bounds(i)[0] + np.asarray(local, dtype=np.int64)]]

    def spec(self) -> None:
        return None

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.order.tobytes())
        h.update(self.group_bounds.tobytes())
        return f"grouped:{h.hexdigest()}:{self.base.fingerprint()}"


def rows_of(source: Source) -> np.ndarray | RowReader:
    """The rows of a source for random access: the array itself when it is float32 in memory."""
    if isinstance(source, ArraySource) and source.path is None and source.array.dtype == np.float32:
        return source.array
    return RowReader(source)


def sample_rows(source, n: int, seed: int) -> np.ndarray:
    """A uniform sample of ``n`` rows (sorted positions), float32, reading only the chunks it needs."""
    src = as_source(source)
    total = len(src)
    pos = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    if isinstance(src, ArraySource) and src.path is None:
        return np.ascontiguousarray(src.array[pos], dtype=np.float32)
    out = []
    for c in np.unique(pos // src.chunk_rows):
        lo, hi = src.bounds(int(c))
        hit = pos[(pos >= lo) & (pos < hi)] - lo
        rows = src.rows_of_chunk(int(c), hit)
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if bad.size:  # a streamed source is validated as it is read
            raise InvalidInputError(f"embeddings contain NaN or Inf at row {lo + hit[bad[0]]}")
        out.append(rows)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def stack(parts: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
    """Concatenate column ``key`` of the per-chunk results (in chunk order)."""
    return np.concatenate([p[key] for p in parts]) if parts else np.empty(0)


# ----------------------------------------------------------------------------------------------
# the map, the checkpoint, the engines


def fn_name(fn: ChunkFn) -> str:
    """``module:qualname`` of a module-level chunk function (what a worker imports)."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or resolve_fn(name) is not fn:
        raise InvalidInputError(f"chunk function {name} must be a module-level function")
    return name


def resolve_fn(name: str) -> ChunkFn:
    module, _, qual = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def state_digest(state: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        v = np.ascontiguousarray(state[k])
        h.update(f"{k}:{v.dtype.str}:{v.shape}".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def task_dir(workdir: str | os.PathLike, fn: ChunkFn, state: Mapping[str, np.ndarray], source: Source) -> Path:
    """``workdir/<digest of function, state and source>``: where one map's parts live."""
    h = hashlib.sha256(f"{fn_name(fn)}|{state_digest(state)}|{source.fingerprint()}".encode())
    return Path(workdir) / f"task-{h.hexdigest()[:16]}"


def part_path(task: Path, i: int) -> Path:
    return task / f"part-{i:06d}.npz"


def run_chunk(fn: ChunkFn, source: Source, i: int, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``fn`` on chunk ``i``; a failure is re-raised once, naming the chunk and its rows."""
    lo, hi = source.bounds(i)
    try:
        out = fn(source.chunk(i), lo, state)
    except SelfpruneError as exc:
        raise type(exc)(f"chunk {i} (rows {lo}-{hi - 1}): {exc}") from None
    except Exception as exc:  # a bug or a bad value deep in a library: one line, with where
        raise ChunkError(f"chunk {i} (rows {lo}-{hi - 1}) failed: {type(exc).__name__}: {exc}") from exc
    return {k: np.asarray(v) for k, v in out.items()}


def save_part(path: Path, out: Mapping[str, np.ndarray], lo: int, hi: int) -> None:
    from selfprune.io.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, __rows__=np.array([lo, hi], dtype=np.int64), **out)


def load_part(path: Path, lo: int, hi: int) -> dict[str, np.ndarray] | None:
    """A saved part, or ``None`` when it is missing, unreadable or for other rows."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None
    rows = out.pop("__rows__", None)
    if rows is None or tuple(int(r) for r in rows) != (lo, hi):
        return None
    return out


class Engine(abc.ABC):
    """Runs ``fn`` over every chunk of a source; returns the per-chunk results in chunk order.

    ``progress(rows_done, n_rows)`` is called as chunks finish (finished parts count at once).
    """

    name = "engine"

    def __init__(self, *, workdir: str | os.PathLike | None = None) -> None:
        self.workdir = None if workdir is None else Path(workdir)

    def map(
        self,
        fn: ChunkFn,
        source,
        state: Mapping[str, np.ndarray] | None = None,
        *,
        progress: Progress | None = None,
    ) -> list[dict[str, np.ndarray]]:
        src = as_source(source)
        state = dict(state or {})
        task = None if self.workdir is None else task_dir(self.workdir, fn, state, src)
        results: list[dict[str, np.ndarray] | None] = [None] * src.n_chunks
        if task is not None:
            for i in range(src.n_chunks):
                results[i] = load_part(part_path(task, i), *src.bounds(i))
        todo = [i for i, r in enumerate(results) if r is None]
        rows = [hi - lo for lo, hi in map(src.bounds, range(src.n_chunks))]
        done = len(src) - sum(rows[i] for i in todo)
        for i, out in self._run(fn, src, state, todo, task):
            results[i] = out
            done += rows[i]
            if progress is not None:
                progress(done, len(src))
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise ChunkError(f"{self.name} engine returned no result for chunk(s) {missing[:5]}")
        return [r for r in results if r is not None]

    @abc.abstractmethod
    def _run(
        self, fn: ChunkFn, src: Source, state: dict[str, np.ndarray], todo: list[int], task: Path | None
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Run ``fn`` on the chunks ``todo``, yielding ``(chunk, result)`` in any order (each engine's
        own way of running them); ``task`` is where parts go, or ``None`` without a workdir."""

    def close(self) -> None:  # noqa: B027  (a hook: only engines that hold something override it)
        """Release what the engine holds (a cluster connection); the local engine holds nothing."""

    def clear(self) -> None:
        """Delete the workdir's parts (call after the job's output is written)."""
        if self.workdir is not None and self.workdir.is_dir():
            shutil.rmtree(self.workdir, ignore_errors=True)


class LocalEngine(Engine):
    """Streams the chunks in this process, one after another (bounded memory: one chunk at a time)."""

    name = "local"

    def _run(self, fn, src, state, todo, task):
        for i in todo:
            out = run_chunk(fn, src, i, state)
            if task is not None:
                save_part(part_path(task, i), out, *src.bounds(i))
            yield i, out


_current: contextvars.ContextVar[Engine | None] = contextvars.ContextVar("selfprune_engine", default=None)


def make_engine(name: str = "local", **options) -> Engine:
    """An engine by name: ``"local"`` or ``"ray"`` (options: ``address``, ``workers``, ``workdir``)."""
    if name == "local":
        return LocalEngine(workdir=options.get("workdir"))
    if name == "ray":
        from selfprune.engine.ray import RayEngine

        return RayEngine(**options)
    raise InvalidInputError(f"engine must be one of {ENGINES}, got {name!r}")


def get_engine(engine: Engine | str | None = None) -> Engine:
    """The engine to use: the one given, else the one set by :func:`use_engine`, else local."""
    if isinstance(engine, Engine):
        return engine
    if isinstance(engine, str):
        return make_engine(engine)
    if engine is not None:
        raise InvalidInputError(f"engine must be an Engine or one of {ENGINES}, got {engine!r}")
    return _current.get() or LocalEngine()


@contextlib.contextmanager
def use_engine(engine: Engine | str = "local", **options) -> Iterator[Engine]:
    """Run every metric inside the block on ``engine`` (closed at exit if made here from a name)."""
    eng = make_engine(engine, **options) if isinstance(engine, str) else engine
    token = _current.set(eng)
    try:
        yield eng
    finally:
        _current.reset(token)
        if isinstance(engine, str):
            eng.close()


__all__ = [
    "ArraySource",
    "StoreSource",
    "Source",
    "as_source",
    "source_of",
    "open_source",
    "sample_rows",
    "RowReader",
    "GroupedSource",
    "rows_of",
    "stack",
    "Engine",
    "LocalEngine",
    "ChunkError",
    "make_engine",
    "get_engine",
    "use_engine",
    "run_chunk",
    "save_part",
    "load_part",
    "part_path",
    "task_dir",
    "fn_name",
    "resolve_fn",
    "DEFAULT_CHUNK_ROWS",
    "ENGINES",
]

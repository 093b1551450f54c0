"""The Ray engine: the same chunk functions as the local engine, run as Ray Data ``map_batches``.

``RayEngine().map(fn, source, state)`` returns exactly what ``LocalEngine().map`` returns. The work
travels as small things only: the chunk function's name, how to reopen the source (a store path, or
a ``.npy`` path; an in-memory array is written to ``<task>/source.npy`` once), and the path of the
fitted state (``<task>/state.npz``). A pool of actors (one per worker CPU) loads the state and opens
the source once, then runs chunks by index, each writing its result atomically to
``<task>/part-<chunk>.npz``. The dataset's rows carry only a chunk index and an error message; the
driver reads each finished part by its chunk index, so nothing depends on block layout or on the
order in which chunks finish.

* **Failures of the chunk function** are caught in the actor and come back as one line naming the
  chunk and the error, raised on the driver with the original selfprune error class (else
  :class:`~selfprune.engine.base.ChunkError`), never retried.
* **A worker that dies** (killed, out of memory, a lost node) is restarted by Ray and the chunks it
  held are run again (Ray Data's actor pools restart actors and resubmit their tasks); a part is
  written atomically, so a retried chunk either finds its part complete or writes it afresh. A
  chunk whose worker dies more than ``retries`` times is reported as failed instead of looping.
* **A driver that dies** leaves the finished parts in ``workdir``; rerun with the same ``workdir``
  and only the missing chunks are submitted.

With ``workdir=None`` the parts live in a temporary folder deleted at the end of each map; that only
works where the workers share the driver's file system (a local cluster). On a real cluster give a
``workdir`` on storage every node sees (NFS, a shared volume), and keep the store there too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.engine.base import (
    ChunkError,
    Engine,
    GroupedSource,
    fn_name,
    load_part,
    open_source,
    part_path,
    resolve_fn,
    run_chunk,
    save_part,
)
from selfprune.errors import DataSourceError, InvalidInputError, SelfpruneError, require

ray = require("ray", "ray")
require("ray.data", "ray")

CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a cluster address to accept a connection before giving up."""

_ADDRESS_FORMS = "address must be 'host:port', 'ray://host:port' or 'auto'"

_QUIET_DATA = {
    "enable_progress_bars": False,
    "enable_operator_progress_bars": False,
    "print_on_execution_start": False,
    "enable_auto_log_stats": False,
    "verbose_stats_logs": False,
}


class RayEngine(Engine):
    """Runs chunk functions on a Ray cluster (connected on the first map, not at construction).

    ``address``: a running cluster (``"host:6379"``, ``"ray://host:10001"`` or ``"auto"``); ``None``
    reuses the Ray session this process already has, else starts a local one with ``workers`` CPUs
    (default: all of them). ``workers`` also caps the number of actors. ``workdir`` holds the
    per-chunk parts that make a rerun resume (see the module docstring); ``retries`` is how many
    times a lost worker is restarted and its chunks resubmitted.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int | None = None,
        workdir: str | os.PathLike | None = None,
        retries: int = 3,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InvalidInputError(f"RayEngine: workers must be a positive integer, got {workers!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInputError(f"RayEngine: retries must be a non-negative integer, got {retries!r}")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise InvalidInputError(f"RayEngine: {_ADDRESS_FORMS}, got {address!r}")
        super().__init__(workdir=workdir)
        self.address = address
        self.workers = workers
        self.retries = retries
        self._started = False  # this engine started the cluster (and so shuts it down)
        self._connected = False

    # -- the cluster ------------------------------------------------------------------------

    def connect(self) -> None:
        """Join ``address``, reuse this process's Ray session, or start a local cluster."""
        if self._connected:
            return
        if self.address is not None:
            _check_reachable(self.address)
            if not ray.is_initialized():
                try:
                    ray.init(address=self.address, **_quiet_init())
                except Exception as exc:  # Ray raises ConnectionError, RuntimeError, TimeoutError...
                    raise DataSourceError(
                        f"cannot connect to the Ray cluster at {self.address}: {_first_line(exc)}"
                    ) from None
        elif not ray.is_initialized():
            # a local cluster listens on loopback only: no token to generate and store
            with _env(RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", "disabled")):
                ray.init(num_cpus=self.workers or os.cpu_count() or 1, include_dashboard=False, **_quiet_init())
            self._started = True
        self._connected = True

    def close(self) -> None:
        """Shut down the cluster if this engine started it; a cluster it joined keeps running."""
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False
        self._connected = False

    def _pool_size(self, n_todo: int) -> int:
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        return max(1, min(self.workers or cpus, cpus, n_todo))

    # -- the map ------------------------------------------------------------------------------

    def _run(self, fn, src, state, todo, task):
        if not todo:
            return
        name = fn_name(fn)
        self.connect()
        scratch = None
        if task is None:
            scratch = Path(tempfile.mkdtemp(prefix="selfprune-ray-"))
            task = scratch / "task"
        try:
            task.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(task / "attempts", ignore_errors=True)  # worker deaths are counted per map
            state_path = task / "state.npz"
            _save_state(state_path, state)
            spec = src.spec() or _spill(src, task)
            yield from self._submit(name, src, spec, state_path, task, todo)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _submit(self, name, src, spec, state_path: Path, task: Path, todo: list[int]):
        ctx = ray.data.DataContext.get_current()
        with _context(ctx, **_QUIET_DATA), _quiet_logger("ray.data"):
            ds = ray.data.from_items([{"chunk": int(i)} for i in todo], override_num_blocks=len(todo))
            ds = ds.map_batches(
                _ChunkActor,
                fn_constructor_kwargs={
                    "fn": name,
                    "spec": spec,
                    "state_path": str(state_path),
                    "task": str(task),
                    "retries": self.retries,
                },
                batch_size=1,
                batch_format="numpy",
                num_cpus=1,
                **_pool(self._pool_size(len(todo))),
            )
            rows = ds.iter_batches(batch_size=None, batch_format="numpy")
            seen: set[int] = set()
            try:
                for batch in rows:
                    for i, kind, error in zip(batch["chunk"], batch["kind"], batch["error"], strict=True):
                        i = int(i)
                        if error:
                            raise _error_class(str(kind))(str(error)) from None
                        if i in seen:  # a retried task may report its chunk twice
                            continue
                        seen.add(i)
                        yield i, _read_part(task, i, src.bounds(i))
            finally:
                close = getattr(rows, "close", None)
                if close is not None:
                    close()
        missing = sorted(set(todo) - seen)
        if missing:
            raise ChunkError(f"the Ray job ended without {len(missing)} chunk(s), first chunk {missing[0]}")


class _ChunkActor:
    """One per worker: loads the state and opens the source once, then runs chunks by index."""

    def __init__(self, fn: str, spec: Mapping[str, Any], state_path: str, task: str, retries: int) -> None:
        self.task = Path(task)
        self.retries = retries
        self.failure: tuple[str, str] | None = None
        try:
            self.fn = resolve_fn(fn)
        except Exception as exc:
            self.failure = ("", f"cannot import chunk function {fn} on a Ray worker: {_first_line(exc)}")
            return
        try:
            with np.load(state_path, allow_pickle=False) as z:
                self.state = {k: z[k] for k in z.files}
            self.source = open_source(spec)
        except SelfpruneError as exc:
            self.failure = (_class_name(exc), f"on a Ray worker: {exc}")
        except Exception as exc:
            self.failure = (
                "",
                f"a Ray worker cannot read the job's inputs ({_first_line(exc)}); "
                "the workdir and the source must be on storage every node sees",
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        kinds, errors = [], []
        for i in (int(c) for c in batch["chunk"]):
            kind, error = self.failure or self._one(i)
            kinds.append(kind)
            errors.append(error)
        return {"chunk": np.asarray(batch["chunk"], dtype=np.int64), "kind": np.array(kinds), "error": np.array(errors)}

    def _one(self, i: int) -> tuple[str, str]:
        lo, hi = self.source.bounds(i)
        path = part_path(self.task, i)
        if load_part(path, lo, hi) is not None:  # written by an earlier try of this task
            return "", ""
        # Ray restarts a dead worker and resubmits its chunks without limit; a chunk that kills its
        # worker every time (a crash in native code, out of memory) is stopped here instead
        attempts = self.task / "attempts"
        tried = sorted(attempts.glob(f"chunk-{i:06d}.*"))
        if len(tried) > self.retries:
            return "", (
                f"chunk {i} (rows {lo}-{hi - 1}): its Ray worker died {len(tried)} times running it "
                "(killed, out of memory or a crash in native code)"
            )
        attempts.mkdir(exist_ok=True)
        (attempts / f"chunk-{i:06d}.{uuid.uuid4().hex}").touch()
        try:
            out = run_chunk(self.fn, self.source, i, self.state)
        except SelfpruneError as exc:
            return _class_name(exc), str(exc)
        try:
            save_part(path, out, lo, hi)
        except Exception as exc:
            return "", f"chunk {i} (rows {lo}-{hi - 1}): cannot write its result {path}: {_first_line(exc)}"
        for mark in attempts.glob(f"chunk-{i:06d}.*"):
            mark.unlink(missing_ok=True)
        return "", ""


# ----------------------------------------------------------------------------------------------
# helpers


def _pool(size: int) -> dict[str, Any]:
    """A fixed pool of ``size`` actors, in the spelling this Ray version wants."""
    if _version(ray.__version__) >= (2, 51):
        return {"compute": ray.data.ActorPoolStrategy(size=size)}
    return {"concurrency": size}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Hide a logger's INFO/WARNING chatter (per-dataset summaries) for the block."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _quiet_init() -> dict[str, Any]:
    return {"log_to_driver": False, "logging_level": logging.WARNING}


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, when ``host:port`` does not accept a TCP connection."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInputError(f"RayEngine: {_ADDRESS_FORMS}, got {address!r}")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise DataSourceError(
            f"no Ray cluster at {address}: {exc.strerror or exc} (start one with `ray start --head`)"
        ) from None


def _save_state(path: Path, state: Mapping[str, np.ndarray]) -> None:
    from selfprune.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in state.items()})


def _spill(src, task: Path) -> dict[str, Any]:
    """Write what workers cannot reopen into the task folder (once per task): an in-memory array
    to ``source.npy``, a grouped source's index to ``groups.npz`` (and its base if in memory)."""
    if isinstance(src, GroupedSource):
        base = src.base.spec() or _spill(src.base, task)
        index = task / "groups.npz"
        _save_state(index, {"order": src.order, "bounds": src.group_bounds})
        return {"kind": "grouped", "base": base, "index": str(index.resolve())}
    path = task / "source.npy"
    arr = src.array
    try:
        old = np.load(path, mmap_mode="r", allow_pickle=False)
        fresh = old.shape != arr.shape or old.dtype != arr.dtype
        del old
    except (OSError, ValueError):
        fresh = True
    if fresh:
        from selfprune.io.atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
    return {"kind": "npy", "path": str(path.resolve()), "chunk_rows": src.chunk_rows}


def _read_part(task: Path, i: int, bounds: tuple[int, int]) -> dict[str, np.ndarray]:
    part = load_part(part_path(task, i), *bounds)
    if part is None:
        raise ChunkError(
            f"chunk {i} finished on a Ray worker but its result {part_path(task, i)} cannot be read here: "
            "the workdir must be on storage every node sees"
        )
    return part


def _class_name(exc: BaseException) -> str:
    return f"{type(exc).__module__}:{type(exc).__qualname__}"


def _error_class(name: str) -> type[SelfpruneError]:
    """The selfprune error class a worker reported (``ChunkError`` for anything else)."""
    if name:
        with contextlib.suppress(Exception):
            cls = resolve_fn(name)
            if isinstance(cls, type) and issubclass(cls, SelfpruneError):
                return cls
    return ChunkError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def _context(ctx, **values) -> Iterator[None]:
    """Set DataContext fields for the block, then put back what the caller had."""
    old = {k: getattr(ctx, k) for k in values if hasattr(ctx, k)}
    for k in old:
        setattr(ctx, k, values[k])
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(ctx, k, v)


__all__ = ["RayEngine"]

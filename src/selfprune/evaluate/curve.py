"""Scaling curves: test accuracy of a fixed trainer on pruned subsets, against random at equal size.

For every (metric, policy, keep, seed) the subset is chosen by :func:`selfprune.select.select` and
a fixed trainer is trained on it; random pruning is always run as the baseline (rows with metric
``random``). Each training run is cached on disk as its own small JSON file, keyed by a hash of
everything that determines it (training data, test data, the kept ids, the trainer and its settings,
the seed), so an interrupted curve resumes where it stopped, adding a seed trains only the new runs,
and runs that keep the same subset (every policy at keep 1.0) train once. Cached or not, the result
table is the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import align_ids, check_ids, check_int, check_labels, resolve_keep
from selfprune._seeds import seed_list as seed_list_of
from selfprune.errors import DataSourceError, InvalidInputError
from selfprune.evaluate.auto import PolicyDecision, _resolve_trainer, decide_policy
from selfprune.evaluate.trainers import TrainResult, get_trainer
from selfprune.io.atomic import jsonable
from selfprune.scores import Scores, ScoreTable

CURVE_POLICIES = ("hard", "easy", "stratified", "auto")
DEFAULT_KEEP = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
COLUMNS = (
    "metric",
    "policy",
    "chosen_policy",
    "keep",
    "seed",
    "n_train",
    "test_accuracy",
    "test_error",
    "epochs",
    "steps",
)
_CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class Curve:
    """The result table (one dict per run, columns :data:`COLUMNS`) and how it was made.

    ``meta``: trainer, its settings and cache key, pool and test sizes, keeps, seeds, policies and
    the ``auto`` decisions (metric, keep, chosen policy, reason, pilot numbers). ``trained`` and
    ``reused`` count fresh trainings and cache hits of this call (not part of the table).
    """

    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    trained: int = 0
    reused: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> np.ndarray:
        if name not in COLUMNS:
            raise InvalidInputError(f"Curve.column: unknown column {name!r}; columns are {COLUMNS}")
        return np.asarray([r[name] for r in self.rows])

    def to_arrow(self):
        import pyarrow as pa

        types = {
            "metric": pa.string(),
            "policy": pa.string(),
            "chosen_policy": pa.string(),
            "keep": pa.float64(),
            "seed": pa.int64(),
            "n_train": pa.int64(),
            "test_accuracy": pa.float64(),
            "test_error": pa.float64(),
            "epochs": pa.float64(),
            "steps": pa.int64(),
        }
        table = pa.table({c: pa.array([r[c] for r in self.rows], type=types[c]) for c in COLUMNS})
        md = {b"selfprune": json.dumps({"curve": self.meta}, default=_jsonable).encode()}
        return table.replace_schema_metadata(md)

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(COLUMNS), "rows": self.rows, "meta": self.meta}


def write_curve(path: str | os.PathLike, curve: Curve) -> Path:
    """Write the curve table as Parquet (meta in the key-value metadata), atomically."""
    from selfprune.io.tables import write_parquet

    return write_parquet(path, curve.to_arrow())


def read_curve(path: str | os.PathLike) -> Curve:
    """Read a curve Parquet file written by :func:`write_curve`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"read_curve: no such file {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"read_curve: {path} is not a readable Parquet file ({exc})") from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataSourceError(f"read_curve: {path} lacks curve column(s) {missing}")
    md = (table.schema.metadata or {}).get(b"selfprune")
    meta = json.loads(md).get("curve", {}) if md else {}
    cols = {c: table.column(c).to_pylist() for c in COLUMNS}
    rows = [{c: cols[c][i] for c in COLUMNS} for i in range(table.num_rows)]
    return Curve(rows=rows, meta=meta)


# ---------------------------------------------------------------- hashing and cache


_jsonable = partial(jsonable, other=repr)  # what JSON cannot hold counts by its repr


def array_digest(*arrays: np.ndarray) -> str:
    """A content hash of arrays (dtype, shape and bytes), for cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind in "UO":
            a = a.astype(str)
            h.update(b"U")
            h.update("\x00".join(a.ravel().tolist()).encode())
        else:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def trainer_identity(trainer, settings: Mapping[str, Any] | None = None, key: str | None = None) -> str:
    """A stable description of a trainer for cache keys.

    Named trainers: name and every field of the trainer they build (defaults included, so a changed
    default recipe never reuses old runs). Dataclass trainers (the built-ins' types): their repr.
    Functions: module and qualified name; pass ``key`` to tell apart two versions of one function.
    """
    if key is not None:
        return f"key:{key}"
    if isinstance(trainer, str):
        built = get_trainer(trainer, **dict(settings or {}))
        return f"name:{trainer}:{built!r}"
    if dataclasses.is_dataclass(trainer) and not isinstance(trainer, type):
        return f"dataclass:{type(trainer).__module__}.{trainer!r}"
    fn = getattr(trainer, "__qualname__", None) or type(trainer).__qualname__
    mod = getattr(trainer, "__module__", None) or type(trainer).__module__
    return f"callable:{mod}.{fn}"


class RunCache:
    """One JSON file per training run under ``root``, written atomically; ``None`` keeps it in memory."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = None if root is None else Path(root)
        self._memory: dict[str, dict[str, Any]] = {}

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if key in self._memory:
            return self._memory[key]
        if self.root is None:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed and overwritten
        if record.get("key") != key or "result" not in record:
            return None
        self._memory[key] = record
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        record = {**record, "key": key}
        self._memory[key] = record
        if self.root is not None:
            from selfprune.io.atomic import write_json_atomic

            write_json_atomic(self._path(key), record)


def _key(parts: Mapping[str, Any]) -> str:
    text = json.dumps({"v": _CACHE_VERSION, **parts}, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- the curve


def _as_score_list(scores, metrics: Sequence[str] | None) -> list[Scores]:
    if scores is None:
        if metrics:
            raise InvalidInputError("scaling_curve: metrics given but no scores")
        return []
    if isinstance(scores, Scores):
        items = [scores]
    elif isinstance(scores, ScoreTable | Mapping):
        names = list(metrics) if metrics is not None else list(scores)
        unknown = [m for m in names if m not in scores]
        if unknown:
            raise InvalidInputError(f"scaling_curve: metrics {unknown} not among scores {sorted(scores)}")
        return _check_score_names([scores[k] for k in names])
    elif isinstance(scores, Sequence) and all(isinstance(s, Scores) for s in scores):
        items = list(scores)
    else:
        raise InvalidInputError(
            f"scaling_curve: scores must be a Scores, ScoreTable or list of Scores, got {type(scores).__name__}"
        )
    if metrics is not None:
        by_name = {s.name: s for s in items}
        unknown = [m for m in metrics if m not in by_name]
        if unknown:
            raise InvalidInputError(f"scaling_curve: metrics {unknown} not among scores {sorted(by_name)}")
        items = [by_name[m] for m in metrics]
    return _check_score_names(items)


def _check_score_names(items: list[Scores]) -> list[Scores]:
    names = [s.name for s in items]
    if "random" in names:
        raise InvalidInputError("scaling_curve: 'random' is the built-in baseline; rename that score column")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"scaling_curve: metric names must be unique, got {names}")
    if items:
        base = np.sort(items[0].ids)
        for s in items[1:]:
            if len(s) != len(base) or not np.array_equal(np.sort(s.ids), base):
                raise InvalidInputError(f"scaling_curve: {s.name!r} covers different ids than {items[0].name!r}")
    return items


def scaling_curve(
    scores: Scores | ScoreTable | Sequence[Scores] | None,
    *,
    x_train,
    y_train,
    x_test,
    y_test,
    train_ids=None,
    metrics: Sequence[str] | None = None,
    policies: Sequence[str] = ("hard",),
    keep: Sequence[float | int] = DEFAULT_KEEP,
    n_seeds: int | None = None,
    seeds: Sequence[int] | None = None,
    trainer: str | Callable = "linear",
    trainer_settings: Mapping[str, Any] | None = None,
    trainer_key: str | None = None,
    cutoff: float = 0.0,
    balance_classes: bool = False,
    strata: int = 50,
    pilot_trainer: str | Callable = "linear",
    pilot_n_seeds: int | None = None,
    pilot_seeds: Sequence[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    jobs: int = 1,
) -> Curve:
    """Train ``trainer`` on the subsets each metric/policy keeps, and on random subsets of equal size.

    ``x_train`` (N, ...) / ``y_train`` (N,) hold the training examples with ids ``train_ids``
    (default ``0..N-1``); the scored ids are the pool that every subset is drawn from (all metrics
    must score the same ids; without scores the pool is all of ``x_train``). ``keep`` entries are
    fractions of the pool or counts. ``n_seeds`` runs use seeds ``0..n_seeds-1`` (default 3);
    ``seeds`` lists them instead; a run's seed drives both the random selection and the training.
    ``policies`` are ``select`` policies plus ``auto``, which asks
    :func:`~selfprune.evaluate.auto.decide_policy` (pilot runs with ``pilot_trainer``
    on a held-out part of the pool, never the test set, over ``pilot_n_seeds``
    (default 2) or ``pilot_seeds``) once per metric and keep.
    ``trainer`` is a registry name (with ``trainer_settings``, e.g. ``{"epochs": 10}`` or
    ``{"steps": 2000}``) or any ``(x_train, y_train, x_test, y_test, *, seed) -> TrainResult``.
    ``progress(done, total, row)`` is called after each trained run. ``jobs`` > 1 trains the
    uncached runs in that many worker processes (each run single-threaded as the built-in trainers
    are; a custom trainer must then be picklable): the same rows as ``jobs=1``, bit for bit.
    """
    caller = "scaling_curve"
    items = _as_score_list(scores, metrics)
    pols = tuple(policies)
    if not pols or any(p not in CURVE_POLICIES for p in pols) or len(set(pols)) != len(pols):
        raise InvalidInputError(f"{caller}: policies must be distinct values from {CURVE_POLICIES}, got {pols!r}")
    seed_list = seed_list_of(seeds, n_seeds, caller=caller, default=3)
    pilot_seeds = seed_list_of(pilot_seeds, pilot_n_seeds, caller=caller, default=2, name="pilot_seeds")
    x_tr = np.asarray(x_train)
    y_tr = check_labels(y_train, len(x_tr), caller=caller)
    ids = check_ids(train_ids, len(x_tr), caller=caller)
    x_te = np.asarray(x_test)
    y_te = check_labels(y_test, len(x_te), caller=caller)
    if len(x_te) == 0:
        raise InvalidInputError(f"{caller}: the test set is empty")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise InvalidInputError(f"{caller}: train rows {x_tr.shape[1:]} and test rows {x_te.shape[1:]} differ")
    run = _resolve_trainer(trainer, dict(trainer_settings or {}), caller=caller)
    jobs = check_int(jobs, caller=caller, name="jobs", low=1)
    tid = trainer_identity(trainer, trainer_settings, trainer_key)
    pool_ids = items[0].ids if items else ids
    align_ids(ids, pool_ids, caller=caller, what="training data")  # every scored id must be there
    n_pool = len(pool_ids)
    try:
        keeps = list(keep)
    except TypeError:
        raise InvalidInputError(f"{caller}: keep must be a list of fractions or counts, got {keep!r}") from None
    if not keeps:
        raise InvalidInputError(f"{caller}: keep is empty")
    counts = [resolve_keep(k, n_pool, caller=caller) for k in keeps]
    if len(set(counts)) != len(counts):
        raise InvalidInputError(f"{caller}: keep values {list(keep)} give repeated subset sizes {counts}")
    train_digest = array_digest(x_tr, y_tr, ids)
    test_digest = array_digest(x_te, y_te)
    cache = RunCache(None if cache_dir is None else Path(cache_dir) / "runs")
    decision_cache = RunCache(None if cache_dir is None else Path(cache_dir) / "auto")

    from selfprune.select import select

    random_base = Scores(pool_ids, np.zeros(n_pool), "random")
    plan: list[tuple[str, str, Scores, float | int]] = []
    for k in keeps:
        plan.append(("random", "random", random_base, k))
        for s in items:
            for p in pols:
                plan.append((s.name, p, s, k))
    # labels aligned with each score's own id order, for class-balanced selection
    labels_of = {s.name: y_tr[align_ids(ids, s.ids, caller=caller, what="data")] for s in [random_base, *items]}
    total = len(plan) * len(seed_list)
    decisions: list[dict[str, Any]] = []
    decided: dict[tuple[str, int], PolicyDecision] = {}
    # 1. every run's subset and cache key, in a fixed order (cheap, deterministic)
    tasks: list[dict[str, Any]] = []
    for seed in seed_list:
        for metric, policy, s, k in plan:
            chosen = policy
            if policy == "auto":
                m_count = resolve_keep(k, n_pool, caller=caller)
                dk = (metric, m_count)
                if dk not in decided:
                    decided[dk] = _decide(
                        s,
                        k,
                        x_tr,
                        y_tr,
                        ids,
                        pilot_trainer,
                        pilot_seeds,
                        cutoff,
                        balance_classes,
                        strata,
                        train_digest,
                        decision_cache,
                    )
                    decisions.append({"metric": metric, "keep": k, **decided[dk].to_dict()})
                chosen = decided[dk].policy
            sel = select(
                s,
                k,
                policy=chosen,
                labels=labels_of[s.name] if balance_classes else None,
                balance_classes=balance_classes,
                cutoff=cutoff,
                strata=strata,
                seed=seed,
            )
            key = _key(
                {
                    "train": train_digest,
                    "test": test_digest,
                    "subset": array_digest(sel.ids),
                    "trainer": tid,
                    "seed": seed,
                }
            )
            row = {"metric": metric, "policy": policy, "chosen_policy": chosen, "keep": float(k), "seed": seed}
            tasks.append({"key": key, "seed": seed, "ids": sel.ids, "row": row})
    # 2. train what the cache lacks (each distinct key once), in this process or in `jobs` workers
    records: dict[str, dict[str, Any]] = {}
    todo: dict[str, dict[str, Any]] = {}
    hits = 0
    for t in tasks:
        record = cache.get(t["key"])
        if record is None:
            todo.setdefault(t["key"], t)
            continue
        records[t["key"]] = record
        hits += 1
        if progress is not None:
            acc = float(record["result"]["test_accuracy"])
            progress(hits, total, {**t["row"], "test_accuracy": acc, "cached": True})
    done = 0

    def finished(key: str, res: TrainResult) -> None:
        nonlocal done
        t = todo[key]
        record = {
            "result": {
                "test_accuracy": float(res.test_accuracy),
                "n_train": int(res.n_train),
                "epochs": float(res.epochs),
                "steps": int(res.steps),
                "meta": dict(res.meta),
            },
            "trainer": tid,
            "seed": t["seed"],
            "n_subset": len(t["ids"]),
        }
        record = json.loads(json.dumps(record, default=_jsonable))
        cache.put(key, record)
        records[key] = record
        done += 1
        if progress is not None:
            row = {**t["row"], "test_accuracy": float(res.test_accuracy), "cached": False}
            progress(hits + done, total, row)

    work = [
        (key, align_ids(ids, t["ids"], caller=caller, what="training data"), t["seed"]) for key, t in todo.items()
    ]
    if jobs == 1 or len(work) < 2:
        for key, rows_at, seed in work:
            finished(key, run(x_tr[rows_at], y_tr[rows_at], x_te, y_te, seed=seed))
    else:
        _run_in_workers(work, jobs, (x_tr, y_tr, x_te, y_te, trainer, dict(trainer_settings or {})), finished)
    # 3. the table, in plan order
    rows: list[dict[str, Any]] = []
    for t in tasks:
        r = records[t["key"]]["result"]
        rows.append(
            {
                **t["row"],
                "n_train": int(r["n_train"]),
                "test_accuracy": float(r["test_accuracy"]),
                "test_error": 1.0 - float(r["test_accuracy"]),
                "epochs": float(r["epochs"]),
                "steps": int(r["steps"]),
            }
        )
    trained, reused = len(todo), len(tasks) - len(todo)
    order = {name: i for i, name in enumerate(["random", *[s.name for s in items]])}
    pol_order = {p: i for i, p in enumerate(("random", *pols))}
    rows.sort(key=lambda r: (order[r["metric"]], pol_order[r["policy"]], r["keep"], r["seed"]))
    meta = {
        "trainer": tid,
        "trainer_settings": dict(trainer_settings or {}),
        "n_pool": n_pool,
        "n_test": len(x_te),
        "keep": [float(k) for k in keeps],
        "counts": counts,
        "seeds": list(seed_list),
        "metrics": [s.name for s in items],
        "policies": list(pols),
        "cutoff": cutoff,
        "balance_classes": balance_classes,
        "strata": strata,
        "decisions": decisions,
        "pilot_trainer": trainer_identity(pilot_trainer),
        "pilot_seeds": [int(s) for s in pilot_seeds],
    }
    return Curve(rows=rows, meta=meta, trained=trained, reused=reused)


_WORKER: dict[str, Any] = {}


def _worker_init(x_tr, y_tr, x_te, y_te, trainer, settings) -> None:
    _WORKER.update(
        data=(x_tr, y_tr, x_te, y_te), run=_resolve_trainer(trainer, settings or None, caller="scaling_curve")
    )


def _worker_run(task: tuple[str, np.ndarray, int]) -> tuple[str, TrainResult]:
    key, rows_at, seed = task
    x_tr, y_tr, x_te, y_te = _WORKER["data"]
    return key, _WORKER["run"](x_tr[rows_at], y_tr[rows_at], x_te, y_te, seed=seed)


def _run_in_workers(work, jobs: int, init_args: tuple, finished: Callable[[str, TrainResult], None]) -> None:
    """Train ``work`` items in ``jobs`` spawned processes; ``finished`` sees each result as it lands."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")  # never fork a process that has started torch's thread pools
    workers = min(jobs, len(work))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=init_args) as pool:
        futures = [pool.submit(_worker_run, item) for item in work]
        for fut in as_completed(futures):
            key, res = fut.result()
            finished(key, res)


def _decide(
    s: Scores,
    k,
    x_tr,
    y_tr,
    ids,
    pilot_trainer,
    pilot_seeds,
    cutoff,
    balance,
    strata,
    train_digest: str,
    cache: RunCache,
) -> PolicyDecision:
    key = _key(
        {
            "auto": array_digest(s.ids, s.values),
            "keep": k,
            "train": train_digest,
            "pilot": trainer_identity(pilot_trainer),
            "seeds": [int(v) for v in pilot_seeds],
            "cutoff": cutoff,
            "balance": balance,
            "strata": strata,
            "rule": "random-unless-pilots-beat-it",
        }
    )
    record = cache.get(key)
    if record is not None:
        d = record["result"]
        return PolicyDecision(d["policy"], d["reason"], d["pilot"])
    dec = decide_policy(
        s,
        k,
        x=x_tr,
        y=y_tr,
        x_ids=ids,
        trainer=pilot_trainer,
        seeds=tuple(pilot_seeds),
        cutoff=cutoff,
        balance_classes=balance,
        strata=strata,
    )
    cache.put(key, json.loads(json.dumps({"result": dec.to_dict()}, default=_jsonable)))
    return dec

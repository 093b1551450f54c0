"""Out-of-core scoring: float16 stores streamed chunk by chunk against the in-memory path.

Synthetic data, written straight into a float16 EmbeddingStore chunk by chunk (never held whole):
N rows in D dimensions around ``--centres`` random directions (cosine about 0.5 within a direction),
1% of them in planted groups of 2 to 4 near-copies (cosine about ``1 - eps/4``, within a chunk).
Every measured case runs in a fresh subprocess that reports its own peak resident memory
(``VmHWM``: faiss' and torch's allocations count, and so do pages of the store it maps) and the
time of the metric call alone:

* **side by side at ``--n``** (default 1M): each metric on the store's rows loaded into memory as
  float32 (``memory``) and on the float16 store streamed (``stream``): time per example and the ratio;
  the results must be identical (the script checks it and says so). ``--repeats R`` runs R pairs,
  alternating which path goes first, and reports medians and every pair's ratio;
* **at ``--big-n``** (default 10M, 7.7 GB on disk): the metrics of ``--big-metrics`` streamed,
  peak memory against the 2 GB bound (dedup with ``--big-dedup-k`` clusters, and its recall and
  precision of the planted groups);
* **Ray** (``--ray``): the metrics of ``--ray-metrics`` (default prototypes) at ``--n`` on
  ``--engine ray`` with 2 local workers against the local streamed run (run it too, in
  ``--metrics``, for the ratio and the equality check).

Settings: prototypes and dedup with ``--k`` clusters (``--big-k`` at ``--big-n``), pseudo-labels
k = 100 with the neighbour head fitted on 20,000 rows for 10 epochs (the fit is the same on both
paths; the map over all rows is what streams), density with 10 neighbours among the default
reference (all rows up to 250,000, a seeded sample beyond), dedup at eps = 0.05.

Run: ``python bench/scale.py`` (about 20 minutes on 2 cores; ``--big-n 0`` skips the 10M part,
``--n 0`` the side-by-side part). With ``--work DIR`` the stores are kept there and reused by the
next run with the same settings.
Prints a table and writes ``bench/results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from selfprune.io.atomic import write_json_atomic

HERE = Path(__file__).resolve().parent
METRICS = ("prototypes", "pseudo-labels", "density", "dedup")
EPS = 0.05


def make_store(path: Path, n: int, dim: int, centres: int, seed: int, chunk_rows: int = 65_536) -> np.ndarray:
    """Write the float16 store; returns the planted group of every row (-1: none).

    A complete store of the same settings left in ``--work`` by an earlier run is reused, with
    its planted groups (``<store>.groups.npy``), instead of being written again."""
    from selfprune.io.store import EmbeddingStore

    groups = path.with_name(path.name + ".groups.npy")
    if groups.is_file() and (path / "manifest.json").is_file():
        old = EmbeddingStore(path)
        if old.manifest.get("complete") and old.manifest["params"] == {"centres": centres, "seed": seed} \
                and len(old) == n and old.dim == dim:  # fmt: skip
            return np.load(groups)
    if path.exists():
        import shutil

        shutil.rmtree(path)

    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    store = EmbeddingStore.create(
        path, ids=np.arange(n, dtype=np.int64), dim=dim, encoder="synthetic", params={"centres": centres, "seed": seed},
        source={"name": "bench-scale", "n": n}, chunk_rows=chunk_rows, dtype="float16",
    )  # fmt: skip
    group = np.full(n, -1, dtype=np.int64)
    next_group = 0
    delta = np.float32(np.sqrt(EPS / 4))
    for i in store.missing_chunks():
        lo, hi = store.chunk_bounds(i)
        m = hi - lo
        v = c[rng.integers(0, centres, m)] + rng.standard_normal((m, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        # 1% of the rows: copies of an original of this chunk, each moved by a random vector of norm delta
        n_groups = m // 300
        orig = rng.choice(m // 2, size=n_groups, replace=False)
        sizes = rng.integers(1, 4, size=n_groups)  # copies per original (groups of 2 to 4)
        at = m - int(sizes.sum())
        for o, s in zip(orig, sizes, strict=True):
            noise = rng.standard_normal((s, dim), dtype=np.float32)
            noise *= delta / np.linalg.norm(noise, axis=1, keepdims=True)
            w = v[o] + noise
            v[at : at + s] = w / np.linalg.norm(w, axis=1, keepdims=True)
            group[lo + o] = group[lo + at : lo + at + s] = next_group
            next_group += 1
            at += s
        store.write_chunk(i, v)
    np.save(groups, group)
    return group


def run_case(store: str, metric: str, path: str, k: int, engine: str, out: str) -> None:
    """In a fresh process: run one metric, write its result and report time and peak memory."""
    from selfprune.engine import make_engine
    from selfprune.io.store import EmbeddingStore
    from selfprune.metrics.density import knn_density
    from selfprune.metrics.prototypes import prototypes
    from selfprune.metrics.pseudo import pseudo_labels
    from selfprune.metrics.semdedup import semdedup

    src = EmbeddingStore(store)
    x = src.to_array() if path == "memory" else src
    eng = make_engine(engine, **({"workers": 2} if engine == "ray" else {}))
    t0 = time.perf_counter()
    if metric == "prototypes":
        result = {"values": prototypes(x, k=k, seed=0, engine=eng).values}
    elif metric == "pseudo-labels":
        pl = pseudo_labels(x, k=100, seed=0, fit_rows=20_000, epochs=10, engine=eng)
        result = {"labels": pl.labels, "confidence": pl.confidence}
    elif metric == "density":
        result = {"values": knn_density(x, k=10, seed=0, engine=eng).values}
    else:
        d = semdedup(x, eps=EPS, k=k, seed=0, engine=eng)
        result = {"kept": d.kept, "removed": d.removed, "duplicate_of": d.duplicate_of}
    seconds = time.perf_counter() - t0
    eng.close()
    np.savez(out, **result)
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"seconds": seconds, "peak_rss_gb": hwm / 2**20}))


def measure(store: Path, metric: str, path: str, k: int, work: Path, engine: str = "local") -> dict:
    out = work / f"{store.name}-{metric}-{path}-{engine}.npz"
    cmd = [sys.executable, __file__, "--case", metric, "--store", str(store), "--path", path, "--k", str(k),
           "--engine", engine, "--case-out", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{metric}/{path} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(metric=metric, path=path, engine=engine, wall_seconds=time.perf_counter() - t0, result=str(out))
    return row


def side_by_side(store: Path, metric: str, k: int, work: Path, repeats: int) -> dict[str, dict]:
    """``repeats`` pairs of runs, memory and stream, the order alternating from pair to pair (so
    neither path always runs on a cache the other warmed). Each path's ``seconds`` is its median,
    ``ratio_to_memory`` the median of the per-pair ratios (each pair ran back to back)."""
    runs: dict[str, list[dict]] = {"memory": [], "stream": []}
    for r in range(repeats):
        for p in ("memory", "stream") if r % 2 == 0 else ("stream", "memory"):
            runs[p].append(measure(store, metric, p, k, work))
    pair = {}
    for p, rs in runs.items():
        times = [r["seconds"] for r in rs]
        pair[p] = {**rs[0], "seconds": float(np.median(times)), "seconds_runs": times,
                   "peak_rss_gb": max(r["peak_rss_gb"] for r in rs)}  # fmt: skip
    ratios = [s / m for s, m in zip(pair["stream"]["seconds_runs"], pair["memory"]["seconds_runs"], strict=True)]
    pair["stream"].update(ratio_to_memory=float(np.median(ratios)), pair_ratios=[round(x, 3) for x in ratios])
    return pair


def same_result(a: str, b: str) -> bool:
    with np.load(a) as za, np.load(b) as zb:
        return sorted(za.files) == sorted(zb.files) and all(np.array_equal(za[f], zb[f]) for f in za.files)


def dedup_quality(result: str, group: np.ndarray) -> dict:
    """Recall: share of the planted removals made (all but one member of each group); precision:
    share of removed rows that are planted members removed for a member of their own group."""
    with np.load(result) as z:
        removed, dup_of = z["removed"], z["duplicate_of"]
    sizes = np.bincount(group[group >= 0])
    right = int(((group[removed] >= 0) & (group[removed] == group[dup_of])).sum())
    return {"recall": right / int((sizes - 1).sum()), "precision": right / len(removed) if len(removed) else 1.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--big-n", type=int, default=10_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--centres", type=int, default=2000)
    ap.add_argument("--k", type=int, default=1000, help="clusters of prototypes and dedup at --n")
    ap.add_argument("--big-k", type=int, default=100, help="clusters of prototypes at --big-n")
    ap.add_argument("--big-dedup-k", type=int, default=1000, help="clusters of dedup at --big-n")
    ap.add_argument("--metrics", default=",".join(METRICS))
    ap.add_argument("--big-metrics", default="prototypes,pseudo-labels")
    ap.add_argument("--repeats", type=int, default=1, help="memory/stream pairs per metric at --n (median)")
    ap.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--ray-metrics", default="prototypes", help="metrics also run on the ray engine at --n")
    ap.add_argument("--work", default=None, help="folder for the stores (default: a temporary one)")
    ap.add_argument("--out", default=str(HERE / "results" / "scale.json"))
    # one measured case, in its own process
    ap.add_argument("--case", default=None)
    ap.add_argument("--store", default=None)
    ap.add_argument("--path", default="stream")
    ap.add_argument("--engine", default="local")
    ap.add_argument("--case-out", default=None)
    a = ap.parse_args()
    if a.case:
        run_case(a.store, a.case, a.path, a.k, a.engine, a.case_out)
        return

    tmp = tempfile.TemporaryDirectory(prefix="selfprune-scale-") if a.work is None else None
    work = Path(a.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    rows, checks = [], {}
    t0 = time.perf_counter()
    small = work / f"store-{a.n}"
    if a.n:
        group = make_store(small, a.n, a.dim, a.centres, seed=0)
        print(f"{a.n:,} x {a.dim} float16 store ready in {time.perf_counter() - t0:.0f} s", flush=True)
    for metric in a.metrics.split(",") if a.n and a.metrics else ():
        pair = side_by_side(small, metric, a.k, work, a.repeats)
        same = same_result(pair["memory"]["result"], pair["stream"]["result"])
        checks[f"{metric} identical (memory vs stream)"] = same
        for p in ("memory", "stream"):
            pair[p].update(n=a.n, k=a.k, us_per_example=1e6 * pair[p]["seconds"] / a.n)
            rows.append(pair[p])
        if metric == "dedup":
            pair["stream"].update(dedup_quality(pair["stream"]["result"], group))
        print(f"{metric}: memory {pair['memory']['seconds']:.1f} s, stream {pair['stream']['seconds']:.1f} s "
              f"(x{pair['stream']['ratio_to_memory']:.2f}; pairs {pair['stream']['pair_ratios']}), "
              f"identical: {same}", flush=True)  # fmt: skip
    for metric in a.ray_metrics.split(",") if a.ray and a.n and a.ray_metrics else ():
        local = next((r for r in rows if r["metric"] == metric and r["path"] == "stream"), None)
        ray = measure(small, metric, "stream", a.k, work, engine="ray")
        ray.update(n=a.n, k=a.k, us_per_example=1e6 * ray["seconds"] / a.n)
        if local is not None:
            ray["ratio_to_local"] = ray["seconds"] / local["seconds"]
            checks[f"{metric} identical (ray vs local)"] = same_result(ray["result"], local["result"])
        rows.append(ray)
        print(f"{metric} on ray (2 workers): {ray['seconds']:.1f} s", flush=True)
    if a.big_n:
        big = work / f"store-{a.big_n}"
        t1 = time.perf_counter()
        big_group = make_store(big, a.big_n, a.dim, a.centres, seed=1)
        size = sum(f.stat().st_size for f in big.iterdir())
        print(f"{a.big_n:,} x {a.dim} float16 store ({size / 1e9:.1f} GB) ready in {time.perf_counter() - t1:.0f} s",
              flush=True)  # fmt: skip
        for metric in a.big_metrics.split(","):
            k = a.big_dedup_k if metric == "dedup" else a.big_k
            r = measure(big, metric, "stream", k, work)
            r.update(n=a.big_n, k=k, us_per_example=1e6 * r["seconds"] / a.big_n, store_gb=size / 1e9)
            if metric == "dedup":
                r.update(dedup_quality(r["result"], big_group))
            rows.append(r)
            print(f"{metric} at {a.big_n:,}: {r['seconds']:.0f} s, peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"out-of-core scoring, {a.dim}-d float16 stores")
    for col in ("metric", "n", "k", "path", "engine", "s", "us/example", "x memory", "peak RSS GB"):
        table.add_column(col, justify="right")
    for r in rows:
        ratio = r.get("ratio_to_memory", r.get("ratio_to_local"))
        table.add_row(r["metric"], f"{r['n']:,}", str(r["k"]), r["path"], r["engine"], f"{r['seconds']:.1f}",
                      f"{r['us_per_example']:.2f}", "" if ratio is None else f"{ratio:.2f}",
                      f"{r['peak_rss_gb']:.2f}")  # fmt: skip
    Console().print(table)
    for name, ok in checks.items():
        print(f"{name}: {ok}")
    for r in rows:
        r.pop("result")
    doc = {"settings": {k: v for k, v in vars(a).items() if not k.startswith("case")}, "rows": rows, "checks": checks,
           "cpu_count": os.cpu_count()}  # fmt: skip
    write_json_atomic(a.out, doc)
    print(f"wrote {a.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

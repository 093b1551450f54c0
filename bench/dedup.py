"""Semantic dedup at scale: time and memory vs faiss clustering, recall/precision of planted groups.

Synthetic data: N unit vectors in D dimensions drawn around ``--centres`` random directions (so the
k-means is not trivial), of which ``--dup-frac`` are planted near-copies: groups of 2 to 5 members
whose pairwise cosine is about ``1 - eps/4`` (well inside ``eps``), while unrelated vectors sit at
cosine ~0.5. Each measured path runs in a fresh subprocess that loads the array and reports its peak
resident memory (``VmHWM``), so faiss' own allocations count:

* ``load``: just load the array (the floor: interpreter + libraries + the array itself),
* ``faiss``: spherical k-means with faiss (same k, niter, 256 points per centroid) + assigning
  all N,
* ``semdedup``: :func:`selfprune.metrics.semdedup.semdedup` end to end, on the default kernel
  (bfloat16 or fp32 candidate products with the exact re-check, chosen by calibration),
* ``semdedup-fp32``: the same with ``SELFPRUNE_KERNEL=fp32`` (faiss k-means and fp32 products, the
  behaviour of earlier versions).

Run: ``python bench/dedup.py --n 1000000 --dim 384 --k 1000`` (about 1.5 GB of embeddings, a few
minutes on 2 cores). Prints a table and writes ``bench/results/dedup.json``.
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

HERE = Path(__file__).resolve().parent


def make_data(n: int, dim: int, centres: int, dup_frac: float, eps: float, seed: int):
    """(x float32 (n, dim) unit rows, group (n,) int: -1 = no planted group, else group number)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = np.empty((n, dim), dtype=np.float32)
    group = np.full(n, -1, dtype=np.int64)
    # planted groups take the last rows; their originals come from the same generator
    n_dup_rows = int(n * dup_frac)
    sizes = []
    total = 0
    while total < n_dup_rows:
        s = int(rng.integers(2, 6))
        sizes.append(s)
        total += s
    n_plain = n - total
    step = 65536
    for a in range(0, n_plain, step):
        b = min(a + step, n_plain)
        noise = rng.normal(size=(b - a, dim)).astype(np.float32) / np.sqrt(dim)
        v = c[rng.integers(0, centres, b - a)] + noise
        x[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    # each group: an original plus noise of norm sqrt(eps/4): pairwise cosine ~ 1 - eps/4
    delta = np.sqrt(eps / 4)
    pos = n_plain
    sizes = np.asarray(sizes)
    originals = c[rng.integers(0, centres, len(sizes))] + rng.normal(size=(len(sizes), dim)).astype(
        np.float32
    ) / np.sqrt(dim)
    originals /= np.linalg.norm(originals, axis=1, keepdims=True)
    reps = np.repeat(np.arange(len(sizes)), sizes)
    for a in range(0, len(reps), step):
        r = reps[a : a + step]
        noise = rng.normal(size=(len(r), dim)).astype(np.float32)
        noise *= delta / np.linalg.norm(noise, axis=1, keepdims=True)
        v = originals[r] + noise
        x[pos + a : pos + a + len(r)] = v / np.linalg.norm(v, axis=1, keepdims=True)
        group[pos + a : pos + a + len(r)] = r
    perm = rng.permutation(n)
    return x[perm], group[perm]


def _quality(group: np.ndarray, removed: np.ndarray, dup_of: np.ndarray) -> dict:
    """A planted group of m members should lose exactly m - 1 of them, each to its own group."""
    in_group = group >= 0
    removable = int(in_group.sum() - len(np.unique(group[in_group])))
    rem_group = group[removed]
    true_pos = int(((rem_group >= 0) & (group[dup_of] == rem_group)).sum())
    kept = np.ones(len(group), dtype=bool)
    kept[removed] = False
    per_group = np.bincount(group[in_group & kept], minlength=group.max() + 1)
    return {
        "planted_removable": removable,
        "removed": int(len(removed)),
        "recall": true_pos / removable if removable else 1.0,
        "precision": true_pos / len(removed) if len(removed) else 1.0,
        "groups_with_exactly_one_kept": float(np.mean(per_group == 1)),
    }


# ------------------------------------------------------------------ measured paths (subprocess)


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes (VmHWM: reset by exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(path: str, what: str, k: int, eps: float, niter: int, seed: int) -> None:
    if what == "semdedup-fp32":
        os.environ["SELFPRUNE_KERNEL"] = "fp32"
    x = np.load(path)
    rss_loaded = _peak_rss()
    out: dict = {"path": what, "rss_after_load": rss_loaded}
    c0 = time.process_time()  # CPU seconds of all threads: steadier than wall time on a busy box
    t0 = time.perf_counter()
    if what == "faiss":
        import faiss

        km = faiss.Kmeans(x.shape[1], k, niter=niter, spherical=True, seed=seed, verbose=False)
        km.train(x)  # faiss subsamples 256 points per centroid itself
        t1 = time.perf_counter()
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(km.centroids)
        for a in range(0, len(x), 16384):
            index.search(x[a : a + 16384], 1)
        out["train_s"] = t1 - t0
        out["assign_s"] = time.perf_counter() - t1
    elif what in ("semdedup", "semdedup-fp32", "semdedup-within"):
        sys.path.insert(0, str(HERE.parent / "src"))
        from selfprune.metrics.semdedup import semdedup

        first = {}

        def tick(done: int, total: int) -> None:
            first.setdefault("t", time.perf_counter())

        cross = what != "semdedup-within"
        r = semdedup(x, eps=eps, k=k, seed=seed, niter=niter, cross_check=cross, progress=tick)
        out["plan_s"] = first.get("t", time.perf_counter()) - t0
        out["greedy_s"] = time.perf_counter() - first.get("t", t0)
        np.save(f"{path}.{what}.removed.npy", r.removed)
        np.save(f"{path}.{what}.dupof.npy", r.duplicate_of)
        out["largest_cluster"] = r.meta["largest_cluster"]
    out["seconds"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    out["peak_rss"] = _peak_rss()
    print(json.dumps(out))


def _run(path: Path, what: str, args) -> dict:
    cmd = [
        sys.executable, __file__, "--child", what, "--data", str(path),
        "--k", str(args.k), "--eps", str(args.eps), "--niter", str(args.niter),
        "--seed", str(args.seed),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{what} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--eps", type=float, default=0.05)
    p.add_argument("--niter", type=int, default=20)
    p.add_argument("--centres", type=int, default=2000)
    p.add_argument("--dup-frac", type=float, default=0.05, help="rows in planted groups (fraction)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "dedup.json")
    p.add_argument(
        "--child", choices=["load", "faiss", "semdedup", "semdedup-fp32", "semdedup-within"], help=argparse.SUPPRESS
    )
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.data, args.child, args.k, args.eps, args.niter, args.seed)
        return

    with tempfile.TemporaryDirectory(prefix="selfprune-bench-") as tmp:
        path = Path(tmp) / "x.npy"
        t0 = time.perf_counter()
        x, group = make_data(args.n, args.dim, args.centres, args.dup_frac, args.eps, args.seed)
        np.save(path, x)
        array_bytes = x.nbytes
        del x
        gen_s = time.perf_counter() - t0
        paths = ("load", "faiss", "semdedup", "semdedup-fp32", "semdedup-within")
        runs = {what: _run(path, what, args) for what in paths}
        quality = {
            w: _quality(
                group, np.load(f"{path}.{w}.removed.npy"), np.load(f"{path}.{w}.dupof.npy")
            )
            for w in ("semdedup", "semdedup-fp32", "semdedup-within")
        }
        same = all(
            np.array_equal(np.load(f"{path}.semdedup.{a}.npy"), np.load(f"{path}.semdedup-fp32.{a}.npy"))
            for a in ("removed", "dupof")
        )

    f, s, sw = runs["faiss"], runs["semdedup"], runs["semdedup-within"]
    q = quality["semdedup"]
    result = {
        "n": args.n, "dim": args.dim, "k": args.k, "eps": args.eps, "niter": args.niter,
        "dup_frac": args.dup_frac, "seed": args.seed, "cpu_count": os.cpu_count(),
        "array_gb": array_bytes / 1e9, "generate_s": gen_s,
        "faiss_train_s": f["train_s"], "faiss_assign_s": f["assign_s"],
        "faiss_total_s": f["seconds"],
        "semdedup_total_s": s["seconds"], "semdedup_plan_s": s["plan_s"],
        "semdedup_greedy_s": s["greedy_s"],
        "time_ratio_semdedup_over_faiss": s["seconds"] / f["seconds"],
        "added_over_clustering": s["seconds"] / f["seconds"] - 1.0,
        "faiss_cpu_s": f["cpu_s"], "semdedup_cpu_s": s["cpu_s"],
        "cpu_ratio_semdedup_over_faiss": s["cpu_s"] / f["cpu_s"],
        "within_cluster_only_total_s": sw["seconds"], "within_cluster_only_cpu_s": sw["cpu_s"],
        "peak_rss_gb": {w: r["peak_rss"] / 1e9 for w, r in runs.items()},
        "peak_over_array": {w: r["peak_rss"] / array_bytes for w, r in runs.items()},
        "semdedup_extra_over_load_gb": (s["peak_rss"] - runs["load"]["peak_rss"]) / 1e9,
        **q,
        "within_cluster_only": quality["semdedup-within"],
        "fp32_kernel": quality["semdedup-fp32"],
        "fp32_kernel_total_s": runs["semdedup-fp32"]["seconds"],
        "time_ratio_fp32_kernel_over_faiss": runs["semdedup-fp32"]["seconds"] / f["seconds"],
        "same_groups_as_fp32_kernel": same,
        "largest_cluster": s["largest_cluster"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"dedup bench: N={args.n:,} x {args.dim}, k={args.k}, eps={args.eps}")
    cols = ("path", "wall s", "vs faiss", "CPU s", "vs faiss", "peak RSS GB", "peak / array")
    for col in cols:
        t.add_column(col, justify="right")
    for w in paths:
        r = runs[w]
        t.add_row(
            w, f"{r['seconds']:.1f}", "" if w == "load" else f"{r['seconds'] / f['seconds']:.2f}x",
            f"{r['cpu_s']:.1f}", "" if w == "load" else f"{r['cpu_s'] / f['cpu_s']:.2f}x",
            f"{r['peak_rss'] / 1e9:.2f}", f"{r['peak_rss'] / array_bytes:.2f}",
        )
    c = Console()
    c.print(t)
    c.print(
        f"faiss: train {f['train_s']:.1f}s + assign {f['assign_s']:.1f}s; semdedup: plan "
        f"{s['plan_s']:.1f}s + greedy {s['greedy_s']:.1f}s "
        f"(largest cluster {s['largest_cluster']:,})"
    )
    for w, qq in quality.items():
        c.print(
            f"{w}: planted {qq['planted_removable']:,} removable, removed {qq['removed']:,}; "
            f"recall {qq['recall']:.4f}, precision {qq['precision']:.4f}, "
            f"groups with exactly one kept {qq['groups_with_exactly_one_kept']:.4f}"
        )
    c.print(f"same removed rows and duplicate-of as the fp32 kernel: {same}")
    c.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

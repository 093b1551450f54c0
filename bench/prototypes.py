"""Prototype scoring at scale: selfprune vs raw faiss vs scikit-learn, measured side by side.

Writes N x D clustered, L2-normalised float32 embeddings to a temporary .npy, then runs each path
in a fresh subprocess (so peak RSS is its own), interleaved over ``--repeats`` rounds:

- ``faiss``: faiss.Kmeans(spherical) train on the same default sample + IndexFlatIP search of all rows;
- ``selfprune``: ``selfprune.prototypes(x, k)`` (sample, fit, chunked nearest-centroid map) on the
  default kernel (bfloat16 or fp32 candidates with the exact re-check, chosen by calibration);
- ``selfprune-fp32``: the same with ``SELFPRUNE_KERNEL=fp32`` (faiss products, no re-check);
- ``check`` (not timed): on centroids fitted by selfprune, the rows whose nearest centroid differs
  between the kernel and faiss's fp32 search, and the largest score difference;
- ``sklearn`` / ``faiss-sub``: scikit-learn KMeans vs faiss on a subsample (sklearn is too slow for all N).

Prints a table and writes bench/results/prototypes.json. Times are best-of-repeats wall seconds.

    python bench/prototypes.py --n 1000000 --dim 384 --k 1000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_data(path: Path, n: int, dim: int, clusters: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for lo in range(0, n, 100_000):
        m = min(100_000, n - lo)
        x = centres[rng.integers(0, clusters, m)] + 0.5 * rng.normal(size=(m, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo : lo + m] = x
    out.flush()


def child(path: str, mode: str, k: int, sub: int, seed: int) -> dict:
    x = np.load(path)
    if mode == "check":
        return check(x, k, seed)
    if mode == "selfprune-fp32":
        import os

        os.environ["SELFPRUNE_KERNEL"] = "fp32"
    t0 = time.perf_counter()
    if mode == "faiss":
        import faiss

        km = faiss.Kmeans(x.shape[1], k, niter=20, seed=seed, spherical=True, max_points_per_centroid=256)
        km.train(x)
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(km.centroids)
        sims, _ = index.search(x, 1)
        values = 1.0 - sims[:, 0]
    elif mode in ("selfprune", "selfprune-fp32"):
        import selfprune

        values = selfprune.prototypes(x, k=k, seed=seed).values
    elif mode in ("sklearn", "faiss-sub"):
        xs = x[np.random.default_rng(seed).choice(len(x), size=min(sub, len(x)), replace=False)]
        t0 = time.perf_counter()
        if mode == "sklearn":
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=k, n_init=1, max_iter=20, random_state=seed).fit(
                xs / np.linalg.norm(xs, axis=1, keepdims=True)
            )
            values = km.transform(xs).min(axis=1)
        else:
            import faiss

            km = faiss.Kmeans(xs.shape[1], k, niter=20, seed=seed, spherical=True, max_points_per_centroid=256)
            km.train(xs)
            values = 1.0 - (xs @ km.centroids.T).max(axis=1)
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - t0
    return {
        "mode": mode,
        "seconds": seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "mean_score": float(np.mean(values)),
    }


def check(x: np.ndarray, k: int, seed: int) -> dict:
    """Kernel vs faiss fp32 on the same centroids: rows assigned differently, largest score gap."""
    from selfprune.engine import sample_rows
    from selfprune.metrics._kernel import active_kernel, nearest
    from selfprune.metrics._kmeans import faiss_search, fit_centroids

    cents = fit_centroids(sample_rows(x, k * 256, seed=seed), k=k, seed=seed)
    sims, lab = nearest(x, cents)
    fs, fl = faiss_search(x, cents, 1)
    differ = np.flatnonzero(lab[:, 0] != fl[:, 0])
    exact = np.einsum("nd,nd->n", x[differ].astype(np.float64), cents[fl[differ, 0]].astype(np.float64))
    return {
        "mode": "check",
        "kernel": active_kernel(),
        "rows": len(x),
        "rows_assigned_differently": int(len(differ)),
        "exact_gap_where_they_differ": float((sims[differ, 0] - exact).max()) if len(differ) else 0.0,
        "max_abs_score_diff": float(np.abs(sims[:, 0] - fs[:, 0].astype(np.float64)).max()),
        "seconds": 0.0,
        "peak_rss_bytes": 0,
    }


def _ratio(name: str, best: dict, a: str, b: str, key: str) -> dict:
    return {name: best[a][key] / best[b][key]} if a in best and b in best else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--sklearn-subsample", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--paths", default="faiss,selfprune,selfprune-fp32,sklearn,faiss-sub", help="comma-separated paths to run"
    )
    ap.add_argument("--child", nargs=5, metavar=("PATH", "MODE", "K", "SUB", "SEED"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "prototypes.json"))
    args = ap.parse_args()
    if args.child:
        path, mode, k, sub, seed = args.child
        print(json.dumps(child(path, mode, int(k), int(sub), int(seed))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.npy"
        make_data(data, args.n, args.dim, args.clusters, args.seed)
        array_bytes = args.n * args.dim * 4
        best: dict[str, dict] = {}
        checked = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--child", str(data), "check", str(args.k), "0", str(args.seed)],
                capture_output=True, text=True, check=True,
            ).stdout.strip().splitlines()[-1]
        )  # fmt: skip
        for _ in range(args.repeats):
            for mode in args.paths.split(","):
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    str(data),
                    mode,
                    str(args.k),
                    str(args.sklearn_subsample),
                    str(args.seed),
                ]
                res = json.loads(
                    subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                )
                if mode not in best or res["seconds"] < best[mode]["seconds"]:
                    best[mode] = res
    result = {
        "n": args.n,
        "dim": args.dim,
        "k": args.k,
        "repeats": args.repeats,
        "sklearn_subsample": args.sklearn_subsample,
        "array_bytes": array_bytes,
        "runs": best,
        **_ratio("selfprune_over_faiss_time", best, "selfprune", "faiss", "seconds"),
        **_ratio("selfprune_fp32_over_faiss_time", best, "selfprune-fp32", "faiss", "seconds"),
        "check": checked,
        **_ratio("sklearn_over_faiss_time_on_subsample", best, "sklearn", "faiss-sub", "seconds"),
        **{f"{m}_peak_over_array": r["peak_rss_bytes"] / array_bytes for m, r in best.items()},
    }
    print(f"{'path':<12}{'seconds':>10}{'peak RSS / array':>18}")
    for mode, r in best.items():
        print(f"{mode:<12}{r['seconds']:>10.2f}{r['peak_rss_bytes'] / array_bytes:>18.2f}")
    if "selfprune_over_faiss_time" in result:
        print(
            f"selfprune ({checked['kernel']} kernel) / faiss time: {result['selfprune_over_faiss_time']:.3f} "
            f"(target <= 0.6); selfprune peak / array: {result['selfprune_peak_over_array']:.2f} (target <= 1.5)"
        )
    print(
        f"same centroids, kernel vs faiss fp32: {checked['rows_assigned_differently']} of {checked['rows']:,} rows "
        f"assigned differently (exact similarity gained there: {checked['exact_gap_where_they_differ']:.2e}); "
        f"largest score difference {checked['max_abs_score_diff']:.2e} (target <= 1e-6)"
    )
    if "sklearn_over_faiss_time_on_subsample" in result:
        print(
            f"sklearn / faiss time on a {args.sklearn_subsample}-row subsample: "
            f"{result['sklearn_over_faiss_time_on_subsample']:.1f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

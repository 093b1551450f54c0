"""The similarity kernel on a GPU: embeddings per second, and the same answers as the CPU.

N x D clustered unit rows and k centroids (rows of the data), the nearest centroid of every row
(the assignment of prototypes, pseudo-labels and dedup), side by side in one process:

* ``faiss-cpu``: faiss ``IndexFlatIP`` search on the CPU (fp32, the plain kernel);
* ``fp32-checked``: the CPU default, faiss candidates with the exact re-check;
* ``fp32-torch@cuda`` / ``bf16@cuda``: the torch kernels with their products on the GPU, the same
  re-check on the CPU.

For each GPU kernel: rows per second, the share of time over the CPU's checked kernel, and the
rows whose assignment differs from the CPU's checked kernel (the exact answer: should be 0).
Best of ``--repeats``. Prints a table and writes ``bench/results/gpu.json``. Without a CUDA
device it prints one line saying so and exits 0 (nothing is written).

    python bench/gpu.py --n 1048576 --dim 384 --k 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kernel import clustered_rows  # noqa: E402


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_048_576)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--centres", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    a = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu.py skipped: torch sees no CUDA device (torch.cuda.is_available() is False)")
        return
    os.environ["SELFPRUNE_KERNEL_DEVICE"] = "cuda"
    from selfprune.metrics._kernel import kernel, nearest
    from selfprune.metrics._kmeans import faiss_search

    x, c = clustered_rows(a.n, a.dim, a.centres, a.k)

    def checked(name: str):
        def run():
            with kernel(name):
                return nearest(x, c)[1][:, 0]

        return run

    with kernel("fp32-torch"):
        nearest(x[:4096], c)  # CUDA context and kernels warmed up outside the timings
    runs = {
        "faiss-cpu": lambda: faiss_search(x, c, 1)[1][:, 0],
        "fp32-checked": checked("fp32-checked"),
        "fp32-torch@cuda": checked("fp32-torch"),
        "bf16@cuda": checked("bf16"),
    }
    times, labels = {}, {}
    for name, fn in runs.items():
        times[name], labels[name] = best_of(fn, a.repeats)
    ref = labels["fp32-checked"]
    rows = []
    for name in runs:
        rows.append({
            "path": name,
            "seconds": round(times[name], 4),
            "rows_per_second": round(a.n / times[name]),
            "vs_fp32_checked": round(times[name] / times["fp32-checked"], 4),
            "rows_differing_from_exact": int(np.sum(labels[name] != ref)),
        })  # fmt: skip
    device = torch.cuda.get_device_name(0)
    print(f"nearest centroid, {a.n:,} x {a.dim}, k = {a.k:,}; GPU: {device}; CPU threads: {torch.get_num_threads()}")
    print("| path | time | rows/s | vs fp32-checked | rows differing from exact |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['path']} | {r['seconds']:.3f} s | {r['rows_per_second']:,} | {r['vs_fp32_checked']:.3f}x | "
              f"{r['rows_differing_from_exact']} |")  # fmt: skip
    result = {"setting": vars(a) | {"gpu": device, "cpu_threads": torch.get_num_threads()}, "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

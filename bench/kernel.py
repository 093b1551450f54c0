"""The similarity kernel, side by side: faiss's search against the re-checked kernels.

N x D clustered unit rows and k centroids (rows of the data), the nearest centroid of every row:

* ``faiss``: faiss ``IndexFlatIP`` search (fp32, the plain kernel);
* ``fp32-checked``: faiss's top-2 as candidates, rows too close to call rescored in float64;
* ``bf16`` / ``fp16``: a bfloat16 / float16 product (torch) as candidates, the same re-check;
* ``gemm-fp32`` / ``gemm-bf16`` / ``gemm-fp16``: the bare torch products, for the ceiling.

For each checked kernel: rows whose assignment differs from faiss's and from the float64
reference, and the share of rows the re-check had to rescore. Best of ``--repeats``, in one process,
interleaved. Prints a table and writes ``bench/results/kernel.json``.

    python bench/kernel.py --n 262144 --dim 384 --k 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHECKED = ("fp32-checked", "bf16", "fp16")


def clustered_rows(n: int, dim: int, centres: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit rows around ``centres`` random centres (noise 0.5), and ``k`` of them as centroids."""
    rng = np.random.default_rng(seed)
    mid = rng.normal(size=(centres, dim)).astype(np.float32)
    x = mid[rng.integers(0, centres, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.ascontiguousarray(x[rng.choice(n, k, replace=False)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=262_144)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--centres", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "kernel.json"))
    a = ap.parse_args()

    import torch

    from selfprune.metrics._kernel import _candidates, kernel, nearest
    from selfprune.metrics._kmeans import faiss_search

    x, c = clustered_rows(a.n, a.dim, a.centres, a.k)
    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    xb, cb = xt.bfloat16(), ct.bfloat16()
    xh, ch = xt.half(), ct.half()

    labels: dict[str, np.ndarray] = {}

    def run(name: str):
        if name == "faiss":
            labels[name] = faiss_search(x, c, 1)[1][:, 0]
        elif name in CHECKED:
            with kernel(name):
                labels[name] = nearest(x, c)[1][:, 0]
        elif name == "gemm-fp32":
            xt @ ct.T
        elif name == "gemm-fp16":
            xh @ ch.T
        else:
            xb @ cb.T

    names = ("faiss", *CHECKED, "gemm-fp32", "gemm-bf16", "gemm-fp16")
    best = dict.fromkeys(names, float("inf"))
    for name in names:  # warm up
        run(name)
    for _ in range(a.repeats):
        for name in names:
            t0 = time.perf_counter()
            run(name)
            best[name] = min(best[name], time.perf_counter() - t0)

    # the float64 reference and the share of rows each window holds more than one centroid
    ref = np.empty(a.n, dtype=np.int64)
    c64 = c.astype(np.float64)
    for lo in range(0, a.n, 8192):
        s = x[lo : lo + 8192].astype(np.float64) @ c64.T
        ref[lo : lo + 8192] = np.argmax(s, axis=1)
    rescored = {}
    for kind in CHECKED:
        hits = 0
        for lo in range(0, a.n, 8192):
            s, beta = _candidates(x[lo : lo + 8192], c, "fp32" if kind == "fp32-checked" else kind)
            mx = s.max(dim=1).values.double()
            hits += int(((s.double() >= (mx - 2 * beta)[:, None]).sum(dim=1) > 1).sum())
        rescored[kind] = hits / a.n
    rows = []
    for name in names:
        row = {"path": name, "seconds": best[name], "x_faiss": best[name] / best["faiss"]}
        if name in CHECKED:
            row.update(
                differ_from_faiss=int((labels[name] != labels["faiss"]).sum()),
                differ_from_float64=int((labels[name] != ref).sum()),
                rows_rescored=rescored[name],
            )
        rows.append(row)
    faiss_vs_ref = int((labels["faiss"] != ref).sum())

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"nearest of {a.k} centroids for {a.n:,} x {a.dim} rows ({os.cpu_count()} cores)")
    for col in ("path", "s", "x faiss", "differ from faiss", "differ from float64", "rows rescored"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(r["path"], f"{r['seconds']:.3f}", f"{r['x_faiss']:.2f}", str(r.get("differ_from_faiss", "")),
                  str(r.get("differ_from_float64", "")),
                  f"{100 * r['rows_rescored']:.2f}%" if "rows_rescored" in r else "")  # fmt: skip
    Console().print(t)
    print(f"faiss itself differs from the float64 reference on {faiss_vs_ref} rows")
    print("the GPU path is measured by bench/gpu.py")
    doc = {"settings": vars(a), "rows": rows, "faiss_differs_from_float64": faiss_vs_ref, "cpu_count": os.cpu_count()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

"""GraNd throughput: vectorised per-sample gradient norms (torch.func) vs a naive per-example loop.

Usage: python bench/grand.py [--n 512] [--naive-n 128] [--model small-cnn] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from selfprune.evaluate.models import as_model_input, build_model
from selfprune.io.atomic import write_json_atomic
from selfprune.io.sources import load_source
from selfprune.metrics.grand import grand_values


def naive(model, x, y):
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for i in range(len(x)):
        loss = torch.nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        out.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--naive-n", type=int, default=128)
    ap.add_argument("--model", default="small-cnn")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_source("fashion-mnist", split="train")
    x = torch.from_numpy(as_model_input(ds.items[: args.n]))
    y = torch.from_numpy(ds.labels[: args.n])
    model = build_model(args.model, (1, 28, 28), 10, seed=0)
    grand_values(model, x[:8], y[:8])  # warm-up
    rows = {}
    t0 = time.perf_counter()
    fast = grand_values(model, x, y)
    rows["vmap (full network)"] = args.n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    grand_values(model, x, y, last_layer=True)
    rows["closed form (last layer)"] = args.n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    slow = naive(model, x[: args.naive_n], y[: args.naive_n])
    rows["naive loop (full network)"] = args.naive_n / (time.perf_counter() - t0)
    max_rel = float(np.max(np.abs(fast[: args.naive_n] - slow) / slow))
    base = rows["naive loop (full network)"]
    print(f"{args.model}, Fashion-MNIST 28x28, {args.threads} threads; max rel. diff vmap vs naive {max_rel:.1e}")
    print(f"{'method':<28}{'examples/s':>12}{'vs naive':>10}")
    for k, v in rows.items():
        print(f"{k:<28}{v:>12.1f}{v / base:>9.1f}x")
    write_json_atomic(Path(__file__).parent / "results" / "grand.json", {
        "model": args.model, "threads": args.threads, "n": args.n, "naive_n": args.naive_n,
        "examples_per_s": rows, "speedup_vmap": rows["vmap (full network)"] / base,
        "speedup_last_layer": rows["closed form (last layer)"] / base, "max_rel_diff": max_rel,
    })  # fmt: skip


if __name__ == "__main__":
    main()

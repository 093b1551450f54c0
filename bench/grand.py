"""GraNd throughput: per-sample gradient norms by torch.func vmap, by the layer-wise single
backward, and in closed form for the last layer, vs a naive per-example backward loop.

Methods alternate in rounds within one run, so machine load affects them alike.
Usage: python bench/grand.py [--n 512] [--naive-n 128] [--rounds 4] [--model small-cnn]
                             [--threads 2]
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
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_source("fashion-mnist", split="train")
    x = torch.from_numpy(as_model_input(ds.items[: args.n]))
    y = torch.from_numpy(ds.labels[: args.n])
    model = build_model(args.model, (1, 28, 28), 10, seed=0)
    grand_values(model, x[:8], y[:8])  # warm-up
    # interleave the methods in rounds so that all see the same machine load
    names = ("vmap (full network)", "layer-wise (full network)", "closed form (last layer)",
             "naive loop (full network)")  # fmt: skip
    totals = {k: [0.0, 0] for k in names}
    layer_parts = []
    fast_parts, slow_parts = [], []
    step, nstep = args.n // args.rounds, args.naive_n // args.rounds
    for r in range(args.rounds):
        xs, ys = x[r * step : (r + 1) * step], y[r * step : (r + 1) * step]
        t0 = time.perf_counter()
        fast_parts.append(grand_values(model, xs, ys, method="vmap"))
        totals["vmap (full network)"][0] += time.perf_counter() - t0
        totals["vmap (full network)"][1] += len(xs)
        t0 = time.perf_counter()
        layer_parts.append(grand_values(model, xs, ys, method="layerwise"))
        totals["layer-wise (full network)"][0] += time.perf_counter() - t0
        totals["layer-wise (full network)"][1] += len(xs)
        t0 = time.perf_counter()
        grand_values(model, xs, ys, last_layer=True)
        totals["closed form (last layer)"][0] += time.perf_counter() - t0
        totals["closed form (last layer)"][1] += len(xs)
        t0 = time.perf_counter()
        slow_parts.append(naive(model, xs[:nstep], ys[:nstep]))
        totals["naive loop (full network)"][0] += time.perf_counter() - t0
        totals["naive loop (full network)"][1] += nstep
    rows = {k: cnt / sec for k, (sec, cnt) in totals.items()}
    fast = np.concatenate([f[:nstep] for f in fast_parts])
    slow = np.concatenate(slow_parts)
    layer = np.concatenate([f[:nstep] for f in layer_parts])
    max_rel = float(np.max(np.abs(fast - slow) / slow))
    max_rel_layer = float(np.max(np.abs(layer - slow) / slow))
    base = rows["naive loop (full network)"]
    print(f"{args.model}, Fashion-MNIST 28x28, {args.threads} threads; "
          f"max rel. diff vs naive: vmap {max_rel:.1e}, layer-wise {max_rel_layer:.1e}")
    print(f"{'method':<28}{'examples/s':>12}{'vs naive':>10}")
    for k, v in rows.items():
        print(f"{k:<28}{v:>12.1f}{v / base:>9.1f}x")
    write_json_atomic(Path(__file__).parent / "results" / "grand.json", {
        "model": args.model, "threads": args.threads, "n": args.n, "naive_n": args.naive_n,
        "rounds": args.rounds,
        "examples_per_s": rows, "speedup_vmap": rows["vmap (full network)"] / base,
        "speedup_last_layer": rows["closed form (last layer)"] / base, "max_rel_diff": max_rel,
        "speedup_layerwise": rows["layer-wise (full network)"] / base,
        "max_rel_diff_layerwise": max_rel_layer,
    })  # fmt: skip


if __name__ == "__main__":
    main()

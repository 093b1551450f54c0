"""Spearman correlations between the training-dynamics scores (and the self-supervised prototype
score) on a Fashion-MNIST subset.

Usage: python bench/dynamics_spearman.py [--subset 2000] [--epochs 4] [--n-seeds 2] [--mem-runs 6]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from selfprune.dynamics.train import proxy_dynamics, proxy_memorization
from selfprune.io.atomic import write_json_atomic
from selfprune.io.sources import load_source


def prototype_scores(images: np.ndarray, k: int, seed: int) -> np.ndarray:
    from selfprune.embed import get_encoder
    from selfprune.metrics.prototypes import prototypes

    enc = get_encoder("pixels").fit(images, seed=seed)
    return prototypes(enc.encode(images), k=k, seed=seed).values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--n-seeds", type=int, default=2)
    ap.add_argument("--mem-runs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_source("fashion-mnist", split="train")
    x, y = ds.items[: args.subset], ds.labels[: args.subset]
    t0 = time.perf_counter()
    res = proxy_dynamics(x, y, model="small-cnn", epochs=args.epochs, n_seeds=args.n_seeds, seed=0,
                         grand="both")
    mem = proxy_memorization(x, y, model="small-cnn", runs=args.mem_runs, epochs=args.epochs,
                             seed=0)
    cols = {name: res.table[name].values for name in res.table}
    cols["memorization"] = mem.values
    cols["prototypes"] = prototype_scores(x, k=10, seed=0)
    elapsed = time.perf_counter() - t0
    names = list(cols)
    rho = np.array([[spearmanr(cols[a], cols[b]).statistic for b in names] for a in names])
    short = [n[:7] for n in names]
    print(f"Fashion-MNIST first {args.subset} train images, small-cnn, {args.epochs} epochs x "
          f"{args.n_seeds} seeds, memorization {args.mem_runs} runs on 70% ({elapsed:.0f} s)")
    print(f"{'':<13}" + "".join(f"{s:>8}" for s in short))
    for i, n in enumerate(names):
        print(f"{n:<13}" + "".join(f"{v:>8.2f}" for v in rho[i]))
    print("train accuracy per seed:", [round(a, 3) for a in res.train_accuracy])
    write_json_atomic(Path(__file__).parent / "results" / "dynamics_spearman.json", {
        "subset": args.subset, "epochs": args.epochs, "seeds": args.n_seeds,
        "mem_runs": args.mem_runs, "names": names, "spearman": rho, "seconds": elapsed,
        "train_accuracy": res.train_accuracy,
    })  # fmt: skip


if __name__ == "__main__":
    main()

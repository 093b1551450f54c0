"""The target recipe: how much a short small-cnn run varies over seeds, with and without a decay.

Fashion-MNIST, a fixed random half of the training set (30,000 images, drawn once with seed 7) and
all 10,000 test images; the built-in ``small-cnn`` trainer for 3 epochs, training seeds 0..2, under
three recipes: Adam at 1e-3 with a constant rate (the earlier default), Adam at 1e-3 with a cosine
decay to zero over the run, and Adam at 3e-3 with the decay (the default). The subset is the same
for every run, so the spread is the training noise alone: the noise a pruning comparison has to
rise above.

Prints a table and writes ``bench/results/trainer_recipe.json``. About 5 minutes on 2 cores with
``--jobs 2`` (one thread per run).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

RECIPES = {
    "constant, lr 1e-3": {"schedule": "constant", "lr": 1e-3},
    "cosine, lr 1e-3": {"schedule": "cosine", "lr": 1e-3},
    "cosine, lr 3e-3 (default)": {"schedule": "cosine", "lr": 3e-3},
}


def _run(job: tuple[str, int, int]) -> dict:
    recipe, seed, epochs = job
    from selfprune.evaluate.trainers import get_trainer
    from selfprune.io.sources import load_source

    tr, te = load_source("fashion-mnist", split="train"), load_source("fashion-mnist", split="test")
    at = np.sort(np.random.default_rng(7).choice(len(tr), len(tr) // 2, replace=False))
    x, y = np.asarray(tr.take(slice(0, len(tr))))[at], tr.labels[at]
    xt, yt = np.asarray(te.take(slice(0, len(te)))), te.labels
    t0 = time.perf_counter()
    res = get_trainer("small-cnn", epochs=epochs, **RECIPES[recipe])(x, y, xt, yt, seed=seed)
    return {"recipe": recipe, "seed": seed, "test_accuracy": res.test_accuracy, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path("bench/results/trainer_recipe.json"))
    args = ap.parse_args()
    from selfprune.io.atomic import write_json_atomic

    jobs = [(r, s, args.epochs) for r in RECIPES for s in range(args.seeds)]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(_run, jobs))
    print(f"Fashion-MNIST, a fixed half (30,000), small-cnn {args.epochs} epochs, seeds 0..{args.seeds - 1}")
    print("| recipe | test accuracy % (mean ± std over seeds) | per seed |")
    print("|---|---:|---|")
    summary = []
    for r in RECIPES:
        acc = np.array([row["test_accuracy"] for row in rows if row["recipe"] == r]) * 100
        summary.append({"recipe": r, **RECIPES[r], "mean": float(acc.mean()), "std": float(acc.std()),
                        "accuracy": acc.tolist()})  # fmt: skip
        print(f"| {r} | {acc.mean():.2f} ± {acc.std():.2f} | {', '.join(f'{a:.2f}' for a in acc)} |")
    write_json_atomic(args.json, {"setting": vars(args) | {"json": str(args.json)}, "rows": rows,
                                  "summary": summary})  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

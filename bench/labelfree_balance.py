"""Where the label-free gain at keep 0.5 comes from: balance alone, or balance and difficulty.

Fashion-MNIST (full 60,000 / 10,000), the ``small-cnn`` target trained 3 epochs on every subset,
keep 0.5, five seeds (more than ``labelfree.py``'s three, to resolve differences under a point).
Every arm keeps 30,000 images:

- ``random``: the baseline;
- ``random-balanced``: random within each pseudo-class, each keeping its share (the control for
  balance without difficulty);
- ``labelfree-el2n-balanced``: the default label-free pipeline (``labelfree.py``), keep hard within
  each pseudo-class;
- ``labelfree-el2n-balanced-double-end``: the same after ``--cutoff auto`` drops the hardest beta;
- ``labelfree-mix-balanced``: the mean rank of label-free EL2N and prototype distance, balanced;
- ``supervised-el2n``: EL2N from the same proxy recipe on the true labels (the ceiling), keep hard.

Prints the table and writes ``bench/results/labelfree_balance.json``; training runs are cached
under ``--out`` so an interrupted run resumes. About 20 minutes on 2 cores with ``--jobs 2``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from labelfree import curve_rows, fashion_mnist, indicator, labelfree_scores, table  # noqa: E402

from selfprune.dynamics.train import proxy_dynamics  # noqa: E402
from selfprune.embed import get_encoder  # noqa: E402
from selfprune.io.atomic import write_json_atomic  # noqa: E402
from selfprune.metrics import prototypes  # noqa: E402
from selfprune.scores import Scores  # noqa: E402
from selfprune.select import auto_cutoff, select  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-labelfree"))
    ap.add_argument("--json", type=Path, default=Path("bench/results/labelfree_balance.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    x, y, ids, xt, yt = fashion_mnist()
    n, m = len(ids), len(ids) // 2

    feats = get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x)
    pl, res = labelfree_scores(x, feats, ids, seed=0)
    lf = Scores(ids, res.table["el2n"].values, "labelfree-el2n", {})
    proto = prototypes(feats, k=100, ids=ids, encoder="pixels")
    mix = Scores(ids, -(lf.ranks() + Scores(ids, proto.values, "p", {}).ranks()).astype(np.float64), "mix", {})
    sup = proxy_dynamics(x, y, ids=ids, model="small-cnn", epochs=2, n_seeds=1, metrics=("el2n",), grand="none",
                         seed=0)  # fmt: skip
    sup_s = Scores(ids, sup.table["el2n"].values, "supervised-el2n", {})
    cut = auto_cutoff(res.table["aum_flagged"])
    print(cut.reason)

    def balanced(s: Scores, name: str, **kw) -> Scores:
        return indicator(s, select(s, m, labels=pl.labels, balance_classes=True, **kw).ids, name, {})

    arms = [
        balanced(lf, "random-balanced", policy="random", seed=0),
        balanced(lf, "labelfree-el2n-balanced", policy="hard"),
        balanced(lf, "labelfree-el2n-balanced-double-end", policy="hard", cutoff=cut.beta),
        balanced(mix, "labelfree-mix-balanced", policy="hard"),
        sup_s,
    ]
    rows = curve_rows([(0.5, arms)], x, y, xt, yt, ids, seeds=args.seeds, trainer="small-cnn",
                      settings={"epochs": 3}, cache=args.out / "cache", jobs=args.jobs, log=print)  # fmt: skip
    text, entries = table(rows, f"Fashion-MNIST, keep 0.5, small-cnn 3 epochs, {args.seeds} seeds")
    print(text)
    write_json_atomic(args.json, {
        "setting": {"keep": 0.5, "seeds": args.seeds, "target": "small-cnn", "target_epochs": 3, "n_train": n},
        "pseudo_labels": {**pl.meta, "purity_vs_true_labels": pl.purity(y)},
        "cutoff_auto": cut.beta, "curve": entries, "wall_seconds": round(time.perf_counter() - t0, 1),
    })  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

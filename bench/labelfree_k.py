"""How many pseudo-classes? The label-free score's accuracy against random, by cluster count.

``labelfree_routes.py`` chose k by how well label-free EL2N correlates with true-label EL2N; this
measures what matters, the accuracy of a target trained on the pruned set. Fashion-MNIST (full
60,000 / 10,000), pixel-PCA embeddings, pseudo-labels with the neighbour refinement at
k = 10 / 25 / 50 / 100 (clustering seed 0), the default proxy (small-cnn, 2 epochs) on each, and at
keep 0.5 the hardest half by label-free EL2N, plain and balanced over the pseudo-labels; the
``small-cnn`` target (default recipe) for 3 epochs, seeds 0..2, against random at the same seed.
Purity against the true labels is printed for reference and used for nothing.

Shares ``labelfree.py``'s training cache (``--out``), so the random runs and the k = 10 arms are
not trained again after it. Prints a table and writes ``bench/results/labelfree_k.json``. About
15 minutes on 2 cores with ``--jobs 2`` after ``labelfree.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from labelfree import curve_rows, fashion_mnist, indicator, table  # noqa: E402

from selfprune.dynamics.train import labelfree_dynamics  # noqa: E402
from selfprune.embed import get_encoder  # noqa: E402
from selfprune.io.atomic import write_json_atomic  # noqa: E402
from selfprune.metrics.pseudo import pseudo_labels  # noqa: E402
from selfprune.scores import Scores  # noqa: E402
from selfprune.select import select  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ks", default="10,25,50,100")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-labelfree"))
    ap.add_argument("--json", type=Path, default=Path("bench/results/labelfree_k.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    x, y, ids, xt, yt = fashion_mnist()
    m = len(ids) // 2
    feats = get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x)
    arms, clusters = [], []
    for k in (int(v) for v in args.ks.split(",")):
        pl = pseudo_labels(feats, ids=ids, k=k, seed=0)
        res = labelfree_dynamics(x, pl, ids=ids, seed=0, metrics=("el2n",))
        lf = Scores(ids, res.table["el2n"].values, f"labelfree-el2n-k{k}", {})
        bal = select(lf, m, policy="hard", labels=pl.labels, balance_classes=True)
        arms += [lf, indicator(lf, bal.ids, f"labelfree-el2n-k{k}-balanced", {})]
        clusters.append({"k": k, "purity_vs_true_labels": pl.purity(y), "sizes": pl.counts().tolist()})
        print(f"k = {k}: purity {pl.purity(y):.3f} (reference only)", flush=True)
    rows = curve_rows([(0.5, arms)], x, y, xt, yt, ids, seeds=args.seeds, trainer="small-cnn",
                      settings={"epochs": 3}, cache=args.out / "cache", jobs=args.jobs, log=print)  # fmt: skip
    text, entries = table(rows, f"Fashion-MNIST, keep 0.5, small-cnn 3 epochs, {args.seeds} seeds, by k")
    print(text)
    write_json_atomic(args.json, {
        "setting": {"keep": 0.5, "seeds": args.seeds, "target": "small-cnn", "target_epochs": 3, "n_train": len(ids)},
        "pseudo_labels": clusters, "curve": entries, "wall_seconds": round(time.perf_counter() - t0, 1),
    })  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""Where the supervised score's gain comes from: which classes it keeps, or which examples inside them.

A diagnostic for the gap between label-free and supervised pruning on Fashion-MNIST. Supervised
EL2N (the ``small-cnn`` proxy, 2 epochs, true labels, as in ``bench/labelfree.py``) keeps the
hardest examples, and so keeps some classes almost whole and others hardly at all. Two arms,
built with the true labels, split its gain in two:

- ``supervised-class-shares-random``: the *number* kept of each class is supervised EL2N's, the
  examples inside each class are random (seeded): the gain from *which classes* are kept;
- ``supervised-el2n-class-balanced``: every class keeps its share of the budget, the hardest by
  supervised EL2N inside each: the gain from *which examples inside a class* are kept;

beside ``supervised-el2n`` itself and random at equal size. No label-free score can see the
first part unless its clusters are the classes. It also prints the share of each class that
supervised and label-free hard selection keep at each ``--keeps``. Same target, recipe, seeds and
cache as ``bench/labelfree.py`` (so arms measured there are not trained again). Prints a table and
writes ``bench/results/labelfree_gap.json``; about 9 minutes on 2 cores with ``--jobs 2`` when the
random and supervised runs are already in the cache, about 15 without.
"""

from __future__ import annotations

import time

import numpy as np
from labelfree import fashion_args, fashion_with_ceiling, indicator, run_fashion_curve

from selfprune.dynamics.train import labelfree_dynamics
from selfprune.embed import get_encoder
from selfprune.metrics.pseudo import pseudo_labels
from selfprune.scores import Scores
from selfprune.select import select


def class_shares_random(s: Scores, y: np.ndarray, m: int, seed: int) -> np.ndarray:
    """Ids of a random subset with, per class, as many examples as the hard selection of ``s`` keeps."""
    hard = select(s, m, policy="hard")
    pos = np.flatnonzero(np.isin(s.ids, hard.ids))
    counts = np.bincount(y[pos], minlength=int(y.max()) + 1)
    rng = np.random.default_rng(seed)
    kept = [rng.choice(np.flatnonzero(y == c), size=int(n), replace=False) for c, n in enumerate(counts) if n]
    return s.ids[np.sort(np.concatenate(kept))]


def kept_shares(s: Scores, y: np.ndarray, m: int) -> list[float]:
    """Per class, the share of its examples that the hard selection of ``m`` keeps."""
    pos = np.flatnonzero(np.isin(s.ids, select(s, m, policy="hard").ids))
    return (np.bincount(y[pos], minlength=int(y.max()) + 1) / np.bincount(y)).round(3).tolist()


def main() -> None:
    args = fashion_args(__doc__.splitlines()[0], "bench/results/labelfree_gap.json").parse_args()
    t_start = time.perf_counter()
    keeps = [float(k) for k in args.keeps.split(",")]
    fashion, sup_s = fashion_with_ceiling()
    x, y, ids = fashion[:3]
    n = len(ids)
    feats = get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x)
    pl = pseudo_labels(feats, ids=ids, seed=0)
    lf = labelfree_dynamics(x, pl, ids=ids, seed=0, metrics=("el2n",)).table["el2n"]
    results: dict = {"setting": vars(args) | {"target": "small-cnn", "target_epochs": 3}, "kept_share_per_class": {}}
    arms_by_keep = []
    for k in keeps:
        m = int(round(k * n))
        mix = class_shares_random(sup_s, y, m, seed=0)
        bal = select(sup_s, m, policy="hard", labels=y, balance_classes=True)
        arms_by_keep.append((k, [
            sup_s,
            indicator(sup_s, mix, "supervised-class-shares-random", {"classes": "supervised EL2N's counts"}),
            indicator(sup_s, bal.ids, "supervised-el2n-class-balanced", {"balance": "true labels"}),
        ]))  # fmt: skip
        shares = {"supervised-el2n": kept_shares(sup_s, y, m), "labelfree-el2n": kept_shares(lf, y, m)}
        results["kept_share_per_class"][str(k)] = shares
        for name, v in shares.items():
            print(f"keep {k}: {name:16s} keeps of each class {v}", flush=True)
    title = "Fashion-MNIST, small-cnn 3 epochs: the supervised gain split by class"
    run_fashion_curve(args, arms_by_keep, fashion, results, title, t_start)


if __name__ == "__main__":
    main()

"""What label-free scoring costs against one full-data training run of the target, side by side.

Fashion-MNIST, all 60,000 training images, one thread for every step, in one process, the steps
interleaved over ``--rounds`` rounds (the best of each is reported):

- embed: pixel PCA (64-d, fitted on 20,000 images) of every image;
- pseudo-labels: the default (k-means + neighbour refinement, k by the rule), and with 4 restarts
  kept for proxy heads (``restarts=4, combine="heads"``);
- proxy: the default label-free proxy (small-cnn, 2 epochs, EL2N against the pseudo-labels), on
  one clustering and with a head per restart;
- target: one full-data training run of the ``small-cnn`` target, 3 epochs (its default recipe).

Every round must give the same scores bit for bit (checked). Prints a table and writes
``bench/results/labelfree_cost.json``. About 8 minutes on 2 cores with 2 rounds.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
from labelfree import fashion_mnist, timed

from selfprune.dynamics.train import labelfree_dynamics
from selfprune.embed import get_encoder
from selfprune.evaluate.trainers import get_trainer
from selfprune.io.atomic import write_json_atomic
from selfprune.metrics.pseudo import pseudo_labels


def one_round(x, y, ids, xt, yt, heads: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    t: dict[str, float] = {}
    feats, t["embed"] = timed(lambda: get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x))
    pl, t["pseudo-labels"] = timed(pseudo_labels, feats, ids=ids, seed=0)
    res, t["proxy"] = timed(labelfree_dynamics, x, pl, ids=ids, seed=0, metrics=("el2n",))
    ph, t[f"pseudo-labels, {heads} restarts kept"] = timed(
        pseudo_labels, feats, ids=ids, seed=0, restarts=heads, combine="heads"
    )
    rh, t[f"proxy, {heads} heads"] = timed(labelfree_dynamics, x, ph, ids=ids, seed=0, metrics=("el2n",))
    _, t["target (small-cnn, 3 epochs, all data)"] = timed(get_trainer("small-cnn", epochs=3), x, y, xt, yt, seed=0)
    return t, {"single": res.table["el2n"].values, "heads": rh.table["el2n"].values}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--json", type=Path, default=Path("bench/results/labelfree_cost.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    x, y, ids, xt, yt = fashion_mnist()
    rounds, first = [], None
    for r in range(args.rounds):
        t, scores = one_round(x, y, ids, xt, yt, args.heads)
        print(f"round {r + 1}:", {k: round(v, 2) for k, v in t.items()}, flush=True)
        rounds.append(t)
        if first is None:
            first = scores
        else:
            for name, v in scores.items():
                if not np.array_equal(v, first[name]):
                    raise SystemExit(f"round {r + 1}: the {name} scores differ from round 1")
    best = {k: min(t[k] for t in rounds) for k in rounds[0]}
    target = best["target (small-cnn, 3 epochs, all data)"]
    single = best["embed"] + best["pseudo-labels"] + best["proxy"]
    multi = best["embed"] + best[f"pseudo-labels, {args.heads} restarts kept"] + best[f"proxy, {args.heads} heads"]
    totals = {"label-free scoring (embed + pseudo-labels + proxy)": single,
              f"label-free scoring with {args.heads} heads": multi}  # fmt: skip
    lines = ["| step | seconds (best of rounds) | vs one target run |", "|---|---:|---:|"]
    for k, v in {**best, **totals}.items():
        lines.append(f"| {k} | {v:.2f} | {v / target:.2f}x |")
    print("\n".join(lines))
    write_json_atomic(args.json, {
        "setting": vars(args) | {"threads": 1, "cpu": platform.processor() or platform.machine()},
        "rounds": rounds, "best": best, "totals": totals,
        "ratio_to_target": {k: v / target for k, v in totals.items()}, "identical_across_rounds": True,
    })  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""Label-free pruning with pseudo-labels voted by several clusterings, against single clusterings.

One clustering of the embeddings depends much on its seed (``bench/labelfree_selftrain.py``:
purity 0.52 to 0.66 and Spearman with supervised EL2N 0.29 to 0.42 over four seeds), and every
earlier curve used seed 0. This measures what that does to accuracy, and what the vote of four
restarts (``pseudo_labels(restarts=4)``, ``selfprune pseudo-labels --restarts 4``) gives:

- ``labelfree-el2n-seed<s>``: the default pipeline (pixel PCA, pseudo-labels with the neighbour
  refinement, k by the rule, small-cnn proxy 2 epochs, EL2N against the pseudo-labels) with
  clustering seed s, keep hard;
- ``labelfree-el2n-restarts4``: the same on the consensus of four restarts (seed 0), keep hard;
- ``supervised-el2n``: the same proxy on the true labels (the ceiling); ``random``.

Fashion-MNIST, all 60,000 / 10,000, the ``small-cnn`` target 3 epochs on every subset, seeds
0..2, keep 0.3 / 0.5 / 0.7, paired with random by seed. Before the curve, one thread each and one
after another in this process: the pseudo-labels with 1 and with 4 restarts, the proxy, and one
full-data training run of the target (the cost bar). Training runs share the cache of
``bench/labelfree.py`` (same ``--out``). Prints a table and writes
``bench/results/labelfree_consensus.json``. About 40 minutes on 2 cores with ``--jobs 2``.
"""

from __future__ import annotations

import time

from labelfree import fashion_args, fashion_with_ceiling, run_fashion_curve, timed
from scipy.stats import spearmanr

from selfprune.dynamics.train import labelfree_dynamics
from selfprune.embed import get_encoder
from selfprune.evaluate.trainers import get_trainer
from selfprune.metrics.pseudo import pseudo_labels
from selfprune.scores import Scores


def main() -> None:
    ap = fashion_args(__doc__.splitlines()[0], "bench/results/labelfree_consensus.json")
    ap.add_argument("--cluster-seeds", default="0,1,3", help="clustering seeds of the single-clustering arms")
    ap.add_argument("--restarts", type=int, default=4)
    args = ap.parse_args()
    t_start = time.perf_counter()
    keeps = [float(k) for k in args.keeps.split(",")]
    fashion, sup_s = fashion_with_ceiling()
    x, y, ids, xt, yt = fashion
    feats, t_embed = timed(lambda: get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x))
    results: dict = {"setting": vars(args) | {"target": "small-cnn", "target_epochs": 3}, "routes": []}
    cost = {"embed (pixel PCA)": round(t_embed, 2)}
    arms = [sup_s]
    routes = [(f"seed{s}", {"seed": int(s)}) for s in args.cluster_seeds.split(",")]
    routes.append((f"restarts{args.restarts}", {"seed": 0, "restarts": args.restarts}))
    for name, kw in routes:
        pl, t_pl = timed(pseudo_labels, feats, ids=ids, **kw)
        res, t_proxy = timed(labelfree_dynamics, x, pl, ids=ids, seed=kw["seed"], metrics=("el2n",))
        lf = Scores(ids, res.table["el2n"].values, f"labelfree-el2n-{name}", res.table["el2n"].meta)
        route = {"arm": lf.name, **kw, "purity": pl.purity(y), "mean_agreement": pl.meta.get("mean_agreement"),
                 "spearman_vs_supervised_el2n": float(spearmanr(lf.values, sup_s.values)[0]),
                 "pseudo_labels_seconds": round(t_pl, 2), "proxy_seconds": round(t_proxy, 2)}  # fmt: skip
        results["routes"].append(route)
        print(route, flush=True)
        arms.append(lf)
    target = get_trainer("small-cnn", epochs=3)
    _, t_target = timed(target, x, y, xt, yt, seed=0)
    single, voted = results["routes"][0], results["routes"][-1]
    for r in (single, voted):
        total = t_embed + r["pseudo_labels_seconds"] + r["proxy_seconds"]
        cost[f"label-free scoring, {r['arm']}"] = round(total, 2)
        cost[f"ratio to one full-data target run, {r['arm']}"] = round(total / t_target, 3)
    cost["one full-data training run of the target"] = round(t_target, 2)
    results["cost_seconds"] = cost
    print("cost (s, one thread each):", cost, flush=True)
    title = "Fashion-MNIST, small-cnn 3 epochs: single clusterings against the vote of restarts"
    run_fashion_curve(args, [(k, list(arms)) for k in keeps], fashion, results, title, t_start)


if __name__ == "__main__":
    main()

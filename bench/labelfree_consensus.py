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

from labelfree import fashion_args, labelfree_routes, pixel_route_setup, run_fashion_curve, scoring_cost, timed

from selfprune.evaluate.trainers import get_trainer


def main() -> None:
    ap = fashion_args(__doc__.splitlines()[0], "bench/results/labelfree_consensus.json")
    ap.add_argument("--cluster-seeds", default="0,1,3", help="clustering seeds of the single-clustering arms")
    ap.add_argument("--restarts", type=int, default=4)
    args = ap.parse_args()
    t_start, keeps, fashion, sup_s, feats, t_embed, results = pixel_route_setup(args)
    x, y, ids, xt, yt = fashion
    routes = [(f"seed{s}", {"seed": int(s)}) for s in args.cluster_seeds.split(",")]
    routes.append((f"restarts{args.restarts}", {"seed": 0, "restarts": args.restarts}))
    def describe(pl):
        return {"purity": pl.purity(y), "mean_agreement": pl.meta.get("mean_agreement")}

    arms, results["routes"] = labelfree_routes(routes, x, ids, feats, sup_s, describe)
    _, t_target = timed(get_trainer("small-cnn", epochs=3), x, y, xt, yt, seed=0)
    results["cost_seconds"] = cost = scoring_cost([results["routes"][0], results["routes"][-1]], t_embed, t_target)
    print("cost (s, one thread each):", cost, flush=True)
    title = "Fashion-MNIST, small-cnn 3 epochs: single clusterings against the vote of restarts"
    run_fashion_curve(args, [(k, [sup_s, *arms]) for k in keeps], fashion, results, title, t_start)


if __name__ == "__main__":
    main()

"""Label-free pruning with one proxy that learns several clusterings at once, a head each.

The label-free gain depends on the clustering seed (``bench/labelfree_consensus.py``: +0.27,
-0.21 and +0.30 points over random at keep 0.5 with seeds 0, 1 and 3), and the vote of several
restarts prunes no better than one. Here the restarts are not merged into one labelling: one proxy
trains on all of them, a head per restart on a shared network, and each example's score is the
mean of its EL2N ranks over the heads (``pseudo_labels(restarts=R, combine="heads")``,
``selfprune pseudo-labels --restarts R --combine heads``):

- ``labelfree-el2n-seed<s>``: the default pipeline (pixel PCA, pseudo-labels with the neighbour
  refinement, k by the rule, small-cnn proxy 2 epochs, EL2N against the pseudo-labels) with
  clustering seed s, keep hard;
- ``labelfree-el2n-heads<R>-seed<s>``: the same proxy with R heads, on R restarts drawn from
  seed s (restart 0 is the single clustering of seed s), keep hard;
- ``supervised-el2n``: the same proxy on the true labels (the ceiling); ``random``.

Fashion-MNIST, all 60,000 / 10,000, the ``small-cnn`` target 3 epochs on every subset, seeds
0..2, keep 0.3 / 0.5 / 0.7, paired with random by seed. Before the curve, one thread each and one
after another in this process: each route's pseudo-labels and proxy, and one full-data training
run of the target (the cost bar). Training runs share the cache of ``bench/labelfree.py`` (same
``--out``). Prints a table and writes ``bench/results/labelfree_heads.json``. About 30 minutes on
2 cores with ``--jobs 2``.
"""

from __future__ import annotations

from labelfree import fashion_args, labelfree_routes, pixel_route_setup, run_fashion_curve, scoring_cost, timed

from selfprune.evaluate.trainers import get_trainer
from selfprune.metrics.pseudo import PseudoLabels


def head_purities(pl: PseudoLabels, y) -> list[float]:
    """Purity of every restart's clusters against the true labels (reference only)."""
    if pl.restart_labels is None:
        return [pl.purity(y)]
    return [PseudoLabels(pl.ids, lab, pl.confidence, pl.k).purity(y) for lab in pl.restart_labels]


def main() -> None:
    ap = fashion_args(__doc__.splitlines()[0], "bench/results/labelfree_heads.json")
    ap.add_argument("--cluster-seeds", default="0,1", help="clustering seeds of the single and the heads arms")
    ap.add_argument("--heads", type=int, default=4, help="restarts, one proxy head each")
    args = ap.parse_args()
    t_start, keeps, fashion, sup_s, feats, t_embed, results = pixel_route_setup(args)
    x, y, ids, xt, yt = fashion
    routes = []
    for s in (int(v) for v in args.cluster_seeds.split(",")):
        routes.append((f"seed{s}", {"seed": s}))
        routes.append((f"heads{args.heads}-seed{s}", {"seed": s, "restarts": args.heads, "combine": "heads"}))
    arms, results["routes"] = labelfree_routes(
        routes, x, ids, feats, sup_s, lambda pl: {"purity": head_purities(pl, y)}
    )
    _, t_target = timed(get_trainer("small-cnn", epochs=3), x, y, xt, yt, seed=0)
    results["cost_seconds"] = cost = scoring_cost(results["routes"][:2], t_embed, t_target)
    print("cost (s, one thread each):", cost, flush=True)
    title = "Fashion-MNIST, small-cnn 3 epochs: single clusterings against one proxy with a head per restart"
    run_fashion_curve(args, [(k, [sup_s, *arms]) for k in keeps], fashion, results, title, t_start)


if __name__ == "__main__":
    main()

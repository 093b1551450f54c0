"""Label-free pruning by embedding: pixel PCA against the contrastive encoder trained on all 60,000.

The route of ``bench/labelfree.py`` (pseudo-labels -> a small-cnn proxy trained 2 epochs on them ->
EL2N against them) with the pseudo-labels taken from each embedding in turn:

- ``pixels``: pixel PCA (64-d, fitted on 20,000 images), the default;
- ``contrastive``: the built-in contrastive encoder trained on all 60,000 training images
  (``selfprune embed --encoder contrastive``: 8 epochs, 128-d; the store is kept under ``--out`` and
  reused, a killed run resumes). Its linear probe is reported (labels used only there).

For each embedding and each ``--ks`` (``auto``: the default k rule): purity of the pseudo-labels
against the true labels and Spearman of label-free EL2N with supervised EL2N (reference only), then
keep-hard and class-balanced keep-hard at keep 0.3 / 0.5 / 0.7, plus prototypes (k = 100) on the
embedding and the mean rank of the embeddings' label-free scores (first k of each; ``selfprune
combine``). Each subset is trained with the ``small-cnn`` target 3 epochs over seeds 0..2 and
paired with random by seed. Training runs share the cache of ``bench/labelfree.py`` (same
``--out``), so arms measured there are not trained again.

Prints a table and writes ``bench/results/labelfree_encoders.json``. About 30 minutes on 2 cores
with ``--jobs 2`` once the contrastive store exists (training it takes about 5 more).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from audit_fashion import subset
from labelfree import fashion_args, fashion_with_ceiling, indicator, run_fashion_curve
from scipy.stats import spearmanr

from selfprune.dynamics.train import labelfree_dynamics
from selfprune.embed import get_encoder
from selfprune.embed.run import embed
from selfprune.io.atomic import write_json_atomic
from selfprune.io.sources import load_source
from selfprune.metrics import prototypes
from selfprune.metrics.pseudo import pseudo_labels
from selfprune.scores import Scores, mean_rank
from selfprune.select import select


def embeddings(name: str, x: np.ndarray, xt: np.ndarray, y: np.ndarray, yt: np.ndarray, out: Path) -> dict:
    """(train, test) embeddings of one encoder, its time and linear probe."""
    from selfprune.evaluate.trainers import get_trainer

    t0 = time.perf_counter()
    if name == "pixels":
        enc = get_encoder("pixels", dim=64).fit(x[:20_000], seed=0)
        feats = enc.encode(x)
    else:
        enc = get_encoder(name, threads=2)
        train = subset(load_source("fashion-mnist", split="train"), len(x))
        feats = embed(train, enc, out / name, fit_rows=len(x), seed=0).to_array()
    secs = time.perf_counter() - t0
    test = np.concatenate([enc.encode(xt[lo : lo + 500]) for lo in range(0, len(xt), 500)])
    probe = get_trainer("linear", max_iter=500)(feats, y, test, yt, seed=0).test_accuracy
    return {"features": feats, "seconds": secs, "linear_probe": probe}


def main() -> None:
    ap = fashion_args(__doc__.splitlines()[0], "bench/results/labelfree_encoders.json")
    ap.add_argument("--encoders", default="pixels,contrastive")
    ap.add_argument("--ks", default="auto,50", help="numbers of pseudo-classes (auto: the default rule)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    keeps = [float(k) for k in args.keeps.split(",")]
    fashion, sup_s = fashion_with_ceiling()
    x, y, ids, xt, yt = fashion
    n = len(ids)
    results: dict = {"setting": vars(args) | {"target": "small-cnn", "target_epochs": 3}, "routes": []}
    arms_by_keep: dict[float, list[Scores]] = {k: [sup_s] for k in keeps}
    firsts: list[Scores] = []
    for name in args.encoders.split(","):
        emb = embeddings(name, x, xt, y, yt, args.out / "embed")
        print(f"{name}: embedded in {emb['seconds']:.0f} s, linear probe {emb['linear_probe']:.3f}", flush=True)
        proto = prototypes(emb["features"], k=100, ids=ids, encoder=name)
        proto_s = Scores(ids, proto.values, f"prototypes-{name}", proto.meta)
        route = {"encoder": name, "embed_seconds": round(emb["seconds"], 1), "linear_probe": emb["linear_probe"],
                 "prototypes_spearman": float(spearmanr(proto_s.values, sup_s.values)[0]), "k": {}}  # fmt: skip
        for k in keeps:
            arms_by_keep[k].append(proto_s)
        for ks in args.ks.split(","):
            t0 = time.perf_counter()
            pl = pseudo_labels(emb["features"], k=None if ks == "auto" else int(ks), ids=ids, seed=0)
            res = labelfree_dynamics(x, pl, ids=ids, seed=0, metrics=("el2n",))
            lf = Scores(ids, res.table["el2n"].values, f"labelfree-el2n-{name}-k{pl.k}", res.table["el2n"].meta)
            route["k"][str(pl.k)] = {
                "purity": pl.purity(y),
                "spearman_vs_supervised_el2n": float(spearmanr(lf.values, sup_s.values)[0]),
                "scoring_seconds": round(time.perf_counter() - t0, 1),
            }
            print(f"{name} k={pl.k}: purity {pl.purity(y):.3f}, Spearman with supervised EL2N "
                  f"{route['k'][str(pl.k)]['spearman_vs_supervised_el2n']:.3f}", flush=True)  # fmt: skip
            for k in keeps:
                bal = select(lf, int(round(k * n)), policy="hard", labels=pl.labels, balance_classes=True)
                arms_by_keep[k] += [lf, indicator(lf, bal.ids, f"{lf.name}-balanced", {"balance": "pseudo-labels"})]
            if ks == args.ks.split(",")[0]:
                firsts.append(lf)
        results["routes"].append(route)
        write_json_atomic(args.json, results)
    if len(firsts) > 1:  # a rank combination of the embeddings' label-free scores (first k of each)
        combo = mean_rank(firsts, name="labelfree-el2n-mean-rank")
        results["combined_spearman_vs_supervised_el2n"] = float(spearmanr(combo.values, sup_s.values)[0])
        for k in keeps:
            arms_by_keep[k].append(combo)
    title = "Fashion-MNIST, small-cnn 3 epochs: label-free routes by embedding"
    run_fashion_curve(args, sorted(arms_by_keep.items()), fashion, results, title, t_start)


if __name__ == "__main__":
    main()

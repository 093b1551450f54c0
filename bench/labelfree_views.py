"""Two views and coarser classes: can pixel PCA and EfficientNet-Lite0 together, or over-clustering
judged by groups of clusters, give a label-free score closer to supervised EL2N?

Fashion-MNIST (all 60,000 training images), the default pseudo-labels (neighbour refinement,
seed 0) and the default proxy (small-cnn, 2 epochs). No target model is trained: each route is
judged by the purity of its pseudo-labels and the Spearman correlation of its score with
supervised EL2N (the ceiling of ``bench/labelfree.py``; labels are used only for these two
figures), and, for the combinations, by the share of each class that hard selection keeps at
``--keep`` beside supervised EL2N's (*Where the gap is* in docs/labelfree.md).

- **one clustering of both views**: k-means on the concatenation of pixel PCA (64-d) and
  EfficientNet-Lite0 reduced to 64-d by PCA, each centred and L2-normalised; against each view
  alone;
- **two scores, one per view**: label-free EL2N on each view's pseudo-labels (k = 10), combined
  by the mean, the minimum, the maximum and the product of their normalised ranks. The minimum
  keeps an image as hard only when both views find it hard;
- **over-clustering, scored by groups**: pseudo-labels with k = 30 and 50 on pixel PCA (purer than
  k = 10), the proxy trained on them, and its EL2N after training computed twice: over the k
  clusters, and over groups of clusters (k-means on the cluster centroids, 10 and 5 groups,
  the proxy's probabilities summed inside each group), so that confusing two clusters of one group
  costs nothing.

Prints tables and writes ``bench/results/labelfree_views.json``. About 9 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from audit_fashion import subset
from labelfree import fashion_mnist, supervised_el2n
from labelfree_gap import kept_shares
from labelfree_selftrain import proxy_with_predictions
from scipy.stats import rankdata, spearmanr

from selfprune.dynamics.train import labelfree_dynamics
from selfprune.embed import get_encoder
from selfprune.embed.run import embed
from selfprune.evaluate.models import as_model_input
from selfprune.io.atomic import write_json_atomic
from selfprune.io.sources import load_source
from selfprune.metrics.pseudo import pseudo_labels
from selfprune.scores import Scores


def unit_rows(a: np.ndarray) -> np.ndarray:
    """``a`` centred and every row scaled to unit length."""
    a = a - a.mean(axis=0)
    return (a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def cluster_groups(features: np.ndarray, labels: np.ndarray, k: int, groups: int) -> np.ndarray:
    """For each of ``k`` clusters, its group: spherical k-means (seed 0) on the clusters' mean unit vectors."""
    import faiss

    f = unit_rows(features)
    cent = np.stack([f[labels == c].mean(axis=0) if (labels == c).any() else np.zeros(f.shape[1]) for c in range(k)])
    km = faiss.Kmeans(cent.shape[1], groups, niter=50, seed=0, spherical=True, min_points_per_centroid=1)
    km.train(cent.astype(np.float32))
    return km.index.search(cent.astype(np.float32), 1)[1][:, 0]


def shares(values: np.ndarray, ids: np.ndarray, y: np.ndarray, keep: float) -> list[float]:
    """Per class, the share of its examples that hard selection by ``values`` keeps at ``keep``."""
    return kept_shares(Scores(ids, values, "score"), y, int(round(keep * len(ids))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000, help="training images used (fewer: a smoke run)")
    ap.add_argument("--keep", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-labelfree"), help="where the embedding store is kept")
    ap.add_argument("--json", type=Path, default=Path("bench/results/labelfree_views.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    x, y, ids, _, _ = fashion_mnist(args.n, 10)
    sup = supervised_el2n(x, y, ids).values
    torch.set_num_threads(args.threads)  # the ceiling's helper sets one thread
    results: dict = {"setting": {k: str(v) for k, v in vars(args).items()},
                     "supervised_shares": shares(sup, ids, y, args.keep)}  # fmt: skip

    pix = get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x)
    enc = get_encoder("efficientnet-lite0", threads=args.threads)
    eff = embed(subset(load_source("fashion-mnist", split="train"), len(x)), enc, args.out / "embed" / enc.name,
                fit_rows=len(x), seed=0).to_array()  # fmt: skip
    from sklearn.decomposition import PCA

    eff64 = PCA(64, random_state=0).fit(eff[:20_000]).transform(eff)
    both = np.hstack([unit_rows(pix), unit_rows(eff64)])
    views = {"pixel PCA": pix, "EfficientNet-Lite0": eff, "both, concatenated": both}
    print("| clustering (k = 10) | purity |\n|---|---:|")
    plabels, results["clusterings"] = {}, []
    for name, f in views.items():
        pl = pseudo_labels(f, k=10, ids=ids, seed=0)
        plabels[name] = pl
        results["clusterings"].append({"view": name, "purity": pl.purity(y)})
        print(f"| {name} | {pl.purity(y):.3f} |", flush=True)

    ranks = {}
    for name in ("pixel PCA", "EfficientNet-Lite0"):
        lf = labelfree_dynamics(x, plabels[name], ids=ids, seed=0, metrics=("el2n",)).table["el2n"].values
        ranks[name] = rankdata(lf) / len(lf)
    a, b = ranks["pixel PCA"], ranks["EfficientNet-Lite0"]
    combos = {"pixel PCA": a, "EfficientNet-Lite0": b, "mean rank": (a + b) / 2, "minimum rank": np.minimum(a, b),
              "maximum rank": np.maximum(a, b), "product of ranks": a * b, "supervised EL2N": sup}  # fmt: skip
    print("\n| label-free EL2N | Spearman with supervised EL2N | share of each class kept at keep "
          f"{args.keep} (classes 0..9) |")  # fmt: skip
    print("|---|---:|---|")
    results["combinations"] = []
    for name, v in combos.items():
        r = {"score": name, "spearman": float(spearmanr(v, sup)[0]), "shares": shares(v, ids, y, args.keep)}
        results["combinations"].append(r)
        print(f"| {name} | {r['spearman']:.3f} | {' '.join(f'{s:.2f}' for s in r['shares'])} |", flush=True)

    print("\n| pixel PCA, k | purity | EL2N over | Spearman with supervised EL2N |\n|---:|---:|---|---:|")
    xm = torch.from_numpy(np.require(as_model_input(x), requirements="W"))
    results["over_clustering"] = []
    for k in (30, 50):
        pl = pseudo_labels(pix, k=k, ids=ids, seed=0)
        lab = pl.labels.astype(np.int64)
        recorded, p = proxy_with_predictions(torch, xm, np.arange(len(x)), lab, k, seed=0)
        rows = {"the k clusters, recorded in the last epoch": recorded,
                "the k clusters, after training": np.linalg.norm(p - np.eye(k)[lab], axis=1)}  # fmt: skip
        for g in (10, 5):
            onto = np.eye(g)[cluster_groups(pix, lab, k, g)]  # (k, g): cluster -> group
            rows[f"{g} groups of clusters, after training"] = np.linalg.norm(p @ onto - onto[lab], axis=1)
        for over, v in rows.items():
            r = {"k": k, "purity": pl.purity(y), "el2n_over": over, "spearman": float(spearmanr(v, sup)[0])}
            results["over_clustering"].append(r)
            print(f"| {k} | {r['purity']:.3f} | {over} | {r['spearman']:.3f} |", flush=True)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(args.json, results)
    print(f"\n{results['seconds']:.0f} s; wrote {args.json}")


if __name__ == "__main__":
    main()

"""Self-training and ensembles: do they make better pseudo-labels or a steadier label-free score?

Fashion-MNIST (all 60,000 training images), pixel-PCA embeddings (64-d), the default
pseudo-labels (k by the rule, neighbour refinement) and the default proxy (small-cnn, 2 epochs).
Each route is judged by the purity of the labels the last proxy trains on (against the true
labels, reference only) and the Spearman correlation of its label-free EL2N with supervised EL2N
(the ceiling of ``bench/labelfree.py``). No target model is trained.

- **noise**: supervised EL2N from a second proxy seed (how steady the ceiling itself is); the
  label-free score from each of four clustering seeds;
- **ensembles**: the mean normalised rank of the label-free scores of the first m clustering
  seeds (``sp.mean_rank``), and the mean over m proxy seeds on one clustering (``n_seeds``);
- **consensus**: the vote of the four clusterings (``consensus_labels``, what
  ``pseudo_labels(restarts=)`` returns): how much they disagree on an image (no proxy), and the
  proxy's EL2N on the majority labels;
- **self-training** (relabel by the proxy's predictions and retrain): a proxy
  trained on the pseudo-labels relabels every image by its prediction, in-sample (one proxy on all
  rows) or out-of-fold (two proxies, each on one half, labelling the other half); a fresh proxy
  trains on the new labels, and its EL2N against them is the score. Two rounds of each.

Prints a table and writes ``bench/results/labelfree_selftrain.json``. About 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from labelfree import fashion_mnist, supervised_el2n
from scipy.stats import spearmanr

from selfprune.dynamics.recorder import Recorder
from selfprune.dynamics.train import _run, labelfree_dynamics, proxy_dynamics
from selfprune.embed import get_encoder
from selfprune.evaluate.models import as_model_input
from selfprune.io.atomic import write_json_atomic
from selfprune.metrics.pseudo import consensus_labels, pseudo_labels
from selfprune.scores import Scores, mean_rank


def proxy_with_predictions(torch, xm, rows: np.ndarray, labels: np.ndarray, k: int, seed: int):
    """One run of the proxy loop of ``proxy_dynamics`` (small-cnn, its default Adam 1e-3 and batch 128,
    2 epochs) on ``xm[rows]``: its last-epoch EL2N on those rows, and its softmax over every row of
    ``xm`` after training."""
    rec = Recorder(len(rows), k, None, ids=np.arange(len(rows)))
    *_, net = _run(torch, xm[torch.from_numpy(rows)], labels, rec.ids, model="small-cnn", num_classes=k, epochs=2,
                   batch_size=128, lr=1e-3, seed=seed, rec=rec, grand_epoch=-1, progress=None, label="")  # fmt: skip
    net.eval()
    with torch.inference_mode():
        p = torch.cat([net(xm[lo : lo + 2048]).softmax(1) for lo in range(0, len(xm), 2048)]).numpy()
    return rec.values("el2n")[:, -1], p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000, help="training images used (fewer: a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench/results/labelfree_selftrain.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    x, y, ids, _, _ = fashion_mnist(args.n, 10)
    xm = torch.from_numpy(np.require(as_model_input(x), requirements="W"))
    sup = supervised_el2n(x, y, ids).values
    rows: list[dict] = []
    print("| route | proxy runs | purity of the labels (reference) | Spearman with supervised EL2N |")
    print("|---|---:|---:|---:|")

    def row(route: str, runs: float, score: np.ndarray, purity: float | None = None) -> None:
        r = {"route": route, "proxy_runs": runs, "purity": purity, "spearman": float(spearmanr(score, sup)[0]),
             "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        rows.append(r)
        pur = "" if purity is None else f"{purity:.3f}"
        print(f"| {route} | {runs:g} | {pur} | {r['spearman']:.3f} |", flush=True)

    sup1 = proxy_dynamics(x, y, ids=ids, model="small-cnn", epochs=2, n_seeds=1, metrics=("el2n",), grand="none",
                          seed=1)  # fmt: skip
    row("supervised EL2N, proxy seed 1 (the ceiling's own noise)", 1, sup1.table["el2n"].values)
    feats = get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x)
    pls, singles = [], []
    for cs in range(4):
        pl = pseudo_labels(feats, ids=ids, seed=cs)
        res = labelfree_dynamics(x, pl, ids=ids, seed=cs, metrics=("el2n",))
        pls.append(pl)
        singles.append(Scores(ids, res.table["el2n"].values, f"labelfree-el2n-seed{cs}", {}))
        row(f"label-free EL2N, clustering seed {cs}", 1, singles[-1].values, pl.purity(y))
    for m in range(2, 5):
        row(f"mean rank over clustering seeds 0..{m - 1}", m, mean_rank(singles[:m]).values)
    res = labelfree_dynamics(x, pls[0], ids=ids, seed=0, n_seeds=4, metrics=("el2n",))
    row("mean over 4 proxy seeds, clustering seed 0", 4, res.table["el2n"].values, pls[0].purity(y))

    k, start = pls[0].k, pls[0].labels
    voted, _, agreement = consensus_labels(
        np.stack([pl.labels for pl in pls]), np.stack([pl.confidence for pl in pls]), k
    )
    consensus = dataclasses.replace(pls[0], labels=voted)
    row("disagreement of the 4 clusterings (no proxy)", 0, -agreement)
    res = labelfree_dynamics(x, consensus, ids=ids, seed=0, metrics=("el2n",))
    row("label-free EL2N on the consensus of the 4 clusterings", 1, res.table["el2n"].values, consensus.purity(y))
    every = np.arange(len(y))
    half = np.random.default_rng(0).permutation(len(y))
    folds = (np.sort(half[: len(y) // 2]), np.sort(half[len(y) // 2 :]))
    for mode in ("in-sample", "out-of-fold"):
        labels, runs = start, int(mode == "in-sample")
        p = proxy_with_predictions(torch, xm, every, start, k, seed=10)[1] if mode == "in-sample" else None
        for rnd in (1, 2):
            if mode == "out-of-fold":  # each half is labelled by a proxy trained on the other half
                p = np.zeros((len(y), k), dtype=np.float32)
                for j, fold in enumerate(folds):
                    _, pf = proxy_with_predictions(torch, xm, fold, labels[fold], k, seed=10 * rnd + j)
                    p[folds[1 - j]] = pf[folds[1 - j]]
                runs += 1  # two half-size proxies cost about one full one
            labels = p.argmax(1)
            el2n, p = proxy_with_predictions(torch, xm, every, labels, k, seed=100 + rnd)
            runs += 1  # in-sample, the scoring proxy's predictions relabel the next round
            relabelled = dataclasses.replace(pls[0], labels=labels)
            row(f"self-training, {mode}, round {rnd}", runs, el2n, relabelled.purity(y))
    write_json_atomic(args.json, {"n": len(y), "k": int(k), "reference": "supervised EL2N, small-cnn 2 epochs, seed 0",
                                  "rows": rows, "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    print(f"wrote {args.json} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

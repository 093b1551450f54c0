"""Fashion-MNIST: train the contrastive encoder, embed with three encoders, probe and audit each.

Usage: python bench/audit_fashion.py [--n 10000] [--test 2000] [--out bench/results/audit_fashion]

Stage 1 embeds the first ``n`` training images with ``pixels``, ``efficientnet-lite0`` and the
default ``contrastive`` encoder (trained on those ``n`` images, checkpointed and resumable) into
embedding stores, and reports a linear probe (logistic regression, labels used only here) trained
on the ``n`` embeddings and tested on the first ``test`` test images. Stage 2 scores prototypes
(k = 10, the class count) on each store and runs ``audit`` at keep 0.5 with the labels, the raw
images (null controls), one shared supervised proxy (cross-fitted EL2N of a logistic regression on
the pixels of 5,000 labelled examples), one shared untrained network, and the other encoders'
scores (cross-encoder stability). Prints a table and
writes ``bench/results/audit_fashion.json`` (``--results``). ``--encoders contrastive --stage embed``
times and probes one encoder alone, e.g. on all 60,000 images (``--n 60000``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from selfprune.embed import get_encoder
from selfprune.embed.run import embed
from selfprune.io.sources import Dataset, load_source
from selfprune.io.store import EmbeddingStore

ENCODERS = ("pixels", "efficientnet-lite0", "contrastive")


def subset(ds: Dataset, n: int) -> Dataset:
    n = min(n, len(ds))
    return Dataset(
        name=f"{ds.name}-first{n}",
        ids=ds.ids[:n],
        items=ds.items[:n],
        modality=ds.modality,
        labels=ds.labels[:n],
        classes=ds.classes,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--test", type=int, default=2_000)
    ap.add_argument("--out", default="bench/results/audit_fashion")
    ap.add_argument("--stage", choices=["embed", "audit", "all"], default="all")
    ap.add_argument("--encoders", default=",".join(ENCODERS), help="encoders to embed with (the audit needs all three)")
    ap.add_argument("--results", default="bench/results/audit_fashion.json")
    args = ap.parse_args()
    encoders = [e for e in args.encoders.split(",") if e]
    out = Path(args.out)
    train = subset(load_source("fashion-mnist", split="train"), args.n)
    test = subset(load_source("fashion-mnist", split="test"), args.test)
    results: dict = {"n_train": len(train), "n_test": len(test), "encoders": {}}
    res_path = Path(args.results)
    if res_path.is_file():
        results = {
            **json.loads(res_path.read_text()),
            **{k: results[k] for k in ("n_train", "n_test")},
        }
    if args.stage in ("embed", "all"):
        from selfprune.evaluate.trainers import get_trainer

        for name in encoders:
            enc = get_encoder(name, threads=2) if name != "pixels" else get_encoder(name)
            t0 = time.time()
            store = embed(
                train,
                enc,
                out / name,
                fit_rows=len(train),
                seed=0,
                progress=lambda d, t, name=name: print(f"{name}: {d}/{t}", flush=True),
            )
            secs = time.time() - t0
            x_test = np.concatenate([enc.encode(test.take(slice(lo, lo + 500))) for lo in range(0, len(test), 500)])
            probe = get_trainer("linear", max_iter=500)(store.to_array(), train.labels, x_test, test.labels, seed=0)
            results["encoders"][name] = {
                "embed_seconds": round(secs, 1),
                "dim": store.dim,
                "linear_probe": probe.test_accuracy,
                "history": getattr(enc, "history", None),
            }
            print(name, results["encoders"][name], flush=True)
            res_path.write_text(json.dumps(results, indent=2))
    if args.stage in ("audit", "all"):
        from selfprune.embed.contrastive import untrained_embeddings
        from selfprune.evaluate.audit import audit, el2n_proxy
        from selfprune.metrics import prototypes

        arrays = {name: EmbeddingStore(out / name).to_array() for name in ENCODERS}
        scores = {name: prototypes(arrays[name], k=10, seed=0, encoder=name) for name in ENCODERS}
        # shared by the three audits: the supervised proxy on a labelled sample, the untrained network
        rng = np.random.default_rng(0)
        lab = np.sort(rng.choice(len(train), min(5000, len(train)), replace=False))
        proxy = np.full(len(train), np.nan)
        proxy[lab] = el2n_proxy(train.items[lab], train.labels[lab], seed=0)
        rand = untrained_embeddings(train.items, seed=1000)
        results["audit"] = {}
        for name in ENCODERS:
            t0 = time.time()
            others = {o: scores[o] for o in ENCODERS if o != name}
            rep = audit(arrays[name], scores[name], keep=0.5, k=10, labels=train.labels, inputs=train.items,
                        proxy=proxy, random_embeddings=rand, other_scores=others, seed=0)  # fmt: skip
            results["audit"][name] = {**rep.to_dict(), "seconds": round(time.time() - t0, 1)}
            print(name, rep.verdict, rep.reasons, flush=True)
            res_path.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

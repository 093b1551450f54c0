"""One call from data to a pruned data set, with no labels: ``selfprune prune`` / :func:`prune`.

The default route (``route="dynamics"``) is the label-free route with the largest measured gain
over random across images and text (docs/labelfree.md): embed the data (pixel PCA for images,
WordLlama for text, the vectors themselves for vectors), cluster the embeddings into pseudo-labels
(k-means refined so that neighbours agree, k by the documented rule), train a proxy on the
pseudo-labels (small-cnn on images, an MLP on the embeddings otherwise: ELFS-style training
dynamics) and keep the examples it finds hardest by EL2N *within each pseudo-label cluster*, every
cluster keeping its share. Over three seeds at keep 0.3 / 0.5 / 0.7 this gained -0.09 ± 0.32 /
+0.31 ± 0.11 / +0.27 ± 0.05 points over random on Fashion-MNIST (supervised EL2N: +1.08 at keep
0.5) and +0.57 ± 0.32 / +0.44 ± 0.99 / +0.64 ± 0.07 on Rotten Tomatoes. ``route="balanced-random"``
skips the proxy and keeps a random subset balanced over the pseudo-labels: cheaper, it streams,
and it measured no better than random (-0.35 ± 0.24 / +0.13 ± 0.21 / +0.08 ± 0.06 on
Fashion-MNIST). Whether either helps on *your* data is not known until a model trained on the
subset is compared with one trained on a random subset of equal size (``selfprune curve``, or
``selfprune demo --data`` when there are labels): the summary says so. The dynamics route holds
the proxy's inputs in memory (the images, or the embeddings).

Writes into ``out``: ``emb/`` (the embedding store, resumable), ``pseudo.parquet``,
``kept.parquet`` and ``kept.txt``, the pruned data (``pruned.parquet`` by default, see
:func:`selfprune.io.export.export`), ``summary.json``, ``summary.md`` and the self-contained ``report.html``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, resolve_keep, seed_int
from selfprune.errors import InvalidInputError
from selfprune.io.export import FORMATS

ENCODER_FOR = {"image": "pixels", "text": "wordllama"}
ROUTES = ("dynamics", "balanced-random")
SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl", "hf": ".hf", "imagefolder": ""}  # what export reads back


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` kept, what it chose on the way, and where it wrote it."""

    kept_ids: np.ndarray
    n_total: int
    encoder: str
    k: int
    policy: str
    reasons: tuple[str, ...]
    out: Path
    pruned_path: Path
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_total": self.n_total, "n_kept": len(self.kept_ids), "encoder": self.encoder, "k": self.k,
            "policy": self.policy, "reasons": list(self.reasons), "out": str(self.out),
            "pruned": str(self.pruned_path), "seconds": round(self.seconds, 2),
        }  # fmt: skip


def prune(data, keep: float | int, out, *, seed: SeedLike = 0, encoder: str | None = None,
          format: str = "parquet", route: str = "dynamics", progress=None) -> PruneResult:  # fmt: skip
    """Prune ``data`` (a built-in name, a path or a :class:`~selfprune.io.sources.Dataset`) to ``keep``.

    ``route``: ``dynamics`` (default; the hardest by label-free EL2N within each pseudo-label
    cluster) or ``balanced-random``
    (a random subset balanced over the pseudo-labels, no proxy); see the module docstring."""
    from selfprune.embed import get_encoder
    from selfprune.embed.run import embed
    from selfprune.io.atomic import write_json_atomic, write_text_atomic
    from selfprune.io.export import export
    from selfprune.io.sources import Dataset, load_source
    from selfprune.io.tables import write_ids, write_pseudo_labels
    from selfprune.metrics import random_scores
    from selfprune.metrics.pseudo import pseudo_labels
    from selfprune.select import select

    if format not in FORMATS:
        raise InvalidInputError(f"prune: format must be one of {', '.join(FORMATS)}, got {format!r}")
    if route not in ROUTES:
        raise InvalidInputError(f"prune: route must be one of {', '.join(ROUTES)}, got {route!r}")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    out = Path(out)
    source = data if isinstance(data, Dataset) else load_source(data)
    m = resolve_keep(keep, len(source), caller="prune")
    seed = seed_int(seed)
    name = encoder or ENCODER_FOR.get(source.modality)
    if name is None:  # vectors are their own embedding
        vectors = np.asarray(source.take(slice(0, len(source))), dtype=np.float32)
        say(f"pseudo-labels from the {len(source):,} vectors themselves")
        pl = pseudo_labels(vectors, ids=source.ids, seed=seed)
        name = "none (the vectors themselves)"
        store = None
    else:
        say(f"embed {len(source):,} examples with {name}")
        settings = {}
        if name == "pixels":  # PCA cannot have more components than rows or pixels
            pixels = int(np.prod(np.asarray(source.take(np.arange(1))).shape[1:]))
            settings["dim"] = min(64, len(source), pixels)
        store = embed(source, get_encoder(name, **settings), out / "emb", seed=seed)
        say("pseudo-labels from the embeddings")
        pl = pseudo_labels(store, seed=seed, encoder=name)
    write_pseudo_labels(out / "pseudo.parquet", pl)
    if route == "dynamics":
        from selfprune.dynamics.train import labelfree_dynamics

        say("train the proxy on the pseudo-labels (label-free training dynamics)")
        if store is None:
            inputs = vectors
        elif source.modality == "image":  # a small CNN on the images themselves
            inputs = np.asarray(source.take(slice(0, len(source))))
        else:  # an MLP on the embeddings
            inputs = store.to_array()
        res = labelfree_dynamics(inputs, pl, ids=pl.ids, seed=seed, metrics=("el2n",))
        sel = select(res.table["el2n"], m, policy="hard", labels=pl.labels, balance_classes=True)
        policy = "hardest by label-free EL2N within each pseudo-label cluster"
        why = (f"policy: the hardest by EL2N of a {res.table['el2n'].meta['model']} proxy trained on the "
               "pseudo-labels, every cluster keeping its share; measured over 3 seeds at keep 0.3 / 0.5 / 0.7 "
               "at -0.09 ± 0.32 / +0.31 ± 0.11 / +0.27 ± 0.05 points over random on Fashion-MNIST and "
               "+0.57 ± 0.32 / +0.44 ± 0.99 / +0.64 ± 0.07 on Rotten Tomatoes (docs/labelfree.md)")  # fmt: skip
    else:
        sel = select(random_scores(pl.ids, seed=seed), m, policy="random", labels=pl.labels, balance_classes=True,
                     seed=seed)  # fmt: skip
        policy = "random balanced over pseudo-labels"
        why = ("policy: random within each pseudo-label cluster, every cluster keeping its share; measured on "
               "Fashion-MNIST over 3 seeds at -0.35 ± 0.24 / +0.13 ± 0.21 / +0.08 ± 0.06 points over random at "
               "keep 0.3 / 0.5 / 0.7: no better than random (docs/labelfree.md)")  # fmt: skip
    reasons = (
        f"embedding: {name} ({source.modality} data)",
        f"pseudo-labels: k = {pl.k} clusters by the size rule, refined so that neighbours agree; no label read",
        why,
        "not checked on this data: train on the kept subset and on a random subset of the same size "
        "(selfprune curve, or selfprune demo --data with labels) before you trust it",
    )
    meta = {"pipeline": "prune", "route": route, "policy": policy, "keep": m, "seed": seed,
            "encoder": name, "k": pl.k, "n_total": len(source)}  # fmt: skip
    write_ids(out / "kept.parquet", sel.ids, meta)
    say(f"export {len(sel.ids):,} kept examples as {format}")
    pruned = out / f"pruned{SUFFIX[format]}"
    if pruned.is_dir():  # a rerun replaces its own earlier folder export (a file export is replaced atomically)
        import shutil

        shutil.rmtree(pruned)
    export(source, sel.ids, pruned, format=format, meta=meta)
    result = PruneResult(sel.ids, len(source), name, pl.k, policy, reasons, out, pruned,
                         time.perf_counter() - t0)  # fmt: skip
    write_json_atomic(out / "summary.json", result.to_dict())
    _write_html(result, source, pl, data, seed)
    write_text_atomic(out / "summary.md", "\n".join([
        f"# selfprune prune: kept {len(sel.ids):,} of {len(source):,} examples of {source.name}", "",
        *[f"- {r}" for r in reasons], "", f"Pruned data: `{pruned.name}`; kept ids: `kept.parquet`.", "",
    ]))  # fmt: skip
    return result


def _write_html(result: PruneResult, source, pseudo, data, seed: int) -> Path:
    """``report.html``: what was kept and why, the kept share per pseudo-label cluster, examples."""
    from selfprune._checks import align_ids
    from selfprune.report.html import provenance, write_report
    from selfprune.report.pages import prune_page

    at = align_ids(source.ids, pseudo.ids, caller="prune", what="data")
    prov = provenance(inputs={"--data": data if isinstance(data, str | Path) else None}, seed=seed,
                      started=time.time() - result.seconds)  # fmt: skip
    page = prune_page(result, source_name=source.name, pseudo=pseudo, take=lambda pos: source.take(at[pos]),
                      modality=source.modality, provenance=prov)  # fmt: skip
    return write_report(page, result.out)

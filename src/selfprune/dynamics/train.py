"""Proxy training for users who only want the scores: the loop behind ``selfprune dynamics``
and ``selfprune memorization``.

A small network (``build_model``: linear, mlp, small-cnn) is trained with mini-batch Adam on
shuffled batches, once per seed, with a :class:`Recorder` attached; GraNd is computed on the
network after ``grand_epoch`` epochs of each run; with ``aum_threshold=True`` two extra runs with
disjoint threshold-sample sets flag likely mislabelled examples. Same inputs and seed give the same
scores (CPU, deterministic kernels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfprune._checks import SeedLike, align_ids, as_rng, check_ids, check_int, check_labels, seed_int
from selfprune._seeds import refuse_seeds
from selfprune.dynamics.recorder import Recorder
from selfprune.dynamics.scores import DYNAMICS_METRICS, dynamics_scores
from selfprune.errors import InvalidInputError, StoreError, require
from selfprune.metrics.aum import AUMThreshold, aum_threshold, aum_values, threshold_labels
from selfprune.metrics.grand import grand_values
from selfprune.metrics.memorization import memorization, subset_masks
from selfprune.scores import Scores, ScoreTable, mean_rank

Progress = Callable[[str, int, int], None]
_RUNS_HINT = "give the number of runs as n_seeds= (their seeds derive from seed=)"
LABELFREE_DEFAULTS = {"model": "auto", "epochs": 2, "n_seeds": 1, "metrics": ("el2n", "aum", "forgetting")}
"""Proxy recipe of :func:`labelfree_dynamics`: ``auto`` = small-cnn on images, mlp on vectors;
two epochs, one run (cheaper than one 3-epoch training of the same network on all the data)."""
GRAND_CHOICES = ("none", "last", "full", "both")


@dataclass
class DynamicsResult:
    """Scores of a proxy-training run plus what produced them."""

    table: ScoreTable
    recorders: list[Recorder]
    threshold: list[AUMThreshold] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    """Per run: the training accuracy of its last epoch, each example counted when it was presented."""


def _prepare(x, labels, ids, caller: str):
    from selfprune.evaluate.models import as_model_input

    xa = np.asarray(x)
    if xa.ndim < 2 or len(xa) < 2:
        raise InvalidInputError(f"{caller}: x must be (N, ...) with N >= 2, got shape {xa.shape}")
    la = np.asarray(labels)  # (N, R): several labelings of the same rows, one head each
    cols = [check_labels(c, len(xa), caller=caller) for c in (la.T if la.ndim == 2 and la.shape[1] else [la])]
    y = cols[0] if len(cols) == 1 else np.stack(cols, axis=1)
    ids = check_ids(ids, len(xa), caller=caller)
    # torch tensors share the array's memory and must be writable: a read-only input (a memory map,
    # a view of a file) is copied, never written
    return np.require(as_model_input(xa), requirements="W"), y, ids


def _predict(torch, net, xt, batch_size: int = 1024) -> np.ndarray:
    net.eval()
    with torch.inference_mode():
        return np.concatenate(
            [
                net(xt[lo : lo + batch_size]).argmax(1).numpy()
                for lo in range(0, len(xt), batch_size)
            ]
        )


def _run(
    torch,
    xt,
    y,
    ids,
    *,
    model,
    num_classes,
    epochs,
    batch_size,
    lr,
    seed,
    rec,
    grand_epoch,
    progress,
    label,
    grand="none",
):
    """Train one proxy on ``y``, (N,) labels, or (N, R): R labelings, one head of ``num_classes``
    outputs each on a shared network (the loss is the mean of the heads' cross-entropies); ``rec``
    is a Recorder, or a list of R (one per head). The accuracy returned is the training accuracy of
    the last epoch as recorded (each example when it was presented), averaged over heads: a pass
    over the data to predict after training would cost as much as an epoch of training."""
    from selfprune.evaluate.models import build_model
    from selfprune.evaluate.trainers import fit_minibatches

    yt = torch.from_numpy(y)
    heads = 1 if y.ndim == 1 else y.shape[1]
    recs = rec if isinstance(rec, list) else [rec]
    net = build_model(model, tuple(xt.shape[1:]), num_classes * heads, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    grads: dict[str, np.ndarray | None] = {"full": None, "last": None}
    cols = [slice(r * num_classes, (r + 1) * num_classes) for r in range(heads)]
    batch_loss = None
    if heads > 1:

        def batch_loss(logits, idx, epoch):
            ce = torch.nn.functional.cross_entropy
            return sum(ce(logits[:, c], yt[idx, r]) for r, c in enumerate(cols)) / heads

    def gradients():
        if grand in ("full", "both"):
            grads["full"] = grand_values(net, xt, yt)
        if grand in ("last", "both"):
            grads["last"] = grand_values(net, xt, yt, last_layer=True)

    def on_batch(idx, logits):
        at = ids[idx.numpy()]
        if heads == 1:
            recs[0].update(at, logits, yt[idx])
        else:
            for r, c in enumerate(cols):
                recs[r].update(at, logits[:, c], yt[idx, r])

    def on_epoch(e):
        for r in recs:
            r.end_epoch()
        if progress is not None:
            progress(label, e + 1, epochs)
        if grand_epoch == e + 1:  # GraNd after ``grand_epoch`` epochs
            gradients()

    if grand_epoch == 0:
        gradients()
    fit_minibatches(
        net, opt, xt, yt, batch_size=batch_size, generator=gen, epochs=epochs, batch_loss=batch_loss,
        on_batch=on_batch, on_epoch=on_epoch,
    )  # fmt: skip
    g_full, g_last = grads["full"], grads["last"]
    acc = float(np.mean([np.nanmean(r.values("correct")[:, -1]) for r in recs]))
    return g_full, g_last, acc, net


def proxy_dynamics(
    x,
    labels,
    *,
    ids=None,
    model: str = "small-cnn",
    epochs: int = 10,
    n_seeds: int = 3,
    seeds: None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: SeedLike = 0,
    metrics=DYNAMICS_METRICS,
    grand: str = "both",
    grand_epoch: int = 1,
    el2n_epoch: int | None = None,
    aum_threshold_runs: bool = False,
    path: str | Path | None = None,
    progress: Progress | None = None,
) -> DynamicsResult:
    """Train ``n_seeds`` proxy networks on (x, labels) and score every example.

    ``x``: (N, H, W[, C]) uint8 images or (N, D) features. Returns a :class:`DynamicsResult` whose
    table holds the recorder metrics plus GraNd after ``grand_epoch`` epochs, averaged over seeds:
    ``grand="full"`` adds ``grand`` (every parameter; about one batched forward + backward pass
    over the data for Linear/Conv2d networks), ``"last"`` adds ``grand_last`` (last layer,
    cheaper), ``"both"`` (default) both, ``"none"`` neither;
    with ``aum_threshold_runs`` it adds ``aum_flagged`` (fraction of threshold runs flagging
    the example as likely mislabelled; higher = harder).
    Recordings go under ``path/seed-<k>`` when ``path`` is given (memory otherwise).

    ``labels`` may be (N, R): R labelings of the same rows with the same classes (for example the
    restarts of a clustering). Each run then trains one network with a head per labeling, and every
    metric is the mean over heads of its normalised rank (in (0, 1], higher = harder), so that no
    labeling outweighs another by its scale. GraNd needs ``grand="none"`` there, and the threshold
    runs use the first labeling.
    """
    torch = require("torch", "torch")
    x, y, ids = _prepare(x, labels, ids, "proxy_dynamics")
    heads = 1 if y.ndim == 1 else y.shape[1]
    if heads > 1 and grand != "none":
        raise InvalidInputError(
            f"proxy_dynamics: GraNd needs one labeling; with {heads} label columns pass grand='none'"
        )
    epochs = check_int(epochs, caller="proxy_dynamics", name="epochs")
    refuse_seeds(seeds, caller="proxy_dynamics", hint=_RUNS_HINT)
    seeds = check_int(n_seeds, caller="proxy_dynamics", name="n_seeds")
    batch_size = check_int(batch_size, caller="proxy_dynamics", name="batch_size")
    grand_epoch = check_int(
        grand_epoch, caller="proxy_dynamics", name="grand_epoch", low=0, high=epochs
    )
    if grand not in GRAND_CHOICES:
        raise InvalidInputError(
            f"proxy_dynamics: grand must be one of {GRAND_CHOICES}, got {grand!r}"
        )
    if not lr > 0:
        raise InvalidInputError(f"proxy_dynamics: lr must be > 0, got {lr}")
    rng = as_rng(seed, caller="proxy_dynamics")
    run_seeds = [seed_int(rng) for _ in range(seeds + (2 if aum_threshold_runs else 0))]
    num_classes = max(int(y.max()) + 1, 2)
    xt = torch.from_numpy(x)
    by_head: list[list[Recorder]] = [[] for _ in range(heads)]
    fulls, lasts, accs = [], [], []
    for k in range(seeds):
        folder = None if path is None else Path(path) / f"seed-{k}"
        folders = [folder if heads == 1 or folder is None else folder / f"head-{r}" for r in range(heads)]
        for f in folders:
            if f is not None and (f / "state.json").exists():
                raise StoreError(f"proxy_dynamics: {f} already holds a recording; choose an empty folder")
        run_recs = [Recorder(len(y), num_classes, f, ids=ids) for f in folders]
        g_full, g_last, acc, _ = _run(
            torch, xt, y, ids, model=model, num_classes=num_classes, epochs=epochs,
            batch_size=batch_size, lr=lr, seed=run_seeds[k], rec=run_recs,
            grand_epoch=grand_epoch, progress=progress, label=f"seed {k + 1}/{seeds}", grand=grand,
        )  # fmt: skip
        for r, rec in enumerate(run_recs):
            by_head[r].append(rec)
        accs.append(acc)
        fulls.append(g_full)
        lasts.append(g_last)
    recs = [rec for run in zip(*by_head, strict=True) for rec in run]  # run-major
    tables = [dynamics_scores(h, list(metrics), epoch=el2n_epoch) for h in by_head]
    table = tables[0] if heads == 1 else _mean_over_heads(tables)
    extra = []
    if grand in ("full", "both"):
        extra.append(Scores(ids, np.mean(fulls, axis=0), "grand",
                            {"epoch": grand_epoch, "runs": seeds, "model": model,
                             "direction": "higher = harder"}))  # fmt: skip
    if grand in ("last", "both"):
        extra.append(Scores(ids, np.mean(lasts, axis=0), "grand_last",
                            {"epoch": grand_epoch, "runs": seeds, "model": model,
                             "last_layer": True, "direction": "higher = harder"}))  # fmt: skip
    thresholds = []
    if aum_threshold_runs:
        flags, eligible = np.zeros(len(y)), np.zeros(len(y))
        taken = np.zeros(len(y), dtype=bool)
        for j in range(2):
            y_thr, is_thr = threshold_labels(
                y if heads == 1 else y[:, 0], num_classes, seed=run_seeds[seeds + j], exclude=taken
            )
            taken |= is_thr
            rec = Recorder(len(y), num_classes + 1, None, ids=ids)
            _run(
                torch,
                xt,
                y_thr,
                ids,
                model=model,
                num_classes=num_classes + 1,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=run_seeds[seeds + j],
                rec=rec,
                grand_epoch=-1,
                progress=progress,
                label=f"threshold run {j + 1}/2",
            )
            res = aum_threshold(aum_values(rec.values("margin")), is_thr)
            thresholds.append(res)
            flags += res.flagged
            eligible += ~is_thr
        extra.append(
            Scores(
                ids,
                flags / np.maximum(eligible, 1),
                "aum_flagged",
                {
                    "thresholds": [t.threshold for t in thresholds],
                    "percentile": 99.0,
                    "direction": "fraction of threshold runs flagging a likely wrong label",
                },
            )
        )
    if extra:
        table = table.with_scores(*extra)
    return DynamicsResult(table, recs, thresholds, accs)


def _mean_over_heads(tables: list[ScoreTable]) -> ScoreTable:
    """Each metric of several heads' tables as the mean of its normalised ranks over the heads."""
    out = []
    for m in tables[0]:
        s = mean_rank([t[m] for t in tables], name=m)
        meta = {**tables[0][m].meta, "heads": len(tables), "combination": "mean of normalised ranks over heads"}
        out.append(Scores(s.ids, s.values, m, meta))
    return ScoreTable.from_scores(out)


def proxy_memorization(
    x,
    labels,
    *,
    ids=None,
    model: str = "small-cnn",
    runs: int = 20,
    subset: float = 0.7,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: SeedLike = 0,
    progress: Progress | None = None,
) -> Scores:
    """Feldman-Zhang memorization from ``runs`` networks, each trained on a random ``subset``.

    Every run is evaluated on all N examples; see
    :func:`selfprune.metrics.memorization.memorization`.
    """
    torch = require("torch", "torch")
    from selfprune.evaluate.models import build_model
    from selfprune.evaluate.trainers import fit_minibatches

    x, y, ids = _prepare(x, labels, ids, "proxy_memorization")
    runs = check_int(runs, caller="proxy_memorization", name="runs", low=2)
    epochs = check_int(epochs, caller="proxy_memorization", name="epochs")
    batch_size = check_int(batch_size, caller="proxy_memorization", name="batch_size")
    rng = as_rng(seed, caller="proxy_memorization")
    masks = subset_masks(len(y), runs, subset, seed=rng)
    run_seeds = [seed_int(rng) for _ in range(runs)]
    num_classes = max(int(y.max()) + 1, 2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    correct = np.zeros((runs, len(y)))
    for r in range(runs):
        sub = torch.from_numpy(np.flatnonzero(masks[r]))
        net = build_model(model, tuple(xt.shape[1:]), num_classes, seed=run_seeds[r])
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(run_seeds[r])
        xs, ys = xt[sub], yt[sub]
        fit_minibatches(net, opt, xs, ys, batch_size=batch_size, generator=gen, epochs=epochs)
        correct[r] = _predict(torch, net, xt) == y
        if progress is not None:
            progress("runs", r + 1, runs)
    s = memorization(correct, masks, ids=ids)
    return Scores(
        ids,
        s.values,
        "memorization",
        {**s.meta, "subset": float(subset), "epochs": epochs, "model": model},
    )


def labelfree_dynamics(
    x,
    pseudo,
    *,
    ids=None,
    labels=None,
    model: str = "auto",
    epochs: int = 2,
    n_seeds: int = 1,
    seeds: None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: SeedLike = 0,
    metrics=LABELFREE_DEFAULTS["metrics"],
    aum_threshold_runs: bool = False,
    path: str | Path | None = None,
    progress: Progress | None = None,
) -> DynamicsResult:
    """Training dynamics against pseudo-labels (ELFS): no human label is read.

    ``pseudo`` is a :class:`~selfprune.metrics.pseudo.PseudoLabels` whose ids must cover the
    rows of ``x`` (named by ``ids``, default ``0..N-1``); the proxies train on its clusters, and the
    scores mean "hard for the model to place in its own cluster". ``labels``, when the data has them,
    only travel along in the table's ``label`` column; the pseudo-labels go to ``pseudo_label``.
    Every metric's meta records ``label_free: true`` and the pseudo-label settings. ``model="auto"``
    trains ``small-cnn`` on images and ``mlp`` on vectors (``LABELFREE_DEFAULTS``; measured in
    docs/labelfree.md). GraNd is not computed. Pseudo-labels with ``restart_labels``
    (``pseudo_labels(restarts=R, combine="heads")``) train one proxy with a head per restart, and
    each metric is the mean of its normalised ranks over the heads (see :func:`proxy_dynamics`).
    """
    from selfprune.metrics.pseudo import PseudoLabels

    caller = "labelfree_dynamics"
    refuse_seeds(seeds, caller=caller, hint=_RUNS_HINT)
    seeds = n_seeds
    if not isinstance(pseudo, PseudoLabels):
        raise InvalidInputError(f"{caller}: pseudo must be a PseudoLabels, got {type(pseudo).__name__}")
    xa = np.asarray(x)
    ids = check_ids(ids, len(xa), caller=caller)
    if len(pseudo) != len(ids):
        raise InvalidInputError(
            f"{caller}: {len(pseudo)} pseudo-labels for {len(ids)} examples; their ids must be the data's ids"
        )
    if pseudo.ids.dtype.kind == ids.dtype.kind or {pseudo.ids.dtype.kind, ids.dtype.kind} <= set("iu"):
        lacking = ~np.isin(ids, pseudo.ids)
        if lacking.any():
            raise InvalidInputError(
                f"{caller}: {int(lacking.sum())} data id(s) have no pseudo-label, e.g. {ids[lacking][0]!r}; "
                "the pseudo-labels must come from embeddings of this data"
            )
    at = align_ids(pseudo.ids, ids, caller=caller, what="pseudo-labels")
    y_pseudo = pseudo.labels[at]
    y_train = y_pseudo if pseudo.restart_labels is None else np.ascontiguousarray(pseudo.restart_labels[:, at].T)
    if any(len(np.unique(col)) < 2 for col in y_train.reshape(len(ids), -1).T):
        raise InvalidInputError(f"{caller}: the pseudo-labels hold one cluster; training dynamics need at least 2")
    y_true = None if labels is None else check_labels(labels, len(ids), caller=caller)
    if model == "auto":
        model = "small-cnn" if xa.ndim >= 3 else "mlp"
    res = proxy_dynamics(
        xa, y_train, ids=ids, model=model, epochs=epochs, n_seeds=seeds, batch_size=batch_size, lr=lr,
        seed=seed, metrics=metrics, grand="none", aum_threshold_runs=aum_threshold_runs, path=path,
        progress=progress,
    )  # fmt: skip
    settings = {"label_free": True, "pseudo_labels": {**pseudo.meta, "k": int(pseudo.k)}, "model": model,
                "epochs": epochs, "runs": seeds, "heads": pseudo.heads}  # fmt: skip
    scores = [Scores(ids, res.table[m].values, m, {**res.table[m].meta, **settings}) for m in res.table]
    table = ScoreTable.from_scores(scores)
    table.labels = y_true
    table.pseudo_labels = y_pseudo
    return DynamicsResult(table, res.recorders, res.threshold, res.train_accuracy)


def labelfree_score_fn(inputs, *, metric: str = "el2n", **settings) -> Callable[..., np.ndarray]:
    """``score_fn(embeddings, k=, seed=) -> (N,)`` that reruns the label-free pipeline from scratch.

    For :func:`selfprune.evaluate.audit.audit`: the stability checks recompute the score under
    other clustering seeds and k. Each call clusters ``embeddings`` into pseudo-labels
    (:func:`~selfprune.metrics.pseudo.pseudo_labels` with ``k`` and ``seed``) and trains the proxy
    on ``inputs`` (the same rows) with ``settings`` (see :func:`labelfree_dynamics`).
    """
    from selfprune.metrics.pseudo import pseudo_labels

    if metric not in DYNAMICS_METRICS:
        raise InvalidInputError(f"labelfree_score_fn: metric must be one of {DYNAMICS_METRICS}, got {metric!r}")

    def score(embeddings, *, k: int, seed: int) -> np.ndarray:
        pl = pseudo_labels(embeddings, k=k, seed=seed)
        res = labelfree_dynamics(inputs, pl, ids=pl.ids, seed=seed, metrics=(metric,), **settings)
        return res.table[metric].values

    return score

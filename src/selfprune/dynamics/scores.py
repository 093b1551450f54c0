"""Difficulty scores from one or several Recorders (several = independent runs / seeds).

``dynamics_scores(rec, metrics=[...])`` returns a :class:`~selfprune.scores.ScoreTable` aligned by
example id, one column per metric named as asked, every column oriented higher = harder:

=============  ==============================================================================
el2n           EL2N at ``epoch`` (default: the last complete one), averaged over runs
forgetting     forgetting events summed over runs; never learned = number of presentations
aum            negated area under the margin, over all epochs and runs
confidence     1 - mean p(label) (cartography)
variability    std of p(label) over epochs (cartography; higher = ambiguous)
correctness    1 - fraction of epochs predicted correctly (cartography)
loss           mean training loss over epochs and runs
=============  ==============================================================================

Values come from the training-mode forward pass the loop already made (no extra pass), so they
describe the model as it moved through each epoch, as in the cartography and AUM papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selfprune.dynamics.recorder import Recorder
from selfprune.errors import InvalidInputError
from selfprune.metrics.aum import aum
from selfprune.metrics.cartography import cartography
from selfprune.metrics.forgetting import forgetting
from selfprune.scores import Scores, ScoreTable

DYNAMICS_METRICS = ("el2n", "forgetting", "aum", "confidence", "variability", "correctness", "loss")


def _stack(recs: Sequence[Recorder], field: str, epochs: int) -> np.ndarray:
    """(runs, N, epochs) values; runs with more complete epochs are cut to the shortest."""
    return np.stack([r.values(field)[:, :epochs] for r in recs])


def dynamics_scores(
    recorders: Recorder | Sequence[Recorder],
    metrics: Sequence[str] = ("el2n", "forgetting", "aum", "confidence", "variability"),
    *,
    epoch: int | None = None,
) -> ScoreTable:
    """Scores from recorded dynamics; several Recorders (runs) must cover the same ids.

    ``epoch`` (0-based) picks the epoch for EL2N; examples not presented in that epoch get the
    mean over their presented epochs instead.
    """
    recs = [recorders] if isinstance(recorders, Recorder) else list(recorders)
    if not recs or not all(isinstance(r, Recorder) for r in recs):
        raise InvalidInputError("dynamics_scores: pass a Recorder or a list of Recorders")
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in DYNAMICS_METRICS]
    if not metrics or unknown or len(set(metrics)) != len(metrics):
        raise InvalidInputError(
            f"dynamics_scores: metrics must be distinct names from {DYNAMICS_METRICS}, "
            f"got {metrics}"
        )
    base = recs[0]
    for r in recs[1:]:
        if not np.array_equal(r.ids, base.ids):
            raise InvalidInputError(
                "dynamics_scores: recorders must cover the same ids in the same order"
            )
    epochs = min(r.epochs for r in recs)
    if epochs == 0:
        raise InvalidInputError("dynamics_scores: no complete epoch recorded (call end_epoch)")
    ids = base.ids
    out: list[Scores] = []
    meta_common = {"runs": len(recs), "epochs": epochs}
    if "el2n" in metrics:
        e = epochs - 1 if epoch is None else int(epoch)
        if not 0 <= e < epochs:
            raise InvalidInputError(
                f"dynamics_scores: epoch must be in [0, {epochs - 1}], got {epoch}"
            )
        per_run = []
        for r in recs:
            v = r.values("el2n")[:, :epochs]
            at = v[:, e]
            fallback = np.nanmean(np.where(np.isnan(v).all(axis=1, keepdims=True), 0.0, v), axis=1)
            per_run.append(np.where(np.isnan(at), fallback, at))
        out.append(
            Scores(
                ids,
                np.mean(per_run, axis=0),
                "el2n",
                {**meta_common, "epoch": e, "direction": "higher = harder"},
            )
        )
    if "forgetting" in metrics:
        s = forgetting(_stack(recs, "correct", epochs), ids=ids)
        out.append(Scores(ids, s.values, "forgetting", {**s.meta, **meta_common}))
    if "aum" in metrics:
        s = aum(_stack(recs, "margin", epochs), ids=ids)
        out.append(Scores(ids, s.values, "aum", {**s.meta, **meta_common}))
    carto = [m for m in ("confidence", "variability", "correctness") if m in metrics]
    if carto:
        table = cartography(_stack(recs, "prob", epochs), _stack(recs, "correct", epochs), ids=ids)
        out.extend(Scores(ids, table[m].values, m, {**table[m].meta, **meta_common}) for m in carto)
    if "loss" in metrics:
        loss = _stack(recs, "loss", epochs)
        flat = np.moveaxis(loss, 1, 0).reshape(len(ids), -1)
        seen = ~np.isnan(flat)
        mean = np.where(seen, flat, 0.0).sum(1) / np.maximum(seen.sum(1), 1)
        out.append(Scores(ids, mean, "loss", {**meta_common, "direction": "higher = harder"}))
    by_name = {s.name: s for s in out}
    labels = base.labels
    return ScoreTable.from_scores(
        [by_name[m] for m in metrics], labels=labels if labels.min(initial=0) >= 0 else None
    )

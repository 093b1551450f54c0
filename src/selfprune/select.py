"""Selection policies: spend a budget over one score column and return the kept ids.

Policies (``policy=``):

- ``hard``: keep the highest scores (abundant data: the hard examples carry the information);
- ``easy``: keep the lowest scores (scarce data: learn the prototypes first);
- ``random``: the baseline every policy is judged against;
- ``stratified``: coverage-centric stratified sampling (CCS, Zheng et al. 2023): split the score
  range into equal-width strata and spend the budget evenly over them, smallest stratum first, so
  high pruning rates keep covering the whole difficulty range.

``cutoff=beta`` first drops the hardest ``beta`` fraction (likely mislabelled or unlearnable), with
any policy: with a hard policy this is ELFS's "double-end" pruning. :func:`auto_cutoff` chooses
``beta`` without labels, from the AUM threshold runs of a dynamics score table.
``balance_classes=True`` gives every class its share of the budget (labels, or pseudo-labels for a
label-free score) and applies the policy within each class. Same inputs and seed, same subset.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_int, check_labels, resolve_keep
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores

POLICIES = ("hard", "easy", "random", "stratified")


@dataclass(frozen=True)
class Selection:
    """Kept ids (sorted), the policy that chose them and how (``details``)."""

    ids: np.ndarray
    policy: str
    n_total: int
    details: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fraction(self) -> float:
        return len(self.ids) / self.n_total


def select(
    scores: Scores,
    keep: float | int,
    *,
    policy: str = "hard",
    labels=None,
    balance_classes: bool = False,
    cutoff: float = 0.0,
    strata: int = 50,
    seed: SeedLike = 0,
) -> Selection:
    """Keep ``keep`` examples (a fraction in (0, 1] or a count) of ``scores`` under ``policy``."""
    caller = "select"
    if not isinstance(scores, Scores):
        raise InvalidInputError(f"select: scores must be a Scores, got {type(scores).__name__}")
    n = len(scores)
    m = resolve_keep(keep, n, caller=caller)
    if policy not in POLICIES:
        raise InvalidInputError(f"select: policy must be one of {POLICIES}, got {policy!r}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real) or not 0.0 <= cutoff < 1.0:
        raise InvalidInputError(f"select: cutoff must be a fraction in [0, 1), got {cutoff!r}")
    check_int(strata, caller=caller, name="strata", low=1)
    rng = as_rng(seed, caller=caller)
    y = None
    if balance_classes:
        if labels is None:
            raise InvalidInputError("select: balance_classes=True needs labels")
        y = check_labels(labels, n, caller=caller)
    elif labels is not None:
        y = check_labels(labels, n, caller=caller)

    pool = np.arange(n)
    n_cut = int(np.floor(cutoff * n))
    if n_cut:
        pool = np.sort(scores.order()[n_cut:])
    if m > len(pool):
        raise InvalidInputError(
            f"select: keep={m} exceeds the {len(pool)} examples left after cutoff={cutoff} dropped {n_cut}"
        )
    values = scores.values
    if y is None or not balance_classes:
        chosen = _choose(values, pool, m, policy, strata, rng)
        quotas = None
    else:
        classes = np.unique(y)
        quotas = _class_quotas(y, pool, m, classes)
        chosen = np.concatenate(
            [_choose(values, pool[y[pool] == c], q, policy, strata, rng) for c, q in zip(classes, quotas, strict=True)]
        )
    details: dict[str, Any] = {
        "keep": m,
        "cutoff": cutoff,
        "n_cut": n_cut,
        "balance_classes": balance_classes,
        "score": scores.name,
    }
    if policy == "stratified":
        details["strata"] = strata
    if isinstance(seed, int):
        details["seed"] = seed
    return Selection(ids=np.sort(scores.ids[chosen]), policy=policy, n_total=n, details=details)


def _choose(values: np.ndarray, pool: np.ndarray, m: int, policy: str, strata: int, rng) -> np.ndarray:
    """Positions (into ``values``) of ``m`` examples chosen from ``pool`` by ``policy``."""
    if m == 0:
        return np.empty(0, dtype=np.int64)
    if policy == "random":
        return rng.choice(pool, size=m, replace=False)
    if policy == "stratified":
        return _ccs(values[pool], m, strata, rng, pool)
    # stable sort of -value (hard) or value (easy): ties keep input order, deterministic
    key = -values[pool] if policy == "hard" else values[pool]
    return pool[np.argsort(key, kind="stable")[:m]]


def _ccs(v: np.ndarray, m: int, strata: int, rng, pool: np.ndarray) -> np.ndarray:
    """Coverage-centric stratified sampling over score values ``v`` of ``pool``."""
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        bins = np.zeros(len(v), dtype=np.int64)
    else:
        bins = np.minimum(((v - lo) / (hi - lo) * strata).astype(np.int64), strata - 1)
    members = [np.flatnonzero(bins == b) for b in range(strata)]
    members = sorted((mb for mb in members if len(mb)), key=len)  # smallest stratum first (stable)
    out, budget = [], m
    for i, mb in enumerate(members):
        take = min(len(mb), budget // (len(members) - i))
        if take:
            out.append(rng.choice(mb, size=take, replace=False))
        budget -= take
    # integer division can leave a remainder: spend it at random on what is left
    chosen = np.concatenate(out) if out else np.empty(0, dtype=np.int64)
    if budget:
        rest = np.setdiff1d(np.arange(len(v)), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=budget, replace=False)])
    return pool[chosen]


def _class_quotas(y: np.ndarray, pool: np.ndarray, m: int, classes: np.ndarray) -> np.ndarray:
    """Each class's share of ``m`` (largest remainder), capped by what the class has in the pool."""
    total = np.array([(y == c).sum() for c in classes], dtype=np.float64)
    avail = np.array([(y[pool] == c).sum() for c in classes], dtype=np.int64)
    exact = m * total / total.sum()
    q = np.minimum(np.floor(exact).astype(np.int64), avail)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while q.sum() < m:
        progressed = False
        for j in order:
            if q.sum() < m and q[j] < avail[j]:
                q[j] += 1
                progressed = True
        if not progressed:
            break
    return q


@dataclass(frozen=True)
class CutoffChoice:
    """A cutoff chosen from data: the fraction ``beta`` and the figure it came from, in words."""

    beta: float
    reason: str
    flagged: int
    n: int


def auto_cutoff(flagged, *, majority: float = 0.5) -> CutoffChoice:
    """``beta`` = the share of examples that AUM threshold runs flag as mis-assigned.

    ``flagged`` is the ``aum_flagged`` score (the fraction of threshold runs, Pleiss et al. 2020,
    in which an example's AUM fell below the threshold samples' 99th percentile); an example counts
    when that fraction is at least ``majority``. Under pseudo-labels those are mostly clustering
    errors, the examples ELFS drops first; no label is needed. ``beta`` is capped below 0.9 so
    that a budget remains.
    """
    v = flagged.values if isinstance(flagged, Scores) else np.asarray(flagged, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0 or not np.all(np.isfinite(v)) or v.min() < 0 or v.max() > 1:
        raise InvalidInputError("auto_cutoff: flagged must be a non-empty 1-D array of fractions in [0, 1]")
    if not 0.0 < majority <= 1.0:
        raise InvalidInputError(f"auto_cutoff: majority must be in (0, 1], got {majority}")
    count = int((v >= majority).sum())
    beta = min(count / len(v), 0.89)
    reason = (
        f"cutoff auto: {count:,} of {len(v):,} examples ({count / len(v):.1%}) fall below the AUM threshold "
        f"in at least {majority:.0%} of the threshold runs (likely mis-assigned); beta = {beta:.3f}"
    )
    return CutoffChoice(beta=beta, reason=reason, flagged=count, n=len(v))


def summarize(scores: Scores, selection: Selection, labels=None, *, classes_from: str = "labels") -> dict[str, Any]:
    """A short summary: kept count, score range of kept vs all, kept per class when labels exist.

    ``classes_from`` names where the classes came from (``labels`` or ``pseudo-labels``).
    """
    kept = np.isin(scores.ids, selection.ids)
    out: dict[str, Any] = {
        "policy": selection.policy,
        "kept": int(kept.sum()),
        "total": len(scores),
        "fraction": float(kept.mean()),
        "score": scores.name,
        "score_range_all": [float(scores.values.min()), float(scores.values.max())],
        "score_range_kept": [float(scores.values[kept].min()), float(scores.values[kept].max())],
        "score_mean_kept": float(scores.values[kept].mean()),
        "score_mean_all": float(scores.values.mean()),
        **selection.details,
    }
    if labels is not None:
        y = check_labels(labels, len(scores), caller="summarize")
        out["classes_from"] = classes_from
        out["kept_per_class"] = {int(c): int((kept & (y == c)).sum()) for c in np.unique(y)}
        out["total_per_class"] = {int(c): int((y == c).sum()) for c in np.unique(y)}
    return out

"""Automatic keep-hard / keep-easy policy, decided from cheap pilot runs on the user's own data.

Sorscher et al. (2022, "Beyond neural scaling laws") show that the best pruning direction depends
on how much data is kept: with few examples (scarce regime) keeping the *easy* ones wins, with many
(abundant regime) keeping the *hard* ones wins, and where the switch happens depends on the data and
the model. Instead of guessing the regime, :func:`decide_policy` measures it: it holds out a
validation split, trains a cheap model (a linear probe by default) on the subsets that ``easy``,
``hard`` (and ``random``, the reference) would keep at the target fraction, over a few seeds, and
returns the best score-driven policy only when its pilots beat random beyond the seed spread;
otherwise random, the safe default. The decision says why in words and keeps every pilot number.
A policy never trains a model, so this lives in ``evaluate``; ``select`` only applies the decided
policy.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import align_ids, as_rng, check_ids, check_labels, resolve_keep
from selfprune._seeds import seed_list as seed_list_of
from selfprune.errors import InvalidInputError
from selfprune.scores import Scores

CANDIDATES = ("easy", "hard", "stratified")


@dataclass(frozen=True)
class PolicyDecision:
    """The chosen policy (one of ``select``'s), the reason in words, and the pilot numbers.

    ``pilot`` holds ``keep`` (examples kept in each pilot), ``fraction``, ``n_pool`` (examples the
    pilots select from), ``n_val``, ``trainer``, ``seeds``, ``arms``: for each piloted policy its
    per-seed validation ``accuracy`` list, ``mean``, ``std``, ``min`` and ``max``, and
    ``candidate``: the best score-driven policy, chosen or (when ``policy`` is ``random``) rejected.
    """

    policy: str
    reason: str
    pilot: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "reason": self.reason, "pilot": self.pilot}


def _resolve_trainer(trainer, settings: dict[str, Any] | None, *, caller: str) -> Callable:
    from selfprune.evaluate.trainers import get_trainer

    if isinstance(trainer, str):
        return get_trainer(trainer, **dict(settings or {}))
    if callable(trainer):
        if settings:
            raise InvalidInputError(f"{caller}: trainer settings apply to named trainers only, not to a function")
        return trainer
    raise InvalidInputError(f"{caller}: trainer must be a name or a callable, got {type(trainer).__name__}")


def _stats(acc: list[float]) -> dict[str, Any]:
    a = np.asarray(acc, dtype=np.float64)
    return {
        "accuracy": [float(v) for v in a],
        "mean": float(a.mean()),
        "std": float(a.std()),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def decide_policy(
    scores: Scores,
    keep: float | int,
    *,
    x,
    y,
    x_ids=None,
    x_val=None,
    y_val=None,
    trainer: str | Callable = "linear",
    trainer_settings: dict[str, Any] | None = None,
    n_seeds: int | None = None,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    candidates: Sequence[str] = CANDIDATES,
    val_fraction: float = 0.2,
    cutoff: float = 0.0,
    balance_classes: bool = False,
    strata: int = 50,
) -> PolicyDecision:
    """Choose the pruning policy for ``scores`` at ``keep`` from pilot trainings.

    ``x`` (N, ...) and ``y`` (N,) are the examples and labels; their rows follow ``scores.ids``
    unless ``x_ids`` names them (then they are aligned by id). Without ``x_val``/``y_val`` a
    random ``val_fraction`` of the scored examples (drawn with ``seed``) is held out for validation
    and the pilots keep the same *fraction* of the rest; each pilot seed draws its own split, so the
    seed spread includes validation noise. The pilot seeds are ``0..n_seeds-1`` (default 2) or the
    list ``seeds``. Each policy in ``candidates`` and
    ``random`` is trained with ``trainer`` on its subset once per pilot seed. The candidate with
    the best mean validation accuracy (ties: the earlier in ``candidates``) is returned only when
    it beats ``random`` beyond the seed spread: at least 2 pilot seeds and its worst seed above
    random's best. In every other case (one pilot seed, overlapping spreads, random ahead)
    ``random`` is returned, the safe choice where the pilots cannot tell; either way
    ``pilot["candidate"]`` names the best candidate. ``keep`` that keeps every example decides nothing (``hard``).
    """
    caller = "decide_policy"
    if not isinstance(scores, Scores):
        raise InvalidInputError(f"{caller}: scores must be a Scores, got {type(scores).__name__}")
    n = len(scores)
    m_full = resolve_keep(keep, n, caller=caller)
    cands = tuple(candidates)
    from selfprune.select import POLICIES

    bad = [c for c in cands if c not in POLICIES or c == "random"]
    if not cands or bad:
        allowed = tuple(p for p in POLICIES if p != "random")
        raise InvalidInputError(f"{caller}: candidates must be a non-empty subset of {allowed}, got {cands!r}")
    seeds = seed_list_of(seeds, n_seeds, caller=caller, default=2)
    if not isinstance(val_fraction, numbers.Real) or not 0.0 < float(val_fraction) < 1.0:
        raise InvalidInputError(f"{caller}: val_fraction must be in (0, 1), got {val_fraction!r}")
    x_arr = np.asarray(x)
    if x_ids is None:
        if len(x_arr) != n:
            raise InvalidInputError(f"{caller}: x has {len(x_arr)} rows for {n} scores; pass x_ids to align them")
        pos = np.arange(n)
    else:
        xid = check_ids(x_ids, len(x_arr), caller=caller)
        pos = align_ids(xid, scores.ids, caller=caller, what="x")
    y_arr = check_labels(y, len(x_arr), caller=caller)
    run = _resolve_trainer(trainer, trainer_settings, caller=caller)
    trainer_name = trainer if isinstance(trainer, str) else getattr(trainer, "__name__", type(trainer).__name__)

    if m_full == n:
        return PolicyDecision(
            "hard",
            f"keep={keep} keeps all {n} examples, so every policy keeps the same set; nothing to decide",
            {"keep": m_full, "fraction": 1.0, "n_pool": n, "arms": {}},
        )

    if x_val is None:
        if y_val is not None:
            raise InvalidInputError(f"{caller}: y_val given without x_val")
        n_val = max(1, int(round(float(val_fraction) * n)))
        if n - n_val < 2:
            raise InvalidInputError(f"{caller}: {n} examples are too few to hold out a validation split")
    else:
        if y_val is None:
            raise InvalidInputError(f"{caller}: x_val given without y_val")
        xv_fixed = np.asarray(x_val)
        yv_fixed = check_labels(y_val, len(xv_fixed), caller=caller)
        n_val = len(xv_fixed)
    as_rng(seed, caller=caller)  # validates seed
    from selfprune.select import select

    frac = m_full / n
    n_pool = n - n_val if x_val is None else n
    m = max(1, min(n_pool, int(round(frac * n_pool))))
    accs: dict[str, list[float]] = {p: [] for p in (*cands, "random")}
    for s in seeds:
        if x_val is None:
            # each pilot seed draws its own validation split, so the seed spread includes split noise
            perm = np.random.default_rng([int(seed), int(s)]).permutation(n)
            val_at, pool_at = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            xv, yv = x_arr[pos[val_at]], y_arr[pos[val_at]]
        else:
            pool_at, xv, yv = np.arange(n), xv_fixed, yv_fixed
        sub = Scores(scores.ids[pool_at], scores.values[pool_at], scores.name, {"pilot_of": scores.name})
        sub_pos = pos[pool_at]  # row of x for each pilot-pool example
        labels = y_arr[sub_pos] if balance_classes else None
        for policy in accs:
            sel = select(
                sub,
                m,
                policy=policy,
                labels=labels,
                balance_classes=balance_classes,
                cutoff=cutoff,
                strata=strata,
                seed=int(s),
            )
            rows = sub_pos[align_ids(sub.ids, sel.ids, caller=caller, what="data")]
            accs[policy].append(float(run(x_arr[rows], y_arr[rows], xv, yv, seed=int(s)).test_accuracy))
    arms = {p: _stats(a) for p, a in accs.items()}

    best = max(cands, key=lambda p: (arms[p]["mean"], -cands.index(p)))
    pilot = {
        "keep": m,
        "fraction": frac,
        "n_pool": n_pool,
        "n_val": n_val,
        "trainer": trainer_name,
        "seeds": [int(s) for s in seeds],
        "arms": arms,
        "candidate": best,
    }
    k = len(seeds)
    if k >= 2 and arms[best]["min"] > arms["random"]["max"]:
        return PolicyDecision(best, _reason(best, arms, cands, m, n_pool, k, n_val, trainer_name), pilot)
    return PolicyDecision("random", _random_reason(best, arms, m, n_pool, k, n_val, trainer_name), pilot)


def _pct(arm: dict[str, Any]) -> str:
    if len(arm["accuracy"]) < 2:
        return f"{100 * arm['mean']:.1f}%"
    return f"{100 * arm['mean']:.1f}% ± {100 * arm['std']:.1f}"


def _random_reason(best: str, arms: dict, m: int, n_pool: int, k: int, n_val: int, trainer: str) -> str:
    """Why ``random`` was returned although ``best`` was the best score-driven candidate."""
    b, rand = arms[best], arms["random"]
    at = f"random: at {m} of {n_pool} pilot examples the best score-driven policy {best}"
    setting = f"({trainer} pilots, {n_val} validation examples)"
    if k < 2:
        return (
            f"{at} ({_pct(b)} validation accuracy) vs random ({_pct(rand)}) on one pilot seed {setting}; "
            "one pilot seed gives no seed spread to judge by, and random is the safe choice"
        )
    if rand["min"] > b["max"]:
        return (
            f"{at} ({_pct(b)} validation accuracy) lost to random ({_pct(rand)}) beyond the seed spread "
            f"over {k} seeds {setting}; this score does not help at this budget"
        )
    return (
        f"{at} ({_pct(b)} validation accuracy) did not beat random ({_pct(rand)}) beyond the seed spread "
        f"over {k} seeds {setting}; where the pilots cannot tell, random is the safe choice"
    )


def _reason(best: str, arms: dict, cands: tuple, m: int, n_pool: int, k: int, n_val: int, trainer: str) -> str:
    """Why the score-driven ``best`` was chosen: it beat random beyond the seed spread over ``k`` seeds."""
    others = ", ".join(f"{p} {_pct(arms[p])}" for p in (*cands, "random") if p != best)
    runner_up = max((p for p in cands if p != best), key=lambda p: arms[p]["mean"], default=None)
    if runner_up is None:
        versus = "it was the only candidate piloted"
    elif arms[best]["min"] > arms[runner_up]["max"]:
        versus = f"the margin over {runner_up} exceeds the seed spread too"
    else:
        versus = f"the margin over {runner_up} is within the seed spread"
    regime = {
        "easy": "the kept set is small for this problem (scarce regime), where Sorscher et al. "
        "predict that easy, prototypical examples teach more",
        "hard": "the kept set is large enough for this problem (abundant regime), where Sorscher et al. "
        "predict that hard examples carry the information",
        "stratified": "covering the whole difficulty range beats either extreme at this budget "
        "(coverage-centric sampling, as for high pruning rates)",
    }[best]
    return (
        f"{best}: pilots keeping {m} of {n_pool} examples reached {_pct(arms[best])} validation accuracy "
        f"with {best} vs {others} ({k} seeds, {trainer}, {n_val} validation examples); it beats random "
        f"beyond the seed spread; {versus}; {regime}"
    )

"""Greedy likelihood-preserving deletion: exact naive, exact fast, and approximate.

Greedy (all modes): start from the full chain; at each step delete the unit whose deletion
leaves the highest J (i.e. lowers J the least); record the order; stop after ``n_steps``.
Ties go to the earliest unit. Deleting any unit of a run of identical adjacent units gives the
same sequence, so only the first unit of each run is a candidate (the naive reference scores all
of them and picks the same one, the first maximum).

* ``naive``: one full uncached forward per candidate per step (the reference; O(L^2) passes).
* ``exact``: the same choices, computed with the prefix cache, the shared key/value cache of the
  current sequence and batched suffixes (:meth:`ChainScorer.candidates`). Equal to ``naive`` up to
  float rounding (the tests check the orders are identical).
* ``approx``: per round, score only ``rescore`` candidates exactly, chosen by a cheap pre-ranking,
  and delete the best ``per_step`` of them at once (in order of their exact J). ``prerank``:
  ``stale`` ranks by each unit's exact score from the last round that scored it (deletion
  effects change slowly as the chain shrinks: lazy greedy; the first round scores everything,
  and the ``NEIGHBOURS`` units on each side of a deletion are always re-scored, since their
  context changed most);
  ``gradient`` ranks by a first-order estimate from one forward and backward
  (:meth:`ChainScorer.gradient_estimate`). ``rescore=0`` scores every candidate exactly, so
  ``per_step=1, rescore=0`` is ``exact``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from selfprune._checks import check_int
from selfprune.errors import InvalidInputError
from selfprune.tokens.objective import ChainScorer, Layout, State

SEARCHES = ("exact", "naive", "approx")
PRERANKS = ("stale", "gradient")
NEIGHBOURS = 2  # stale pre-ranking: units this close (in kept positions) to a deletion are re-scored


@dataclass(frozen=True)
class SearchResult:
    """Deletion order (unit indices, first deleted first) and J after each deletion."""

    order: list[int]
    values: list[float]          # J after step t (NaN where an approximate round skipped it)
    initial: float               # J of the full chain
    seconds: float
    forward_tokens: int
    meta: dict = field(default_factory=dict)


def distinct_candidates(layout: Layout, kept: list[int]) -> list[int]:
    """Positions in ``kept`` whose unit differs in content from the previous kept unit."""
    out: list[int] = []
    prev = None
    for c, u in enumerate(kept):
        s, e = layout.units[u]
        content = layout.chain[s:e]
        if content != prev:
            out.append(c)
        prev = content
    return out


def check_search(search: str, per_step: int, rescore: int, prerank: str = "stale") -> tuple[str, int, int, str]:
    if search not in SEARCHES:
        raise InvalidInputError(f"greedy_prune: search must be one of {SEARCHES}, got {search!r}")
    if prerank not in PRERANKS:
        raise InvalidInputError(f"greedy_prune: prerank must be one of {PRERANKS}, got {prerank!r}")
    per_step = check_int(per_step, caller="greedy_prune", name="per_step", low=1)
    rescore = check_int(rescore, caller="greedy_prune", name="rescore", low=0)
    if rescore and rescore < per_step:
        raise InvalidInputError(f"greedy_prune: rescore ({rescore}) must be 0 or at least per_step ({per_step})")
    return search, per_step, rescore, prerank


def greedy_prune(scorer: ChainScorer, n_steps: int, *, search: str = "exact", per_step: int = 2,
                 rescore: int = 8, prerank: str = "stale", state: State | None = None,
                 start: Sequence[int] = (), refresh: int = 0) -> SearchResult:
    """Delete ``n_steps`` units greedily; ``per_step``/``rescore``/``prerank`` apply to ``approx``.

    ``state``: ``scorer.current`` of the full chain, if the caller already has it. ``start``: units
    deleted first, in this order, before the search takes over (they count towards ``n_steps``
    and head the returned order; ``values`` starts after them). ``refresh`` (``approx`` with the
    ``stale`` pre-ranking): each round also re-scores the ``refresh`` candidates whose exact score
    is oldest, so that no unit's score stays stale for long.
    """
    search, per_step, rescore, prerank = check_search(search, per_step, rescore, prerank)
    n_units = len(scorer.layout.units)
    n_steps = check_int(n_steps, caller="greedy_prune", name="n_steps", low=0, high=n_units - 1)
    refresh = check_int(refresh, caller="greedy_prune", name="refresh", low=0)
    start = [check_int(u, caller="greedy_prune", name="start unit", low=0, high=n_units - 1) for u in start]
    if len(set(start)) != len(start) or len(start) > n_steps:
        raise InvalidInputError(f"greedy_prune: start must name at most n_steps ({n_steps}) distinct units")
    t0 = time.perf_counter()
    tokens0 = scorer.forward_tokens
    kept = list(range(n_units))
    if state is None or state.kept != kept:
        state = scorer.current(kept)
    initial = state.value
    order: list[int] = list(start)
    values: list[float] = []
    if start:
        first = set(start)
        kept = [u for u in kept if u not in first]
        state = scorer.current(kept)
    if search in ("exact", "naive"):
        while len(order) < n_steps:
            if search == "naive":
                cands = list(range(len(kept)))
                scores = scorer.naive_candidates(kept, cands)
            else:
                cands = distinct_candidates(scorer.layout, kept)
                scores = scorer.candidates(state, cands)
            best = cands[int(np.argmax(scores))]
            order.append(kept.pop(best))
            values.append(float(np.max(scores)))
            if search == "exact" and len(order) < n_steps:
                state = scorer.current(kept)
    else:
        stale: dict[int, float] = {}  # unit -> change of J on deleting it, when last scored exactly
        scored_at: dict[int, int] = {}  # unit -> the round that last scored it
        rounds = 0
        gaps: list[int] = []
        while len(order) < n_steps:
            cands = distinct_candidates(scorer.layout, kept)
            if rescore and len(cands) > rescore:
                if prerank == "gradient":
                    est = scorer.gradient_estimate(state)[cands]
                    top = set(np.argsort(-est, kind="stable")[:rescore].tolist())
                else:  # the best by their last exact score, plus never-scored units
                    est = np.array([stale.get(kept[c], np.nan) for c in cands])
                    top = set(np.flatnonzero(np.isnan(est)).tolist())
                    top |= set(np.argsort(-np.nan_to_num(est, nan=-np.inf), kind="stable")[:rescore].tolist())
                    # and the neighbours of the last deletions, whose context changed most
                    near = {p for g in gaps for p in range(g - NEIGHBOURS, g + NEIGHBOURS)}
                    top |= {i for i, c in enumerate(cands) if c in near}
                    if refresh:  # and the ones scored longest ago
                        age = np.array([scored_at.get(kept[c], -1) for c in cands])
                        top |= set(np.argsort(age, kind="stable")[:refresh].tolist())
                cands = [cands[i] for i in sorted(top)]
            scores = scorer.candidates(state, cands)
            stale.update((kept[c], float(j) - state.value) for c, j in zip(cands, scores, strict=True))
            scored_at.update((kept[c], rounds) for c in cands)
            rounds += 1
            take = min(per_step, n_steps - len(order), len(cands))
            best = np.argsort(-scores, kind="stable")[:take]
            for i, b in enumerate(best):
                order.append(kept[cands[b]])
                values.append(float(scores[b]) if i == 0 else float("nan"))
            gone = {cands[b] for b in best}
            kept = [u for c, u in enumerate(kept) if c not in gone]
            # positions in the new kept list where units were removed (the gap sits before them)
            gaps = [c - sum(1 for g in gone if g < c) for c in sorted(gone)]
            state = scorer.current(kept)
            values[-1] = state.value
    approx = search == "approx"
    return SearchResult(order=order, values=values, initial=initial, seconds=time.perf_counter() - t0,
                        forward_tokens=scorer.forward_tokens - tokens0,
                        meta={"search": search, "per_step": per_step if approx else 1,
                              "rescore": rescore if approx else 0, "prerank": prerank if approx else None,
                              "refresh": refresh if approx and prerank == "stale" else 0})

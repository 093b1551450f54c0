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
* ``approx``: per round, pre-rank all candidates by the cheap masked-cache estimate
  (:meth:`ChainScorer.estimate`), re-score the best ``rescore`` exactly, and delete the best
  ``per_step`` of those at once (in order of their exact single-deletion J). ``rescore=0`` scores
  every candidate exactly; ``per_step=1, rescore=0`` is ``exact``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from selfprune._checks import check_int
from selfprune.errors import InvalidInputError
from selfprune.tokens.objective import ChainScorer, Layout

SEARCHES = ("exact", "naive", "approx")


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


def check_search(search: str, per_step: int, rescore: int) -> tuple[str, int, int]:
    if search not in SEARCHES:
        raise InvalidInputError(f"greedy_prune: search must be one of {SEARCHES}, got {search!r}")
    per_step = check_int(per_step, caller="greedy_prune", name="per_step", low=1)
    rescore = check_int(rescore, caller="greedy_prune", name="rescore", low=0)
    if rescore and rescore < per_step:
        raise InvalidInputError(
            f"greedy_prune: rescore ({rescore}) must be 0 or at least per_step ({per_step})")
    return search, per_step, rescore


def greedy_prune(scorer: ChainScorer, n_steps: int, *, search: str = "exact", per_step: int = 4,
                 rescore: int = 16) -> SearchResult:
    """Delete ``n_steps`` units greedily; ``per_step``/``rescore`` apply to ``approx`` only."""
    search, per_step, rescore = check_search(search, per_step, rescore)
    n_units = len(scorer.layout.units)
    n_steps = check_int(n_steps, caller="greedy_prune", name="n_steps", low=0, high=n_units - 1)
    t0 = time.perf_counter()
    tokens0 = scorer.forward_tokens
    kept = list(range(n_units))
    order: list[int] = []
    values: list[float] = []
    state = scorer.current(kept)
    initial = state.value
    if search in ("exact", "naive"):
        for _ in range(n_steps):
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
        while len(order) < n_steps:
            cands = distinct_candidates(scorer.layout, kept)
            if rescore and len(cands) > rescore:
                est = scorer.estimate(state, cands)
                top = np.argsort(-est, kind="stable")[:rescore]
                cands = [cands[i] for i in sorted(top)]
            scores = scorer.candidates(state, cands)
            take = min(per_step, n_steps - len(order), len(cands))
            best = np.argsort(-scores, kind="stable")[:take]
            chosen = [cands[i] for i in best]
            for i, c in enumerate(chosen):
                order.append(kept[c])
                values.append(float(scores[best[0]]) if i == 0 else float("nan"))
            gone = set(chosen)
            kept = [u for c, u in enumerate(kept) if c not in gone]
            state = scorer.current(kept)
            if take > 1:
                values[-1] = state.value
    return SearchResult(order=order, values=values, initial=initial,
                        seconds=time.perf_counter() - t0,
                        forward_tokens=scorer.forward_tokens - tokens0,
                        meta={"search": search, "per_step": per_step if search == "approx" else 1,
                              "rescore": rescore if search == "approx" else 0})

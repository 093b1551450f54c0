"""The printed summary of a scaling curve: one row per (metric, policy, keep) over its seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from selfprune.evaluate.curve import Curve


def curve_summary(result: Curve, analysis=None) -> list[dict[str, Any]]:
    """One dict per (metric, policy, keep), in the order the runs appear in ``result.rows``.

    Keys: ``metric``, ``policy``, ``chosen`` (the policies ``auto`` chose, sorted; the policy itself
    otherwise), ``keep``, ``n_train`` (of the first seed), ``n_seeds``, test accuracy in percent
    (``mean``, ``std`` (population), ``min``, ``max``), and from ``analysis``
    (:func:`~selfprune.evaluate.powerlaw.analyze_curve`) the paired comparison with random at the
    same keep: ``vs_random`` (difference of mean accuracies, in points) and ``verdict``, both None
    where there is none (random itself, or no analysis).
    """
    verdicts = {}
    if analysis is not None:
        verdicts = {(name, c.keep): c for name, cs in analysis.comparisons.items() for c in cs}
    groups: dict[tuple[str, str, float], list[dict]] = {}
    for r in result.rows:
        groups.setdefault((r["metric"], r["policy"], r["keep"]), []).append(r)
    out = []
    for (metric, policy, keep), rows in groups.items():
        acc = 100 * np.array([r["test_accuracy"] for r in rows], dtype=np.float64)
        c = verdicts.get((f"{metric}/{policy}", keep))
        out.append(
            {
                "metric": metric,
                "policy": policy,
                "chosen": sorted({r["chosen_policy"] for r in rows}),
                "keep": keep,
                "n_train": rows[0]["n_train"],
                "n_seeds": len(rows),
                "mean": float(acc.mean()),
                "std": float(acc.std()),
                "min": float(acc.min()),
                "max": float(acc.max()),
                "vs_random": None if c is None else 100 * float(c.diff),
                "verdict": None if c is None else c.verdict,
            }
        )
    return out

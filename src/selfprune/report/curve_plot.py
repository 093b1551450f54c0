"""Scaling-curve plot: test error against kept examples, log-log, one line per metric/policy.

Colour = metric, line style and marker = policy.

Each line is the mean over seeds with a band from the lowest to the highest seed; random pruning
is drawn black and dashed, so "below the black line" reads as "beats random". Fitted power laws,
when given, are drawn as thin dotted lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import InvalidInputError


def plot_curve(
    curve,
    path: str | os.PathLike,
    *,
    fits: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG of ``curve`` (a Curve or its rows) to ``path`` atomically; returns the path.

    ``fits`` maps ``"metric/policy"`` to a :class:`~selfprune.evaluate.powerlaw.PowerLawFit`
    (e.g. ``analyze_curve(curve).fits``); missing or None entries are skipped.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from selfprune.report.figures import save_png

    rows: Sequence[Mapping[str, Any]] = list(getattr(curve, "rows", curve))
    if not rows:
        raise InvalidInputError("plot_curve: the curve has no rows")
    lines: dict[str, dict[float, list[tuple[float, float]]]] = {}
    for r in rows:
        name = "random" if r["metric"] == "random" else f"{r['metric']}/{r['policy']}"
        lines.setdefault(name, {}).setdefault(float(r["keep"]), []).append(
            (float(r["n_train"]), 1.0 - float(r["test_accuracy"]))
        )
    fig, ax = plt.subplots(figsize=(7.0, 4.8), dpi=120)
    colors = plt.get_cmap("tab10").colors
    metric_color: dict[str, Any] = {}
    styles = {
        "hard": ("-", "o"),
        "easy": ("-.", "s"),
        "auto": (":", "^"),
        "stratified": ((0, (5, 1)), "d"),
    }
    for name, by_keep in lines.items():
        keys = sorted(by_keep)
        n = np.array([np.mean([p[0] for p in by_keep[k]]) for k in keys])
        errs = [np.array([p[1] for p in by_keep[k]]) for k in keys]
        mean = np.array([e.mean() for e in errs])
        lo = np.array([e.min() for e in errs])
        hi = np.array([e.max() for e in errs])
        floor = 1e-4  # log axes cannot show zero error
        if name == "random":
            color, style, marker = "black", "--", "o"
        else:
            metric, policy = name.rsplit("/", 1)
            color = metric_color.setdefault(metric, colors[len(metric_color) % len(colors)])
            style, marker = styles.get(policy, ("-", "o"))
        ax.plot(
            n,
            np.maximum(mean, floor),
            linestyle=style,
            color=color,
            marker=marker,
            ms=3,
            label=name,
        )
        ax.fill_between(n, np.maximum(lo, floor), np.maximum(hi, floor), color=color, alpha=0.15, lw=0)
        fit = (fits or {}).get("random/random" if name == "random" else name)
        if fit is not None and len(n) > 1:
            grid = np.geomspace(n.min(), n.max(), 50)
            ax.plot(grid, np.maximum(fit.predict(grid), floor), ":", color=color, lw=0.8, alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("kept training examples")
    ax.set_ylabel("test error")
    ax.set_title(title or "test error vs kept examples (band: min-max over seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return Path(path)

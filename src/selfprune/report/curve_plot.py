"""Scaling-curve plot: test error against kept examples, log-log, one line per metric/policy.

Colour = metric, line style and marker = policy (solid circles hard, dash-dot squares easy,
dotted triangles auto, dashed diamonds stratified).

Each line is the mean over seeds with a shaded band from the lowest to the highest seed; random
pruning is drawn black and dashed, so "below the black line" reads as "beats random". Fitted power
laws, when given, are drawn as thin faint dotted lines. The legend names every one of these styles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import InvalidInputError

STYLES = {
    "hard": ("-", "o"),
    "easy": ("-.", "s"),
    "auto": (":", "^"),
    "stratified": ((0, (5, 1)), "d"),
}
FLOOR = 1e-4  # log axes cannot show zero error


def curve_figure(curve, *, fits: Mapping[str, Any] | None = None, title: str | None = None):
    """A matplotlib Figure of ``curve`` (a Curve or its rows); ``fits`` as in :func:`plot_curve`."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from selfprune.report.figures import new_figure, wrap_title

    rows: Sequence[Mapping[str, Any]] = list(getattr(curve, "rows", curve))
    if not rows:
        raise InvalidInputError("plot_curve: the curve has no rows")
    lines: dict[str, dict[float, list[tuple[float, float]]]] = {}
    for r in rows:
        name = "random" if r["metric"] == "random" else f"{r['metric']}/{r['policy']}"
        lines.setdefault(name, {}).setdefault(float(r["keep"]), []).append(
            (float(r["n_train"]), 1.0 - float(r["test_accuracy"]))
        )
    fig = new_figure(7.0, 4.8)
    ax = fig.add_subplot()
    import matplotlib

    colors = matplotlib.colormaps["tab10"].colors
    metric_color: dict[str, Any] = {}
    drew_fit = False
    for name, by_keep in lines.items():
        keys = sorted(by_keep)
        n = np.array([np.mean([p[0] for p in by_keep[k]]) for k in keys])
        errs = [np.array([p[1] for p in by_keep[k]]) for k in keys]
        mean = np.array([e.mean() for e in errs])
        lo = np.array([e.min() for e in errs])
        hi = np.array([e.max() for e in errs])
        if name == "random":
            color, style, marker = "black", "--", "o"
        else:
            metric, policy = name.rsplit("/", 1)
            color = metric_color.setdefault(metric, colors[len(metric_color) % len(colors)])
            style, marker = STYLES.get(policy, ("-", "o"))
        label = f"{name} (policy chosen by pilots)" if name.endswith("/auto") else name
        ax.plot(n, np.maximum(mean, FLOOR), linestyle=style, color=color, marker=marker, ms=3, label=label)
        ax.fill_between(n, np.maximum(lo, FLOOR), np.maximum(hi, FLOOR), color=color, alpha=0.15, lw=0)
        fit = (fits or {}).get("random/random" if name == "random" else name)
        if fit is not None and len(n) > 1:
            grid = np.geomspace(n.min(), n.max(), 50)
            ax.plot(grid, np.maximum(fit.predict(grid), FLOOR), ":", color=color, lw=0.8, alpha=0.5)
            drew_fit = True
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("kept training examples")
    ax.set_ylabel("test error")
    ax.set_title(wrap_title(title or "test error vs kept examples"), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.3, lw=0))
    labels.append("band: min-max over seeds")
    if drew_fit:
        handles.append(Line2D([], [], ls=":", color="grey", lw=0.8))
        labels.append("thin dotted: power-law fit")
    ax.legend(handles, labels, fontsize=7, loc="best")
    return fig


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
    from selfprune.report.figures import save_png

    return save_png(curve_figure(curve, fits=fits, title=title), path)

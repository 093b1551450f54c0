"""The data map (Swayamdipta et al. 2020): confidence against variability, coloured by correctness.

Easy-to-learn examples sit top-left (confident, stable), hard-to-learn bottom-left, ambiguous ones
to the right. Drawn with matplotlib's Agg backend (no display) and written atomically as PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from selfprune._checks import SeedLike, as_rng
from selfprune.errors import InvalidInputError
from selfprune.metrics.cartography import CartographyStats
from selfprune.report.figures import save_png


def data_map(
    stats: CartographyStats,
    path: str | os.PathLike,
    *,
    title: str = "Data map",
    max_points: int = 25_000,
    seed: SeedLike = 0,
) -> Path:
    """Write the data map of ``stats`` to ``path`` (PNG); at most ``max_points`` drawn at random."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    conf, var, corr = (
        np.asarray(a, dtype=np.float64)
        for a in (stats.confidence, stats.variability, stats.correctness)
    )
    if not (conf.shape == var.shape == corr.shape) or conf.ndim != 1 or len(conf) == 0:
        raise InvalidInputError(
            "data_map: confidence, variability and correctness must be equal-length 1-D arrays"
        )
    idx = np.arange(len(conf))
    if len(idx) > max_points:
        idx = np.sort(
            as_rng(seed, caller="data_map").choice(len(idx), size=max_points, replace=False)
        )
    fig = Figure(figsize=(6.4, 5.2), dpi=110)
    ax = fig.add_subplot()
    pts = ax.scatter(
        var[idx],
        conf[idx],
        c=corr[idx],
        cmap="viridis",
        vmin=0,
        vmax=1,
        s=4,
        alpha=0.6,
        linewidths=0,
    )
    fig.colorbar(pts, ax=ax, label="correctness (fraction of epochs)")
    ax.set_xlabel("variability (std of p(label))")
    ax.set_ylabel("confidence (mean p(label))")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title} ({len(idx):,} of {len(conf):,} examples)")
    fig.tight_layout()
    target = Path(path)
    save_png(fig, target)
    return target

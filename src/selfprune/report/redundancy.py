"""The eps-sweep plot of semantic dedup: share of examples removed against eps."""

from __future__ import annotations

import os
from pathlib import Path

from selfprune.report.figures import save_png


def plot_eps_sweep(sweep, path: str | os.PathLike, *, k: int) -> Path:
    """Write the fraction removed per eps of ``sweep`` (:class:`~selfprune.metrics.semdedup.EpsSweep`,
    k-means with ``k`` clusters) to ``path`` as PNG; a symlog eps axis when eps spans zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    try:
        ax.plot(sweep.eps, 100 * sweep.fraction_removed, marker="o")
        ax.set_xlabel("eps (remove when cosine similarity > 1 - eps)")
        ax.set_ylabel("examples removed (%)")
        ax.set_title(f"SemDeDup eps sweep, N={sweep.n_examples:,}, k={k}")
        if len(sweep.eps) > 1 and sweep.eps.min() >= 0 and sweep.eps[sweep.eps > 0].size:
            ax.set_xscale("symlog", linthresh=float(sweep.eps[sweep.eps > 0].min()))
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        return save_png(fig, path)
    finally:
        plt.close(fig)

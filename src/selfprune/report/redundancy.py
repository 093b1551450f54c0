"""The eps-sweep plot of semantic dedup: share of examples removed against eps."""

from __future__ import annotations

import os
from pathlib import Path

from selfprune.report.figures import save_png


def eps_sweep_figure(sweep, *, k: int):
    """A Figure of the fraction removed per eps of ``sweep`` (:class:`~selfprune.metrics.semdedup.EpsSweep`,
    k-means with ``k`` clusters); a symlog eps axis when eps spans zero."""
    from selfprune.report.figures import new_figure, wrap_title

    fig = new_figure(5.5, 3.6)
    ax = fig.add_subplot()
    ax.plot(sweep.eps, 100 * sweep.fraction_removed, marker="o", label="removed at this eps")
    ax.set_xlabel("eps (remove when cosine similarity > 1 - eps)")
    ax.set_ylabel("examples removed (%)")
    ax.set_title(wrap_title(f"SemDeDup eps sweep, N={sweep.n_examples:,}, k={k}"), fontsize=10)
    if len(sweep.eps) > 1 and sweep.eps.min() >= 0 and sweep.eps[sweep.eps > 0].size:
        ax.set_xscale("symlog", linthresh=float(sweep.eps[sweep.eps > 0].min()))
    ax.grid(True, alpha=0.3)
    return fig


def plot_eps_sweep(sweep, path: str | os.PathLike, *, k: int) -> Path:
    """Write :func:`eps_sweep_figure` to ``path`` as PNG; returns the path."""
    return save_png(eps_sweep_figure(sweep, k=k), path)

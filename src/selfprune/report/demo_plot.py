"""Plot test accuracy against keep ratio, one line per policy, error bars over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def accuracy_figure(summary: list[dict[str, Any]], *, title: str = ""):
    """A Figure of mean test accuracy per policy against keep (error bars: std over seeds)."""
    from selfprune.report.figures import new_figure, wrap_title

    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    policies = sorted({r["policy"] for r in summary if r["policy"] != "full"})
    for policy in policies:
        rs = sorted((r for r in summary if r["policy"] == policy), key=lambda r: r["keep"])
        ax.errorbar(
            [r["keep"] for r in rs],
            [100 * r["mean"] for r in rs],
            yerr=[100 * r["std"] for r in rs],
            marker="o",
            capsize=3,
            label=f"{policy} (dashed)" if policy == "random" else policy,
            linestyle="--" if policy == "random" else "-",
        )
    full = [r for r in summary if r["policy"] == "full"]
    if full:
        ax.axhline(100 * full[0]["mean"], color="grey", linewidth=0.8, label="all data (grey line)")
    ax.plot([], [], " ", label="error bars: std over seeds")
    ax.set_xlabel("fraction of training data kept")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(wrap_title(title), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_accuracy_vs_keep(summary: list[dict[str, Any]], path: Path, *, title: str = "") -> Path:
    """Write :func:`accuracy_figure` to ``path`` as PNG; returns the path."""
    from selfprune.report.figures import save_png

    return save_png(accuracy_figure(summary, title=title), path)

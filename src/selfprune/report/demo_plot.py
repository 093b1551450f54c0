"""Plot test accuracy against keep ratio, one line per policy, error bars over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_accuracy_vs_keep(summary: list[dict[str, Any]], path: Path, *, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selfprune.report.figures import save_png

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    policies = sorted({r["policy"] for r in summary if r["policy"] != "full"})
    for policy in policies:
        rs = sorted((r for r in summary if r["policy"] == policy), key=lambda r: r["keep"])
        ax.errorbar(
            [r["keep"] for r in rs],
            [100 * r["mean"] for r in rs],
            yerr=[100 * r["std"] for r in rs],
            marker="o",
            capsize=3,
            label=policy,
            linestyle="--" if policy == "random" else "-",
        )
    full = [r for r in summary if r["policy"] == "full"]
    if full:
        ax.axhline(100 * full[0]["mean"], color="grey", linewidth=0.8, label="all data")
    ax.set_xlabel("fraction of training data kept")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return Path(path)

"""Saving and shaping plots: every PNG the library writes goes through :func:`save_png`."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from selfprune.io.atomic import atomic_path

TITLE_WIDTH = 60
"""Characters per title line before :func:`wrap_title` breaks it (fits a 6-inch figure at 10 pt)."""


def save_png(fig, path: str | os.PathLike, *, dpi: float | None = None) -> Path:
    """Write the matplotlib figure ``fig`` to ``path`` as PNG, atomically; returns the path.

    ``dpi=None`` uses matplotlib's ``savefig.dpi`` setting. The figure stays open (the caller
    owns it and closes it).
    """
    options = {} if dpi is None else {"dpi": dpi}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **options)
    return Path(path)


def wrap_title(text: str, width: int = TITLE_WIDTH) -> str:
    """``text`` broken into lines of at most ``width`` characters, so a title never runs off its figure."""
    return "\n".join(textwrap.wrap(text, width)) or text


def new_figure(width: float, height: float, *, dpi: float = 120):
    """A matplotlib Figure with constrained layout (titles, labels and legends kept inside), no pyplot state."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")

"""Saving plots: every PNG the library writes goes through :func:`save_png`."""

from __future__ import annotations

import os
from pathlib import Path

from selfprune.io.atomic import atomic_path


def save_png(fig, path: str | os.PathLike, *, dpi: float | None = None) -> Path:
    """Write the matplotlib figure ``fig`` to ``path`` as PNG, atomically; returns the path.

    ``dpi=None`` uses matplotlib's ``savefig.dpi`` setting. The figure stays open (the caller
    owns it and closes it).
    """
    options = {} if dpi is None else {"dpi": dpi}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **options)
    return Path(path)

"""Data-map statistics of a training run, straight from its recorders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selfprune.metrics.cartography import CartographyStats, cartography_stats


def recorder_cartography(recorders: Sequence) -> CartographyStats:
    """Confidence, variability and correctness over every epoch of every run in ``recorders``
    (each a :class:`~selfprune.dynamics.recorder.Recorder` over the same examples)."""
    return cartography_stats(
        np.stack([r.values("prob") for r in recorders]),
        np.stack([r.values("correct") for r in recorders]),
    )

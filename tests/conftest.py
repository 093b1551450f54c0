"""Shared fixtures: small real data (sklearn digits) and planted clustered embeddings."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    from selfprune.io.sources import load_source

    return load_source("digits", split="train")


@pytest.fixture
def clustered():
    """400 points in 8 tight clusters along the first 8 axes (16-d), plus 4 planted outliers
    (last rows) along axes the clusters never use: whatever k-means does, they sit far from it."""
    rng = np.random.default_rng(0)
    centres = np.eye(8, 16)
    x = centres[rng.integers(0, 8, 400)] + 0.05 * rng.normal(size=(400, 16))
    outliers = np.eye(16)[[9, 11, 13, 15]] + 0.05 * rng.normal(size=(4, 16))
    return np.vstack([x, outliers]).astype(np.float32)

"""The encoder protocol: settings in the constructor, optional ``fit`` on a sample, ``encode`` a batch.

An encoder turns a batch of raw examples (images as a uint8 array (B, H, W) or (B, H, W, C); texts
as a list of str) into float32 embeddings (B, D). Encoders that learn from the data (PCA,
contrastive) are fitted on a sample first; ``state()`` returns what must be saved beside the store
so that a resumed run encodes identically.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    name: str
    modality: str  # "image" or "text"

    def params(self) -> dict[str, Any]:
        """Settings recorded in the store manifest (JSON-serialisable)."""
        ...

    def fit(self, sample, *, seed: int = 0) -> Encoder:
        """Learn from a sample of raw examples (no labels). A no-op for pretrained encoders."""
        ...

    def encode(self, batch) -> np.ndarray:
        """Embed one batch: (B, ...) raw examples -> (B, D) float32."""
        ...

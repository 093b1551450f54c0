"""``pixels``: PCA of raw pixels (or raw features), the label-free baseline every encoder must beat."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import check_int
from selfprune.errors import InvalidInputError, StoreError


@dataclass
class PixelPCAEncoder:
    """Flatten, scale to [0, 1], project on the top ``dim`` principal components of a fitted sample."""

    dim: int = 64
    fit_rows: int = 20_000
    name: str = "pixels"
    modality: str = "image"
    _mean: np.ndarray | None = field(default=None, repr=False)
    _components: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_int(self.dim, caller="pixels encoder", name="dim", low=1)
        check_int(self.fit_rows, caller="pixels encoder", name="fit_rows", low=2)

    def params(self) -> dict[str, Any]:
        return {"dim": self.dim, "fit_rows": self.fit_rows}

    @staticmethod
    def _flat(batch) -> np.ndarray:
        x = np.asarray(batch)
        x = x.reshape(len(x), -1).astype(np.float32)
        return x / 255.0 if np.asarray(batch).dtype == np.uint8 else x

    def fit(self, sample, *, seed: int = 0) -> PixelPCAEncoder:
        """Fit the PCA basis on ``sample`` (raw examples); deterministic (eigh of the covariance)."""
        from sklearn.decomposition import PCA

        x = self._flat(sample)
        if self.dim > min(x.shape):
            raise InvalidInputError(f"pixels encoder: dim={self.dim} exceeds min(samples, features)={min(x.shape)}")
        pca = PCA(n_components=self.dim, svd_solver="covariance_eigh", random_state=seed).fit(x)
        self._mean = pca.mean_.astype(np.float32)
        self._components = pca.components_.astype(np.float32)
        return self

    def encode(self, batch) -> np.ndarray:
        if self._components is None:
            raise InvalidInputError("pixels encoder: call fit() before encode()")
        x = self._flat(batch)
        if x.shape[1] != self._components.shape[1]:
            raise InvalidInputError(
                f"pixels encoder: batch has {x.shape[1]} features, fitted on {self._components.shape[1]}"
            )
        return np.ascontiguousarray((x - self._mean) @ self._components.T, dtype=np.float32)

    def save_state(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "pca.npz", mean=self._mean, components=self._components)

    def load_state(self, folder: Path) -> PixelPCAEncoder:
        try:
            with np.load(folder / "pca.npz") as z:
                self._mean, self._components = z["mean"], z["components"]
        except (OSError, KeyError, ValueError) as exc:
            raise StoreError(f"{folder}/pca.npz is missing or corrupt ({exc})") from exc
        return self

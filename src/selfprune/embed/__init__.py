"""Encoders behind one small protocol (see :mod:`selfprune.embed.base`), and ``embed`` into a store.

Registry names map to ``"module:Class"``; a heavy encoder's module is imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from selfprune.embed.base import Encoder
from selfprune.errors import InvalidInputError

ENCODERS: dict[str, str] = {
    "pixels": "selfprune.embed.pixels:PixelPCAEncoder",
    "efficientnet-lite0": "selfprune.embed.efficientnet:EfficientNetLite0Encoder",
    "contrastive": "selfprune.embed.contrastive:ContrastiveEncoder",
    "wordllama": "selfprune.embed.text:WordLlamaEncoder",
    "minilm": "selfprune.embed.text:MiniLMEncoder",
}


def get_encoder(name: str, **params: Any) -> Encoder:
    """Build the encoder registered as ``name`` with its settings."""
    target = ENCODERS.get(name)
    if target is None:
        raise InvalidInputError(f"get_encoder: unknown encoder {name!r}; choose from {sorted(ENCODERS)}")
    module, cls = target.split(":")
    factory = getattr(importlib.import_module(module), cls)
    try:
        return factory(**params)
    except TypeError as exc:
        raise InvalidInputError(f"get_encoder: bad settings for {name!r}: {exc}") from exc


def __getattr__(name: str):
    # ``selfprune.embed`` is this package, so the top-level function is named embed_dataset
    if name == "embed_dataset":
        from selfprune.embed.run import embed

        return embed
    raise AttributeError(name)


__all__ = ["ENCODERS", "Encoder", "get_encoder", "embed_dataset"]

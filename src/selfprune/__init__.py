"""selfprune: prune training data by the model's own signal, and prove it worked.

``import selfprune`` is light: heavy libraries (torch, faiss, pyarrow, transformers) load only when
a name that needs them is first used. Public names resolve lazily from ``_LAZY``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from selfprune.errors import (  # noqa: E402
    DataSourceError,
    InvalidInputError,
    MissingExtraError,
    SelfpruneError,
    StoreError,
)
from selfprune.scores import Scores, ScoreTable  # noqa: E402

# eager (numpy only): the function ``select`` must shadow the submodule of the same name
from selfprune.select import Selection, select  # noqa: E402

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # io
    "load_source": "selfprune.io.sources",
    "Dataset": "selfprune.io.sources",
    "EmbeddingStore": "selfprune.io.store",
    "load_embeddings": "selfprune.io.store",
    "read_scores": "selfprune.io.tables",
    "write_scores": "selfprune.io.tables",
    "read_ids": "selfprune.io.tables",
    "write_ids": "selfprune.io.tables",
    # embed
    "get_encoder": "selfprune.embed",
    "embed_dataset": "selfprune.embed",
    # metrics
    "prototypes": "selfprune.metrics",
    "class_prototypes": "selfprune.metrics",
    "random_scores": "selfprune.metrics",
    "pseudo_labels": "selfprune.metrics.pseudo",
    "PseudoLabels": "selfprune.metrics.pseudo",
    "read_pseudo_labels": "selfprune.io.tables",
    "write_pseudo_labels": "selfprune.io.tables",
    "proxy_dynamics": "selfprune.dynamics.train",
    "labelfree_dynamics": "selfprune.dynamics.train",
    "auto_cutoff": "selfprune.select",
    "mean_rank": "selfprune.scores",
    "Recorder": "selfprune.dynamics.recorder",
    "dynamics_scores": "selfprune.dynamics.scores",
    "LightningRecorder": "selfprune.dynamics.callbacks",
    "HFRecorder": "selfprune.dynamics.callbacks",
    "el2n": "selfprune.metrics.el2n",
    "grand": "selfprune.metrics.grand",
    "forgetting": "selfprune.metrics.forgetting",
    "aum": "selfprune.metrics.aum",
    "aum_threshold": "selfprune.metrics.aum",
    "cartography": "selfprune.metrics.cartography",
    "memorization": "selfprune.metrics.memorization",
    "semdedup": "selfprune.metrics.semdedup",
    "semdedup_sweep": "selfprune.metrics.semdedup",
    "knn_density": "selfprune.metrics.density",
    "d2_select": "selfprune.d2",
    "scaling_curve": "selfprune.evaluate.curve",
    "fit_power_law": "selfprune.evaluate.powerlaw",
    "analyze_curve": "selfprune.evaluate.powerlaw",
    "decide_policy": "selfprune.evaluate.auto",
    "audit": "selfprune.evaluate.audit",
    "AuditReport": "selfprune.evaluate.audit",
    "ContrastiveEncoder": "selfprune.embed.contrastive",
    "read_chains": "selfprune.tokens.data",
    "generate_chains": "selfprune.tokens.data",
    "load_causal_lm": "selfprune.tokens.model",
    # end to end, and back into training
    "prune": "selfprune.pipeline",
    "PruneResult": "selfprune.pipeline",
    "export": "selfprune.io.export",
    "TokenPruner": "selfprune.tokens.prune",
    "prune_chains": "selfprune.tokens.prune",
    "tag_tokens": "selfprune.tokens.tagger",
}

__all__ = [
    "__version__",
    "SelfpruneError",
    "InvalidInputError",
    "DataSourceError",
    "StoreError",
    "MissingExtraError",
    "Scores",
    "ScoreTable",
    "select",
    "Selection",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selfprune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""The public API is pinned: adding or removing a name is a deliberate change to this list."""

import selfprune

PUBLIC = {
    "__version__",
    # errors and the score contract
    "SelfpruneError", "InvalidInputError", "DataSourceError", "StoreError", "MissingExtraError",
    "Scores", "ScoreTable",
    # io and embedding
    "load_source", "Dataset", "EmbeddingStore", "load_embeddings", "read_scores", "write_scores",
    "read_ids", "write_ids", "get_encoder", "embed_dataset", "ContrastiveEncoder",
    # metrics
    "prototypes", "class_prototypes", "random_scores", "knn_density", "semdedup", "semdedup_sweep",
    "el2n", "grand", "forgetting", "aum", "aum_threshold", "cartography", "memorization",
    # label-free: pseudo-labels and dynamics against them
    "pseudo_labels", "PseudoLabels", "read_pseudo_labels", "write_pseudo_labels",
    # training dynamics
    "Recorder", "dynamics_scores", "LightningRecorder", "HFRecorder", "proxy_dynamics", "labelfree_dynamics",
    # selection
    "select", "Selection", "d2_select", "auto_cutoff", "mean_rank",
    # evaluation
    "scaling_curve", "fit_power_law", "analyze_curve", "decide_policy", "audit", "AuditReport",
    # tokens
    "TokenPruner", "prune_chains", "generate_chains", "read_chains", "tag_tokens", "load_causal_lm",
    # end to end, and back into training
    "prune", "PruneResult", "export",
}  # fmt: skip


def test_all_is_pinned():
    assert set(selfprune.__all__) == PUBLIC
    assert len(selfprune.__all__) == len(set(selfprune.__all__))


def test_every_public_name_resolves_and_is_documented():
    for name in PUBLIC - {"__version__"}:
        obj = getattr(selfprune, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        selfprune.nope  # noqa: B018

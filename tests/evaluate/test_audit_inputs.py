"""Audit inputs lined up with the embeddings, and one default k for the audit and its comparisons."""

import numpy as np
import pytest

from selfprune import Scores
from selfprune.errors import InvalidInputError
from selfprune.evaluate.audit import audit, default_k
from selfprune.evaluate.audit_inputs import (
    aligned_scores,
    cross_encoder_scores,
    labelfree_recheck,
    score_file_labels,
)
from selfprune.metrics import prototypes


def test_default_k():
    assert default_k(1000) == 100 and default_k(40) == 10 and default_k(5) == 2
    assert default_k(1000, {"k": 7}) == 7


def test_aligned_scores_reorders_and_refuses_missing_ids():
    s = Scores(np.array([3, 1, 2]), np.array([0.3, 0.1, 0.2]), "m", {"k": 4})
    a = aligned_scores(s, [1, 2, 3])
    np.testing.assert_array_equal(a.values, [0.1, 0.2, 0.3])
    assert a.meta["k"] == 4 and a.name == "m"
    with pytest.raises(InvalidInputError, match="audit"):
        aligned_scores(s, [1, 2, 9])


def test_cross_encoder_scores_use_the_audit_k(clustered):
    ids = np.arange(len(clustered))
    perm = np.random.default_rng(1).permutation(len(ids))
    others = {"enc": (ids[perm], clustered[perm])}
    got = cross_encoder_scores(others, ids, seed=0)["enc"]
    want = prototypes(clustered, k=default_k(len(ids)), seed=0)
    np.testing.assert_allclose(got.values, want.values)
    assert got.meta["k"] == default_k(len(ids)) == 100
    assert cross_encoder_scores(others, ids, target_meta={"k": 8})["enc"].meta["k"] == 8
    assert cross_encoder_scores(others, ids, target_meta={"k": 8}, k=5)["enc"].meta["k"] == 5


def test_labelfree_recheck():
    plain = Scores(np.arange(3), np.zeros(3), "prototypes", {"k": 4})
    assert labelfree_recheck(plain, np.zeros((3, 2)), metric="prototypes") == (None, None)
    lf = Scores(np.arange(3), np.zeros(3), "el2n", {"label_free": True, "pseudo_labels": {"k": 6}})
    assert labelfree_recheck(lf, None, metric="el2n", k=3) == (None, 3)
    fn, k = labelfree_recheck(lf, np.zeros((3, 2)), metric="el2n")
    assert callable(fn) and k == 6


def test_score_file_labels():
    from selfprune.scores import ScoreTable

    t = ScoreTable.from_scores([Scores(np.array([5, 6, 7]), np.zeros(3), "m")], labels=np.array([0, 1, 2]))
    np.testing.assert_array_equal(score_file_labels(t, [7, 5, 6]), [2, 0, 1])
    t.labels = None
    assert score_file_labels(t, [7, 5, 6]) is None


def test_audit_reports_its_steps(clustered):
    steps = []
    s = prototypes(clustered, k=8, seed=0)
    audit(clustered, s, keep=0.5, progress=steps.append)
    assert steps == ["health", "stability", "null controls", "agreement", "pilot"]

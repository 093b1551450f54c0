"""The main public entry points on fixed inputs: each call form gives the values computed here
from first principles, or the same values as the equivalent call form."""

from __future__ import annotations

import json

import numpy as np
import pytest

import selfprune as sp
from selfprune.errors import InvalidInputError


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    return x, rng.integers(0, 4, 400)


def _cos_dist_to_nearest(x: np.ndarray, cents: np.ndarray) -> np.ndarray:
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = cents / np.linalg.norm(cents, axis=1, keepdims=True)
    return 1.0 - (z @ c.T).max(axis=1)


def test_prototypes_seed_forms(blobs):
    x, _ = blobs
    one = sp.prototypes(x, k=8, seed=3)
    assert one.meta["seeds"] == [3]
    assert np.array_equal(one.values, sp.prototypes(x, k=8, seeds=[3]).values)
    count = sp.prototypes(x, k=8, n_seeds=3)
    listed = sp.prototypes(x, k=8, seeds=[0, 1, 2])
    assert np.array_equal(count.values, listed.values) and count.meta == listed.meta
    mean = np.mean([sp.prototypes(x, k=8, seed=s).values for s in (0, 1, 2)], axis=0)
    np.testing.assert_allclose(count.values, mean, rtol=0, atol=1e-12)
    # cosine distances to the nearest centroid lie in [0, 2]
    assert np.all((one.values >= 0) & (one.values <= 2))
    with pytest.raises(InvalidInputError, match=r"^prototypes: seeds must be a list.*n_seeds=3.*seeds=\[3\]"):
        sp.prototypes(x, k=8, seeds=3)
    with pytest.raises(InvalidInputError, match="not both"):
        sp.prototypes(x, k=8, seed=1, n_seeds=2)


def test_class_prototypes_from_first_principles(blobs):
    x, y = blobs
    s = sp.class_prototypes(x, y)
    cents = np.stack([(x[y == c] / np.linalg.norm(x[y == c], axis=1, keepdims=True)).sum(0) for c in range(4)])
    want = np.array([_cos_dist_to_nearest(x[i : i + 1], cents[y[i] : y[i] + 1])[0] for i in range(len(x))])
    np.testing.assert_allclose(s.values, want, atol=1e-5)


def test_select_hard_easy_from_first_principles(blobs):
    x, y = blobs
    s = sp.Scores(np.arange(len(x)) * 3, np.linspace(0, 1, len(x))[::-1].copy(), "planted")
    hard = sp.select(s, 0.25, policy="hard")
    easy = sp.select(s, 100, policy="easy")
    assert np.array_equal(hard.ids, np.arange(100) * 3)  # the highest values are the first rows
    assert np.array_equal(easy.ids, np.arange(300, 400) * 3)
    assert hard.fraction == 0.25


def test_d2_select_is_a_selection_and_matches_its_core(blobs):
    from selfprune.d2 import d2_rows
    from selfprune.metrics.density import knn_graph

    x, _ = blobs
    s = sp.prototypes(x, k=8, seed=0)
    sel = sp.d2_select(s, x, 0.3, k=5)
    assert isinstance(sel, sp.Selection) and sel.policy == "d2" and len(sel) == 120
    z = np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)
    dist, nbr = knn_graph(z, 5, metric="l2", index="auto", seed=0, caller="test")
    rows = d2_rows(s.values, dist, nbr, 120, ids=s.ids)
    assert np.array_equal(sel.ids, np.sort(s.ids[rows]))


def test_scaling_curve_count_and_list_agree_on_digits():
    d = sp.load_source("digits", split="train")
    t = sp.load_source("digits", split="test")
    xd = np.asarray(d.items, dtype=np.float32).reshape(len(d), -1)
    xt = np.asarray(t.items, dtype=np.float32).reshape(len(t), -1)
    s = sp.prototypes(xd, k=10, seed=0, ids=d.ids)
    kw = dict(x_train=xd, y_train=d.labels, x_test=xt, y_test=t.labels, train_ids=d.ids, keep=(0.5,), trainer="linear")
    count = sp.scaling_curve(s, n_seeds=2, **kw)
    listed = sp.scaling_curve(s, seeds=[0, 1], **kw)
    assert count.rows == listed.rows and count.meta == listed.meta
    assert sorted({r["seed"] for r in count.rows}) == [0, 1]
    # a hard-policy row trains on exactly the subset select keeps
    from selfprune.evaluate.trainers import get_trainer

    kept = sp.select(s, 0.5, policy="hard", seed=1).ids
    at = np.searchsorted(d.ids, kept)
    want = get_trainer("linear")(xd[at], d.labels[at], xt, t.labels, seed=1).test_accuracy
    row = next(r for r in count.rows if r["metric"] == "prototypes" and r["seed"] == 1)
    assert row["test_accuracy"] == want and row["n_train"] == len(kept)
    with pytest.raises(InvalidInputError, match=r"^scaling_curve: seeds must be a list.*n_seeds=2"):
        sp.scaling_curve(s, seeds=2, **kw)


def test_audit_seed_forms_and_json(blobs):
    x, y = blobs
    s = sp.prototypes(x, k=8, seed=0)
    a = sp.audit(x, s, keep=0.5, labels=y, n_seeds=2)
    b = sp.audit(x, s, keep=0.5, labels=y, seeds=[0, 1])
    assert a.to_dict() == b.to_dict()
    d = json.loads(json.dumps(a.to_dict()))
    assert d["figures"]["kept"] == 200 and d["figures"]["k"] == 8
    assert d["figures"]["chance_jaccard"] == pytest.approx(0.5 / 1.5)
    assert a.figures.seed_stability is not None and len(a.figures.seed_stability.pairs) == 1
    # the kept-set overlap of the two seeds, recomputed here
    r0, r1 = (sp.prototypes(x, k=8, seed=v).values for v in (0, 1))
    m0 = np.zeros(400, bool)
    m0[np.argsort(-r0, kind="stable")[:200]] = True
    m1 = np.zeros(400, bool)
    m1[np.argsort(-r1, kind="stable")[:200]] = True
    assert a.figures.seed_stability.pairs[0].jaccard == pytest.approx((m0 & m1).sum() / (m0 | m1).sum())

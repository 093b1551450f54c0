"""audit: hand-checked measures, and verdicts on planted healthy / random / collapsed / norm scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from selfprune.errors import InvalidInputError
from selfprune.evaluate.audit import (
    VERDICTS,
    Check,
    audit,
    chance_jaccard,
    effective_rank,
    el2n_proxy,
    excess_overlap,
    jaccard,
    kept_mask,
    mix_skew,
    overlap_z,
    rank_correlation,
    verdict_of,
)
from selfprune.metrics import prototypes
from selfprune.scores import Scores

# ----------------------------------------------------------------------------- measures


def test_kept_mask_and_jaccard_hand_case():
    m = kept_mask(np.array([0.1, 0.9, 0.5, 0.7]), 2)
    assert m.tolist() == [False, True, False, True]
    assert jaccard(m, np.array([False, True, True, False])) == pytest.approx(1 / 3)


def test_chance_jaccard_is_one_third_at_half_and_matches_simulation():
    assert chance_jaccard(500, 1000) == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    sims = [jaccard(kept_mask(rng.random(1000), 300), kept_mask(rng.random(1000), 300)) for _ in range(300)]
    assert np.mean(sims) == pytest.approx(chance_jaccard(300, 1000), abs=0.01)
    assert excess_overlap(1.0, 300, 1000) == pytest.approx(1.0)
    assert excess_overlap(chance_jaccard(300, 1000), 300, 1000) == pytest.approx(0.0)


def test_overlap_z_is_large_for_identical_and_small_for_random_sets():
    rng = np.random.default_rng(1)
    a = kept_mask(rng.random(2000), 1000)
    assert overlap_z(a, a) > 30
    assert abs(overlap_z(a, kept_mask(rng.random(2000), 1000))) < 4


def test_rank_correlation_matches_scipy_with_ties():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 5, 200).astype(float), rng.random(200)
    assert rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert rank_correlation(np.ones(5), b[:5]) == 0.0


def test_effective_rank_one_for_a_line_and_d_for_orthonormal_rows():
    assert effective_rank(np.outer(np.arange(1, 11), np.ones(4))) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(np.eye(6)) == pytest.approx(6.0)


def test_mix_skew_hand_case():
    groups = np.array([0, 0, 1, 1])
    out = mix_skew(np.array([True, True, False, False]), groups)
    assert out.tv_distance == pytest.approx(0.5)
    assert out.groups_emptied == 1 and out.min_retention_ratio == 0.0 and out.worst_group == 1
    assert out.retention == {"0": 2.0, "1": 0.0}


def test_verdict_is_the_worst_status():
    ok = Check("a", "pass", 1.0, "r")
    assert verdict_of([ok])[0] == "trust"
    assert verdict_of([ok, Check("b", "warn", 0.1, "r", "x")])[0] == "caution"
    v, reasons = verdict_of([Check("b", "warn", 0.1, "r", "x"), Check("c", "fail", 0.0, "r", "y")])
    assert v == "do not trust" and reasons[0].startswith("fail")


def test_el2n_proxy_ranks_planted_mislabels_hardest():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 150)
    x = rng.normal(size=(300, 5)) + 4 * y[:, None]
    flipped = y.copy()
    flipped[:10] = 1  # ten class-0 points labelled 1
    proxy = el2n_proxy(x, flipped, seed=0)
    assert set(np.argsort(-proxy)[:10]) == set(range(10))


# ----------------------------------------------------------------------------- verdicts


@pytest.fixture(scope="module")
def digits_setup():
    pytest.importorskip("torch")
    from selfprune.embed import get_encoder
    from selfprune.embed.contrastive import untrained_embeddings
    from selfprune.io.sources import load_source

    ds = load_source("digits")
    x, y = ds.items, ds.labels
    pix = get_encoder("pixels", dim=32).fit(x).encode(x)
    proxy = el2n_proxy(x, y, seed=0)
    null_net = untrained_embeddings(x, seed=1000)
    return {
        "x": x,
        "y": y,
        "pixels": pix,
        "proxy": proxy,
        "null_net": null_net,
        "user_random": untrained_embeddings(x, seed=7),
    }


def _audit(setup, emb, score=None, **kw):
    score = prototypes(emb, k=10, seed=0) if score is None else score
    return audit(
        emb,
        score,
        keep=0.5,
        labels=setup["y"],
        inputs=setup["x"],
        proxy=setup["proxy"],
        random_embeddings=setup["null_net"],
        n_seeds=2,
        seed=0,
        **kw,
    )


def test_untrained_network_embeddings_are_not_trusted(digits_setup):
    rep = _audit(digits_setup, digits_setup["user_random"])
    assert rep.verdict == "do not trust"
    assert any(c.name == "agreement vs untrained network" and c.status == "fail" for c in rep.checks)


def test_collapsed_encoder_is_not_trusted(digits_setup):
    rng = np.random.default_rng(0)
    n = len(digits_setup["x"])
    collapsed = (np.ones((n, 32)) + 1e-4 * rng.standard_normal((n, 32))).astype(np.float32)
    rep = _audit(digits_setup, collapsed)
    assert rep.verdict == "do not trust"
    status = {c.name: c.status for c in rep.checks}
    assert status["collapse"] == "fail" and status["perturbation"] == "fail"


def test_input_norm_score_is_never_trusted(digits_setup):
    x = digits_setup["x"]
    norm = np.sqrt((x.reshape(len(x), -1).astype(float) ** 2).sum(1))
    rep = _audit(digits_setup, digits_setup["pixels"], Scores(np.arange(len(x)), norm, "norm"))
    assert rep.verdict == "do not trust" and rep.reasons[0].startswith("fail: ")
    assert {c.name: c.status for c in rep.checks}["null: input norm"] == "fail"


def test_strongly_disagreeing_encoders_give_at_least_caution(digits_setup):
    pix = digits_setup["pixels"]
    other = prototypes(digits_setup["user_random"], k=10, seed=0)
    rep = _audit(digits_setup, pix, other_scores={"untrained": other})
    assert {c.name: c.status for c in rep.checks}["cross-encoder"] == "warn"
    # the same encoder given as the "other" one agrees with itself
    same = _audit(digits_setup, pix, other_scores={"same": prototypes(pix, k=10, seed=0)})
    assert {c.name: c.status for c in same.checks}["cross-encoder"] == "pass"
    # every other check is the same in both runs, so the warning lifts the verdict to at least caution
    others = [c for c in rep.checks if c.name != "cross-encoder"]
    assert others == [c for c in same.checks if c.name != "cross-encoder"]
    assert rep.verdict == VERDICTS[max(VERDICTS.index(same.verdict), 1)]


def test_pixels_beat_the_untrained_network_on_digits_and_report_is_json_ready(digits_setup):
    import json

    rep = _audit(digits_setup, digits_setup["pixels"])
    status = {c.name: c.status for c in rep.checks}
    assert status["agreement vs untrained network"] == "pass"
    assert status["collapse"] == "pass" and status["null: input norm"] == "pass"
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["verdict"] == rep.verdict == verdict_of(rep.checks)[0]
    assert d["figures"]["agreement"]["n_labelled"] == len(digits_setup["x"])
    assert d["figures"]["seed_stability"]["pairs"][0] == rep.figures.seed_stability.pairs[0].to_dict()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"keep": 1.0}, "keep must leave something out"),
        ({"labels": np.zeros(5, dtype=np.int64)}, "labels must be"),
        ({"proxy": np.zeros(7)}, "proxy must be"),
        ({"random_embeddings": np.ones((3, 4), np.float32)}, "random_embeddings has 3 rows"),
        ({"other_scores": {"b": np.zeros(3)}}, "other_scores"),
        ({"seeds": 3}, "n_seeds=3"),
        ({"seeds": [0]}, "at least 2"),
        ({"max_labelled": 0}, "max_labelled"),
        ({"pilot": "yes"}, "pilot must be a function"),
    ],
)
def test_bad_input_fails_before_any_clustering_or_training(digits_setup, monkeypatch, kw, match):
    """Validation comes first: a bad argument late in the list raises before k-means or a network runs."""
    import selfprune.evaluate.audit as audit_mod

    def expensive(*a, **k):
        raise AssertionError("expensive work started before validation finished")

    for name in ("cluster_assignments", "prototype_values", "el2n_proxy", "effective_rank"):
        monkeypatch.setattr(audit_mod, name, expensive)
    pix = digits_setup["pixels"]
    s = Scores(np.arange(len(pix)), np.linspace(0.0, 1.0, len(pix)), "prototypes", {"k": 10})
    with pytest.raises(InvalidInputError, match=match):
        audit_mod.audit(pix, s, **kw)


def test_without_labels_the_verdict_is_at_most_caution(digits_setup):
    pix = digits_setup["pixels"]
    rep = audit(pix, prototypes(pix, k=10, seed=0), keep=0.5, seeds=(0, 1), seed=0)
    assert rep.verdict != "trust"
    assert any(c.name == "no labelled evidence" for c in rep.checks)


def test_audit_is_deterministic_and_validates(digits_setup):
    pix = digits_setup["pixels"]
    s = prototypes(pix, k=10, seed=0)
    a = audit(pix, s, keep=0.5, seeds=[0, 1], seed=3).to_dict()
    b = audit(pix, s, keep=0.5, seeds=(0, 1), seed=3).to_dict()
    assert a == b
    with pytest.raises(InvalidInputError, match="keep"):
        audit(pix, s, keep=1.0)
    with pytest.raises(InvalidInputError, match="seeds"):
        audit(pix, s, seeds=(0,))
    assert audit(pix, s, keep=0.5, n_seeds=2, seed=3).to_dict() == a
    with pytest.raises(InvalidInputError):
        audit(pix, s.values[:-1])

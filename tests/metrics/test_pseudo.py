"""Pseudo-labels and the label-free dynamics built on them: planted clusters, planted clustering
errors, determinism, streaming vs memory, and clear errors."""

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.io.store import EmbeddingStore
from selfprune.metrics.pseudo import MAX_K, MIN_K, PseudoLabels, _matched, choose_k, consensus_labels, pseudo_labels


def blobs(n_per=150, centres=4, dim=16, spread=0.05, seed=0):
    """Well separated clusters on the sphere: the clusters are the classes."""
    rng = np.random.default_rng(seed)
    mu = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:centres] * 1.0  # orthonormal centres
    y = np.repeat(np.arange(centres), n_per)
    x = mu[y] + spread * rng.normal(size=(len(y), dim))
    return x.astype(np.float32), y, mu


def _store(tmp_path, x, chunk_rows):
    store = EmbeddingStore.create(
        tmp_path / "s", ids=np.arange(len(x)), dim=x.shape[1], encoder="given", params={}, source={},
        chunk_rows=chunk_rows,
    )  # fmt: skip
    for i in range(store.n_chunks):
        lo, hi = store.chunk_bounds(i)
        store.write_chunk(i, x[lo:hi])
    return EmbeddingStore(tmp_path / "s")


@pytest.mark.parametrize("refine", ["none", "neighbours"])
def test_no_cluster_mixes_planted_clusters(refine):
    x, y, _ = blobs()
    pl = pseudo_labels(x, k=8, refine=refine, seed=0, epochs=5)
    assert pl.purity(y) == 1.0  # over-clustered: cells split planted clusters but never mix them
    assert pl.counts().sum() == len(y) and pl.k == 8
    assert np.all((pl.confidence > 0) & (pl.confidence <= 1))


def test_refinement_repairs_cells_that_cut_through_a_cluster():
    # two elongated clusters: k-means with k=2 on a sample is fine, but with k=4 cells split them;
    # the neighbour head must keep neighbours together, so no refined cluster mixes the two
    rng = np.random.default_rng(1)
    t = rng.uniform(-1, 1, size=600)
    a = np.stack([t, 0.02 * rng.normal(size=600), np.ones(600)], 1)
    b = np.stack([t, 0.02 * rng.normal(size=600) + 0.5, np.ones(600)], 1)
    x = np.concatenate([a, b]).astype(np.float32)
    y = np.repeat([0, 1], 600)
    pl = pseudo_labels(x, k=2, refine="neighbours", seed=0, neighbours=10, epochs=20)
    km = pseudo_labels(x, k=2, refine="none", seed=0)
    assert pl.purity(y) >= km.purity(y)


def test_deterministic_under_a_seed_and_streamed_equals_memory(tmp_path):
    x, _, _ = blobs(n_per=100, seed=3)
    x = x + np.random.default_rng(0).normal(scale=0.3, size=x.shape).astype(np.float32)  # overlapping
    a = pseudo_labels(x, k=6, seed=5, epochs=4)
    b = pseudo_labels(x, k=6, seed=5, epochs=4)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    for refine in ("none", "neighbours"):
        mem = pseudo_labels(x, k=6, seed=5, epochs=4, refine=refine)
        streamed = pseudo_labels(_store(tmp_path / refine, x, chunk_rows=37), k=6, seed=5, epochs=4, refine=refine)
        np.testing.assert_array_equal(mem.labels, streamed.labels)
        np.testing.assert_array_equal(mem.confidence, streamed.confidence)  # row blocks fixed by row number
        np.testing.assert_array_equal(streamed.ids, np.arange(len(x)))


def test_choose_k_rule_is_bounded_and_monotone():
    ks = [choose_k(n) for n in (2, 100, 10_000, 60_000, 100_000, 300_000, 10**6, 10**8)]
    assert all(MIN_K <= k <= MAX_K for k in ks)
    assert ks == sorted(ks)
    assert choose_k(60_000) == 10 and choose_k(10**6) > choose_k(60_000)
    x, _, _ = blobs(n_per=10, centres=4)  # 40 rows: the rule asks for 10 clusters
    pl = pseudo_labels(x, refine="none")
    assert pl.k == choose_k(40) and pl.meta["k_rule"].startswith("choose_k")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"k": 1}, "k must be"),
        ({"k": 1000}, "larger than the number of examples"),
        ({"refine": "scan"}, "refine must be one of"),
        ({"neighbours": 0}, "neighbours must be"),
        ({"restarts": 0}, "restarts must be"),
    ],
)
def test_bad_settings_are_one_clear_error(kw, match):
    x, _, _ = blobs(n_per=20)
    with pytest.raises(InvalidInputError, match=match):
        pseudo_labels(x, **kw)


def test_nan_rows_are_refused():
    x, _, _ = blobs(n_per=20)
    x[3, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        pseudo_labels(x, k=4)


# ---- consensus of several clusterings


def test_consensus_undoes_renumbering_and_outvotes_a_minority():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, size=400)
    perms = [np.arange(5), rng.permutation(5), rng.permutation(5)]
    runs = np.stack([p[truth] for p in perms])  # the same clustering, numbered three ways
    wrong = rng.choice(400, size=60, replace=False)
    runs[2, wrong] = perms[2][(truth[wrong] + 1) % 5]  # the third disagrees on 60 rows
    conf = np.full(runs.shape, 0.9)
    labels, confidence, agreement = consensus_labels(runs, conf, 5)
    # the reference is the first (it agrees most with the others, tied with the second), the majority wins
    np.testing.assert_array_equal(labels, truth)
    np.testing.assert_allclose(agreement[wrong], 2 / 3)
    np.testing.assert_allclose(np.delete(agreement, wrong), 1.0)
    np.testing.assert_allclose(confidence[wrong], 0.6)  # (0.9 + 0.9 + 0) / 3


def test_consensus_tie_goes_to_the_reference():
    runs = np.array([[0, 0, 1, 1], [0, 0, 1, 0]])  # two clusterings disagree on the last row only
    labels, _, agreement = consensus_labels(runs, np.ones(runs.shape), 2)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    np.testing.assert_allclose(agreement, [1, 1, 1, 0.5])


def test_restarts_are_deterministic_and_keep_the_first_clustering_where_it_is_not_outvoted():
    x, _, _ = blobs(n_per=100, seed=3)
    x = x + np.random.default_rng(0).normal(scale=0.3, size=x.shape).astype(np.float32)  # overlapping
    for refine in ("none", "neighbours"):
        one = pseudo_labels(x, k=6, seed=5, epochs=4, refine=refine)
        a = pseudo_labels(x, k=6, seed=5, epochs=4, refine=refine, restarts=3)
        b = pseudo_labels(x, k=6, seed=5, epochs=4, refine=refine, restarts=3)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.meta["restarts"] == 3 and 0 < a.meta["mean_agreement"] <= 1
        assert np.all((a.confidence > 0) & (a.confidence <= 1))
        # the vote leaves restart 0's partition (the single clustering) only where it was outvoted:
        # after renaming, on at most R * (1 - mean agreement) of the rows
        renamed = _matched(one.labels, a.labels, 6)
        assert np.mean(renamed != a.labels) <= 3 * (1 - a.meta["mean_agreement"]) + 1e-12


def test_restarts_recover_planted_clusters_that_single_clusterings_miss():
    x, y, _ = blobs()  # four separated clusters, k = 4: k-means on a sample can merge two of them
    for refine in ("none", "neighbours"):
        single = [pseudo_labels(x, k=4, seed=s, epochs=5, refine=refine).purity(y) for s in range(3)]
        voted = [pseudo_labels(x, k=4, seed=s, epochs=5, refine=refine, restarts=5).purity(y) for s in range(3)]
        assert min(single) < 1.0  # the planted trap works on these seeds
        assert voted == [1.0, 1.0, 1.0]


def test_consensus_refuses_mismatched_or_out_of_range_labels():
    with pytest.raises(InvalidInputError, match="must be \\(R, N\\)"):
        consensus_labels(np.zeros((2, 5), dtype=int), np.ones((2, 4)), 3)
    with pytest.raises(InvalidInputError, match="in \\[0, 3\\)"):
        consensus_labels(np.array([[0, 3]]), np.ones((1, 2)), 3)


# ---- label-free dynamics on pseudo-labels


def test_planted_clustering_errors_rank_hardest_and_auto_cutoff_finds_their_share():
    from selfprune.dynamics.train import labelfree_dynamics
    from selfprune.select import auto_cutoff

    x, y, mu = blobs(n_per=250, centres=4, spread=0.12, seed=2)
    n = len(y)
    rng = np.random.default_rng(0)
    wrong = rng.choice(n, size=n // 20, replace=False)  # 5% planted clustering errors
    labels = y.copy()
    labels[wrong] = (labels[wrong] + rng.integers(1, 4, size=len(wrong))) % 4
    # boundary points: halfway between two centres, assigned to the nearer by a coin
    mid = 0.5 * (mu[0] + mu[1]) + 0.05 * rng.normal(size=(40, x.shape[1]))
    xb = np.concatenate([x, mid.astype(np.float32)])
    lb = np.concatenate([labels, rng.integers(0, 2, size=40)])
    pl = PseudoLabels(ids=np.arange(len(lb)), labels=lb, confidence=np.ones(len(lb)), k=4, meta={"planted": True})
    res = labelfree_dynamics(xb, pl, model="mlp", epochs=12, aum_threshold_runs=True, seed=0)
    table = res.table
    assert table.pseudo_labels is not None and table.labels is None
    assert all(table[m].meta["label_free"] for m in table)
    core = np.setdiff1d(np.arange(n), wrong)
    boundary = np.arange(n, n + 40)
    for metric in ("el2n", "aum"):
        r = table[metric].ranks()  # 0 = hardest
        auc = np.mean(r[wrong][:, None] < r[core][None, :])  # P(a planted error ranks above a core point)
        assert auc > 0.95, (metric, auc)
        assert np.median(r[boundary]) < np.median(r[core])
    choice = auto_cutoff(table["aum_flagged"])
    planted, boundary_share = len(wrong) / len(lb), 40 / len(lb)
    # the rule finds the planted share: at least half of it, and nothing beyond what is planted or ambiguous
    assert 0.5 * planted <= choice.beta <= planted + boundary_share + 0.02, choice.reason


def test_labelfree_dynamics_refuses_pseudo_labels_of_other_data():
    from selfprune.dynamics.train import labelfree_dynamics

    x, y, _ = blobs(n_per=20)
    pl = PseudoLabels(ids=np.arange(len(y)) + 1000, labels=y, confidence=np.ones(len(y)), k=4)
    with pytest.raises(InvalidInputError, match="have no pseudo-label"):
        labelfree_dynamics(x, pl, model="mlp", epochs=1)
    one = PseudoLabels(ids=np.arange(len(y)), labels=np.zeros(len(y), dtype=np.int64), confidence=np.ones(len(y)), k=2)
    with pytest.raises(InvalidInputError, match="one cluster"):
        labelfree_dynamics(x, one, model="mlp", epochs=1)


# ---- one proxy, a head per restart


def test_heads_keep_every_restart_with_restart_zero_the_single_clustering():
    x, _, _ = blobs(n_per=100, seed=3)
    x = x + np.random.default_rng(0).normal(scale=0.3, size=x.shape).astype(np.float32)  # overlapping
    one = pseudo_labels(x, k=6, seed=5, epochs=4)
    a = pseudo_labels(x, k=6, seed=5, epochs=4, restarts=3, combine="heads")
    b = pseudo_labels(x, k=6, seed=5, epochs=4, restarts=3, combine="heads")
    voted = pseudo_labels(x, k=6, seed=5, epochs=4, restarts=3)
    assert a.heads == 3 and a.restart_labels.shape == (3, len(x)) and a.meta["combine"] == "heads"
    np.testing.assert_array_equal(a.restart_labels, b.restart_labels)
    np.testing.assert_array_equal(a.labels, one.labels)  # restart 0 is the single clustering
    np.testing.assert_array_equal(a.restart_labels[0], one.labels)
    np.testing.assert_array_equal(a.confidence, one.confidence)
    # the heads are the very restarts the vote is built from: voting them gives the voted labels
    assert voted.heads == 1 and voted.restart_labels is None
    again, _, _ = consensus_labels(a.restart_labels, np.ones(a.restart_labels.shape), 6)
    np.testing.assert_array_equal(again, voted.labels)
    # one restart is the plain clustering whatever combine says
    single = pseudo_labels(x, k=6, seed=5, epochs=4, combine="heads")
    assert single.heads == 1 and single.restart_labels is None
    np.testing.assert_array_equal(single.labels, one.labels)


def test_heads_rank_rows_wrong_in_every_clustering_above_rows_wrong_in_one():
    from selfprune.dynamics.train import labelfree_dynamics

    x, y, _ = blobs(n_per=250, centres=4, spread=0.12, seed=2)
    n = len(y)
    rng = np.random.default_rng(0)
    rows = rng.permutation(n)
    both, only_a, only_b = rows[:25], rows[25:75], rows[75:125]  # planted clustering errors
    core = rows[125:]
    heads = np.stack([y, (y + 2) % 4])  # restart 1 numbers the same clusters otherwise
    for h, wrong in ((0, np.concatenate([both, only_a])), (1, np.concatenate([both, only_b]))):
        heads[h, wrong] = (heads[h, wrong] + rng.integers(1, 4, size=len(wrong))) % 4
    pl = PseudoLabels(ids=np.arange(n), labels=heads[0], confidence=np.ones(n), k=4, restart_labels=heads)
    res = labelfree_dynamics(x, pl, model="mlp", epochs=12, seed=0, metrics=("el2n", "aum"))
    assert res.table.pseudo_labels is not None and np.array_equal(res.table.pseudo_labels, heads[0])
    assert len(res.recorders) == 2  # one run, two heads
    for metric in ("el2n", "aum"):
        s = res.table[metric]
        assert s.meta["heads"] == 2 and s.meta["label_free"]
        assert np.all((s.values > 0) & (s.values <= 1))  # mean of normalised ranks

        def auc(hi, lo, v=s.values):
            return np.mean(v[hi][:, None] > v[lo][None, :])

        one = np.concatenate([only_a, only_b])
        assert auc(both, one) > 0.9, (metric, auc(both, one))  # wrong in both heads: hardest
        # wrong in one head: outvoted by the other, so between the two
        assert np.median(s.values[both]) > np.median(s.values[one]) > np.median(s.values[core])


def test_heads_bad_settings_are_clear_errors():
    from selfprune.dynamics.train import proxy_dynamics

    x, y, _ = blobs(n_per=20)
    with pytest.raises(InvalidInputError, match="combine must be one of"):
        pseudo_labels(x, k=4, combine="mean")
    with pytest.raises(InvalidInputError, match="GraNd needs one labeling"):
        proxy_dynamics(x, np.stack([y, y], 1), model="mlp", epochs=1, n_seeds=1, grand="last")
    one_column = proxy_dynamics(x, y[:, None], model="mlp", epochs=1, n_seeds=1, grand="none", metrics=("el2n",))
    plain = proxy_dynamics(x, y, model="mlp", epochs=1, n_seeds=1, grand="none", metrics=("el2n",))
    np.testing.assert_array_equal(one_column.table["el2n"].values, plain.table["el2n"].values)

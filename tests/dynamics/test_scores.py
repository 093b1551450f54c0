import numpy as np
import pytest
import torch

from selfprune.dynamics.recorder import Recorder  # noqa: E402
from selfprune.dynamics.scores import DYNAMICS_METRICS, dynamics_scores  # noqa: E402
from selfprune.dynamics.train import proxy_dynamics  # noqa: E402
from selfprune.errors import InvalidInputError  # noqa: E402
from selfprune.io.tables import read_scores, write_scores  # noqa: E402


def _blobs(flip: int):
    """Three well-separated Gaussian blobs in 2-D; example ``flip`` gets a wrong label."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]])
    y = np.repeat(np.arange(3), 30)
    x = (centres[y] + rng.normal(scale=0.6, size=(90, 2))).astype(np.float32)
    y_noisy = y.copy()
    y_noisy[flip] = (y[flip] + 1) % 3
    return x, y_noisy


def test_hand_computed_table_from_a_custom_loop(tmp_path):
    rec = Recorder(2, 2, ids=[7, 9])
    logits = [np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 2.0], [0.0, 3.0]])]
    for z in logits:
        rec.update(torch.tensor([9, 7]), torch.from_numpy(z), torch.tensor([0, 1]))
        rec.end_epoch()
    t = dynamics_scores(rec, metrics=["aum", "forgetting", "correctness", "el2n"], epoch=0)
    assert list(t) == ["aum", "forgetting", "correctness", "el2n"]
    # id 9: margins +2, -2 -> aum 0; correct 1, 0 -> one forgetting event
    # id 7: margins +1, +3 -> aum -2 (negated); correct both epochs -> 0 events
    np.testing.assert_allclose(t["aum"].values, [-2.0, 0.0])
    np.testing.assert_allclose(t["forgetting"].values, [0.0, 1.0])
    np.testing.assert_allclose(t["correctness"].values, [0.0, 0.5])
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(t["el2n"].values[1], np.sqrt(2) * (1 - p))
    np.testing.assert_array_equal(t.labels, [1, 0])
    df = t.to_pandas()
    assert list(df.columns) == ["id", "label", "aum", "forgetting", "correctness", "el2n"]
    back = read_scores(write_scores(tmp_path / "s.parquet", t))
    np.testing.assert_allclose(back["aum"].values, t["aum"].values)


def test_runs_of_different_length_use_the_common_epochs():
    a, b = Recorder(2, 2), Recorder(2, 2)
    for rec, epochs in ((a, 3), (b, 2)):
        for _ in range(epochs):
            rec.update([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 0])
            rec.end_epoch()
    t = dynamics_scores([a, b], ["forgetting", "aum"])
    np.testing.assert_allclose(t["forgetting"].values, [0.0, 4.0])  # never learned: 2 + 2
    assert t["aum"].meta["epochs"] == 2


def test_bad_requests():
    rec = Recorder(3, 2)
    with pytest.raises(InvalidInputError, match="no complete epoch"):
        dynamics_scores(rec, ["aum"])
    rec.end_epoch()
    with pytest.raises(InvalidInputError, match="metrics must be distinct names"):
        dynamics_scores(rec, ["aum", "nope"])


def test_planted_mislabel_ranks_among_hardest():
    flip = 5
    x, y = _blobs(flip)
    res = proxy_dynamics(x, y, model="linear", epochs=12, n_seeds=2, batch_size=16, lr=0.05, seed=0,
                         grand_epoch=2, grand="both", aum_threshold_runs=True)  # fmt: skip
    t = res.table
    assert set(DYNAMICS_METRICS) <= set(t)
    for name in ("aum", "forgetting", "el2n", "grand", "grand_last", "confidence"):
        assert t[name].ranks()[flip] < 3, name  # among the 3 hardest of 90
    assert t["aum_flagged"].values[flip] > 0
    assert t["aum_flagged"].values.sum() < 10  # only a handful flagged on clean blobs


def test_proxy_dynamics_is_deterministic():
    x, y = _blobs(0)
    a = proxy_dynamics(x, y, model="linear", epochs=2, n_seeds=1, batch_size=32, seed=4).table
    b = proxy_dynamics(x, y, model="linear", epochs=2, n_seeds=1, batch_size=32, seed=4).table
    for name in a:
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert "grand_last" in a and "grand" in a
    last_only = proxy_dynamics(x, y, model="linear", epochs=1, n_seeds=1, grand="last").table
    assert "grand_last" in last_only and "grand" not in last_only


def test_bad_grand_choice():
    x, y = _blobs(0)
    with pytest.raises(InvalidInputError, match="grand must be one of"):
        proxy_dynamics(x, y, model="linear", epochs=1, n_seeds=1, grand="yes")
    with pytest.raises(InvalidInputError, match=r"^proxy_dynamics: seeds= is not taken.*n_seeds="):
        proxy_dynamics(x, y, model="linear", epochs=1, seeds=3)

import numpy as np

from selfprune.metrics.cartography import cartography, cartography_stats


def test_hand_computed():
    probs = np.array([[0.9, 0.7, np.nan], [0.2, 0.2, 0.2]])
    correct = np.array([[1.0, 1.0, np.nan], [0.0, 1.0, 0.0]])
    st = cartography_stats(probs, correct)
    np.testing.assert_allclose(st.confidence, [0.8, 0.2])
    np.testing.assert_allclose(st.variability, [0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose(st.correctness, [1.0, 1 / 3])
    t = cartography(probs, correct, ids=[10, 11])
    np.testing.assert_allclose(t["confidence"].values, [0.2, 0.8])
    np.testing.assert_allclose(t["correctness"].values, [0.0, 2 / 3])
    assert list(t) == ["confidence", "variability", "correctness"]


def test_runs_pool_epochs():
    a = np.array([[0.2, 0.4]])
    b = np.array([[0.6, 0.8]])
    st = cartography_stats(np.stack([a, b]), np.ones((2, 1, 2)))
    np.testing.assert_allclose(st.confidence, [0.5])
    np.testing.assert_allclose(st.variability, [np.std([0.2, 0.4, 0.6, 0.8])])

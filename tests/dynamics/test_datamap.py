import numpy as np

from selfprune.dynamics.datamap import recorder_cartography


class _Rec:
    def __init__(self, prob, correct):
        self._v = {"prob": np.asarray(prob, float), "correct": np.asarray(correct, float)}

    def values(self, field):
        return self._v[field]


def test_pools_every_run_and_epoch():
    a = _Rec([[0.2, 0.4], [1.0, 1.0]], [[0, 1], [1, 1]])
    b = _Rec([[0.6, 0.8], [1.0, 1.0]], [[1, 1], [1, 1]])
    st = recorder_cartography([a, b])
    np.testing.assert_allclose(st.confidence, [0.5, 1.0])
    np.testing.assert_allclose(st.variability, [np.std([0.2, 0.4, 0.6, 0.8]), 0.0], atol=1e-12)
    np.testing.assert_allclose(st.correctness, [0.75, 1.0])

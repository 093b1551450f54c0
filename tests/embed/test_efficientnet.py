import numpy as np
import pytest

from selfprune.embed import get_encoder


@pytest.mark.slow
def test_pretrained_features_are_deterministic_and_informative(digits):
    enc = get_encoder("efficientnet-lite0")
    a = enc.encode(digits.items[:64])
    assert a.shape == (64, 1280) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, get_encoder("efficientnet-lite0").encode(digits.items[:64]))
    rgb = np.repeat(digits.items[:4, :, :, None], 3, axis=3)
    np.testing.assert_allclose(enc.encode(rgb), a[:4], atol=1e-5)
    # pretrained features separate digits far better than chance with a nearest-centroid rule
    x = enc.encode(digits.items[:600])
    y = digits.labels[:600]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cents = np.stack([x[:400][y[:400] == c].mean(0) for c in range(10)])
    acc = np.mean((x[400:] @ cents.T).argmax(1) == y[400:])
    assert acc > 0.5

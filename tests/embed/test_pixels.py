import numpy as np
import pytest

from selfprune import InvalidInputError
from selfprune.embed import get_encoder


def test_pca_matches_sklearn_and_state_roundtrips(tmp_path, digits):
    from sklearn.decomposition import PCA

    enc = get_encoder("pixels", dim=10).fit(digits.items, seed=0)
    z = enc.encode(digits.items[:50])
    flat = digits.items.reshape(len(digits), -1).astype(np.float32) / 255.0
    ref = PCA(10, svd_solver="covariance_eigh").fit(flat)
    np.testing.assert_allclose(z, ref.transform(flat[:50]), atol=1e-4)
    enc.save_state(tmp_path)
    other = get_encoder("pixels", dim=10).load_state(tmp_path)
    np.testing.assert_array_equal(other.encode(digits.items[:50]), z)


def test_errors(digits):
    with pytest.raises(InvalidInputError, match="fit"):
        get_encoder("pixels").encode(digits.items[:2])
    with pytest.raises(InvalidInputError, match="dim=100 exceeds"):
        get_encoder("pixels", dim=100).fit(digits.items)
    with pytest.raises(InvalidInputError, match="unknown encoder"):
        get_encoder("clip")

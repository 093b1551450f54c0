import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfprune._checks import as_rng, check_embeddings, check_ids, check_labels, resolve_keep
from selfprune.errors import InvalidInputError


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((0, 4)), "empty"),
        (np.zeros(5), "2-D"),
        (np.array([[1.0, np.nan]]), "NaN or Inf in 1 row"),
        (np.array([[1.0, np.inf], [0, 0], [np.inf, 1]]), "2 row"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_check_embeddings_rejects(x, match):
    with pytest.raises(InvalidInputError, match=match):
        check_embeddings(x, caller="t")


def test_check_embeddings_does_not_modify_input():
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    before = x.copy()
    out = check_embeddings(x, caller="t")
    out[0, 0] = 99
    assert np.array_equal(x, before)


def test_ids_and_labels():
    assert check_ids(None, 3, caller="t").tolist() == [0, 1, 2]
    assert check_ids(["a", "b"], 2, caller="t").dtype.kind == "U"
    with pytest.raises(InvalidInputError, match="duplicated, e.g. 'a'"):
        check_ids(["a", "a"], 2, caller="t")
    with pytest.raises(InvalidInputError, match="2 labels for 3 rows"):
        check_labels([0, 1], 3, caller="t")
    with pytest.raises(InvalidInputError, match=">= 0"):
        check_labels([0, -1], 2, caller="t")


@pytest.mark.parametrize("keep", [0, 0.0, -0.1, 1.0001, 11, np.nan, "0.5", True])
def test_resolve_keep_rejects(keep):
    with pytest.raises(InvalidInputError, match="keep"):
        resolve_keep(keep, 10, caller="t")


@given(st.integers(1, 10_000), st.floats(0.0001, 1.0))
def test_resolve_keep_fraction_in_range(n, frac):
    m = resolve_keep(frac, n, caller="t")
    assert 0 < m <= n


def test_rng_is_explicit():
    assert as_rng(3).random() == np.random.default_rng(3).random()
    g = np.random.default_rng(1)
    assert as_rng(g) is g
    with pytest.raises(InvalidInputError, match="seed"):
        as_rng(-1)

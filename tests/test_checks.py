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


# ---------------------------------------------------------------- align_ids


def _slow_align(reference, ids):
    """Reference: a Python dict from id to position; None for an id that is absent."""
    pos = {v: i for i, v in enumerate(np.asarray(reference).tolist())}
    return [pos.get(v) for v in np.asarray(ids).tolist()]


@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("seed", range(5))
def test_align_ids_matches_a_dict_on_random_permutations(kind, seed):
    from selfprune._checks import align_ids

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    ref = rng.choice(10 * n, size=n, replace=False)
    if kind == "str":
        ref = np.array([f"x{v}" for v in ref])
    want = ref[rng.permutation(n)][: int(rng.integers(0, n + 1))]
    want = np.concatenate([want, want[: int(rng.integers(0, len(want) + 1))]])  # repeats in ids are fine
    got = align_ids(ref, want, caller="t")
    assert got.dtype == np.int64
    assert got.tolist() == _slow_align(ref, want)
    assert np.array_equal(ref[got], want)


@pytest.mark.parametrize("seed", range(4))
def test_align_ids_reports_planted_missing_ids(seed):
    from selfprune._checks import align_ids

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    ref = rng.permutation(n) * 2  # even ids only
    lost = 2 * rng.choice(n, size=int(rng.integers(1, 6)), replace=False) + 1  # odd: never present
    want = rng.permutation(np.concatenate([ref, lost]))
    expected = rf"^caller_x: {len(lost)} of {len(want)} ids are not in the data, e.g. "
    with pytest.raises(InvalidInputError, match=expected) as e:
        align_ids(ref, want, caller="caller_x", what="data")
    assert len(str(e.value).splitlines()) == 1
    first = want[np.isin(want, lost)][0]
    assert repr(int(first)) in str(e.value)
    got = align_ids(ref, want, caller="t", allow_missing=True)
    slow = _slow_align(ref, want)
    assert got.tolist() == [-1 if p is None else p for p in slow]


@pytest.mark.parametrize("seed", range(4))
def test_align_ids_reports_planted_duplicated_reference_ids(seed):
    from selfprune._checks import align_ids

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    ref = np.arange(n)
    dup = rng.choice(n, size=int(rng.integers(1, min(n, 5) + 1)), replace=False)
    ref = rng.permutation(np.concatenate([ref, dup]))
    with pytest.raises(InvalidInputError, match=rf"t: the scores ids must be unique; {len(dup)} duplicated"):
        align_ids(ref, np.arange(n), caller="t", what="scores")


def test_align_ids_kinds_and_empty():
    from selfprune._checks import align_ids

    assert align_ids(np.array([3, 1], dtype=np.uint8), np.array([1, 3, 3]), caller="t").tolist() == [1, 0, 0]
    assert align_ids(np.array(["b", "a"], dtype=object), np.array(["a"]), caller="t").tolist() == [1]
    assert align_ids(np.arange(3), np.array([], dtype=np.int64), caller="t").tolist() == []
    assert align_ids(np.array([], dtype=np.int64), np.array([4]), caller="t", allow_missing=True).tolist() == [-1]
    with pytest.raises(InvalidInputError, match="different kinds"):
        align_ids(np.arange(3), np.array(["0"]), caller="t")

"""The fast similarity kernel decides exactly what float64 decides, whatever the candidate type."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfprune.metrics import _kernel
from selfprune.metrics._kernel import by_row_blocks, kernel, nearest, pairs_above
from selfprune.metrics._kmeans import faiss_search, fit_centroids, normalize_rows
from selfprune.metrics.prototypes import prototypes
from selfprune.metrics.semdedup import semdedup

CHECKED = ("bf16", "fp16", "fp32-checked", "fp32-torch")  # the torch kernels run on CUDA where there is one


def _reference(x, c, top):
    """float64 brute force: top similarities, lower index first on ties."""
    s = x.astype(np.float64) @ c.astype(np.float64).T
    o = np.lexsort((np.broadcast_to(np.arange(len(c)), s.shape), -s), axis=1)[:, :top]
    return o


def _unit(a):
    return normalize_rows(np.asarray(a, dtype=np.float32))


@pytest.mark.parametrize("kind", CHECKED)
def test_planted_near_ties_are_decided_as_float64_decides(kind):
    rng = np.random.default_rng(0)
    d = 64
    x = _unit(rng.normal(size=(200, d)))
    c = np.empty((2, d), np.float32)
    # per row: two centroids whose similarities differ by ~1e-5, far below bfloat16's 4e-3 rounding
    labels = []
    for i in range(len(x)):
        base = x[i] + 0.8 * _unit(rng.normal(size=(1, d)))[0]
        tilt = _unit(rng.normal(size=(1, d)))[0] * 2e-5
        c[0], c[1] = _unit((base + tilt)[None])[0], _unit((base - tilt)[None])[0]
        if i % 2:
            c = c[::-1].copy()  # the winner sits at either index
        with kernel(kind):
            sims, got = nearest(x[i : i + 1], c, top=2)
        want = _reference(x[i : i + 1], c, 2)
        labels.append(np.array_equal(got, want))
        exact = x[i].astype(np.float64) @ c.astype(np.float64).T
        np.testing.assert_allclose(sims[0], exact[want[0]], rtol=0, atol=1e-14)
    assert all(labels)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(2, 60),
    d=st.integers(2, 48),
    top=st.integers(1, 2),
    seed=st.integers(0, 2**16),
    clumped=st.booleans(),
)
def test_assignments_equal_float64_on_random_data(n, k, d, top, seed, clumped):
    rng = np.random.default_rng(seed)
    c = _unit(rng.normal(size=(k, d)))
    if clumped:  # centroids nearly alike: most rows need the re-check
        c = _unit(c[:1] + 1e-3 * rng.normal(size=(k, d)))
    x = _unit(rng.normal(size=(n, d)))
    want = _reference(x, c, top)
    for kind in CHECKED:
        with kernel(kind):
            _, got = nearest(x, c, top=top)
        np.testing.assert_array_equal(got, want, err_msg=kind)


def test_results_do_not_depend_on_the_batch():
    rng = np.random.default_rng(1)
    x = _unit(rng.normal(size=(5000, 96)))
    c = fit_centroids(x[:2000], k=50, seed=0)
    for kind in CHECKED:
        with kernel(kind):
            whole = nearest(x, c, top=2)
            parts = [nearest(x[a : a + 37], c, top=2) for a in range(0, len(x), 37)]
        np.testing.assert_array_equal(whole[0], np.concatenate([p[0] for p in parts]))
        np.testing.assert_array_equal(whole[1], np.concatenate([p[1] for p in parts]))


def test_forced_fp32_is_faiss_byte_for_byte():
    rng = np.random.default_rng(2)
    x = _unit(rng.normal(size=(3000, 32)))
    from selfprune.engine import sample_rows

    with kernel("fp32"):
        # what prototypes did before the kernel existed: faiss k-means, then faiss search
        c = fit_centroids(normalize_rows(sample_rows(x, 20 * 256, seed=0)), k=20, seed=0)
        sims, idx = nearest(x, c)
        s = prototypes(x, k=20, seed=0)
    fs, fi = faiss_search(x, c, 1)
    np.testing.assert_array_equal(sims[:, 0], fs[:, 0].astype(np.float64))
    np.testing.assert_array_equal(idx[:, 0], fi[:, 0])
    fs2, _ = faiss_search(normalize_rows(x), c, 1)  # prototypes normalises each chunk itself
    np.testing.assert_array_equal(s.values, np.clip(1.0 - fs2[:, 0].astype(np.float64), 0, 2))


@pytest.mark.parametrize("kind", CHECKED)
def test_checked_kernel_agrees_with_faiss_on_the_same_centroids(kind):
    rng = np.random.default_rng(6)
    x = _unit(rng.normal(size=(20_000, 64)))
    c = fit_centroids(x[:5000], k=200, seed=0)
    with kernel(kind):
        sims, idx = nearest(x, c)
    fs, fi = faiss_search(x, c, 1)
    differ = np.flatnonzero(idx[:, 0] != fi[:, 0])
    # faiss may only differ where its own fp32 rounding (about 1e-6 here) cannot tell two centroids apart
    exact_faiss = np.einsum("nd,nd->n", x[differ].astype(np.float64), c[fi[differ, 0]].astype(np.float64))
    assert (sims[differ, 0] - exact_faiss <= 64 * 2.0**-24).all()
    assert len(differ) <= 5
    np.testing.assert_allclose(sims[:, 0], fs[:, 0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", CHECKED)
def test_pairs_above_are_the_exact_pairs_and_values(kind):
    rng = np.random.default_rng(3)
    a = _unit(rng.normal(size=(300, 40)))
    b = np.concatenate([a[:100] + 1e-3 * rng.normal(size=(100, 40)), rng.normal(size=(200, 40))])
    b = _unit(b)
    thr = 0.999
    exact = a.astype(np.float64) @ b.astype(np.float64).T
    with kernel(kind):
        i, j, v = pairs_above(a, b, thr)
    hi, hj = np.nonzero(exact > thr)
    assert len(hi) >= 50 and (exact[:100, :100] <= thr).sum() > 0  # the planted pairs straddle it
    np.testing.assert_array_equal(i, hi)  # every decision is float64's, in row-major order
    np.testing.assert_array_equal(j, hj)
    np.testing.assert_allclose(v, exact[hi, hj], rtol=0, atol=1e-14)  # and so is every value
    z = np.concatenate([a[:150], b[:100]])  # rows 150 + i are near rows i
    with kernel(kind):
        li, lj, lv = pairs_above(z, z, thr, lower=True)
    self_exact = z.astype(np.float64) @ z.astype(np.float64).T
    si, sj = np.nonzero(np.tril(self_exact > thr, k=-1))
    assert len(si) >= 50 and np.array_equal(li, si) and np.array_equal(lj, sj)
    np.testing.assert_allclose(lv, self_exact[si, sj], rtol=0, atol=1e-14)


def test_plain_fp32_pairs_compare_the_fp32_product_as_a_number():
    rng = np.random.default_rng(5)
    a = _unit(rng.normal(size=(200, 16)))
    b = _unit(np.concatenate([a[:80] + 0.05 * rng.normal(size=(80, 16)), rng.normal(size=(50, 16))]))
    s = a @ b.T
    thr = float(np.sort(s[s > 0.9])[len(s[s > 0.9]) // 2])  # a threshold equal to one of the values
    with kernel("fp32"):
        i, j, v = pairs_above(a, b, thr)
        i64, j64, _ = pairs_above(a.astype(np.float64), b.astype(np.float64), thr)
    hi, hj = np.nonzero(s.astype(np.float64) > thr)
    np.testing.assert_array_equal(i, hi)
    np.testing.assert_array_equal(j, hj)
    assert v.dtype == np.float64 and np.array_equal(v, s[hi, hj].astype(np.float64))
    e = a.astype(np.float64) @ b.astype(np.float64).T
    assert np.array_equal(np.stack([i64, j64]), np.stack(np.nonzero(e > thr)))


def test_dedup_groups_equal_across_kernels():
    rng = np.random.default_rng(4)
    x = _unit(rng.normal(size=(2000, 48)))
    x[1500:1700] = _unit(x[:200] + 2e-3 * rng.normal(size=(200, 48)))
    results = {}
    for kind in ("fp32", *CHECKED):
        with kernel(kind):
            r = semdedup(x, eps=0.01, k=10, seed=0)
        results[kind] = (r.kept.tolist(), r.removed.tolist(), r.duplicate_of.tolist())
    assert all(results[k] == results["fp32-checked"] for k in CHECKED)  # exact decisions: one answer
    for _kept, removed, dup_of in results.values():  # faiss's clusters differ, the pairs found do not
        pairs = {frozenset(p) for p in zip(removed, dup_of, strict=True)}
        assert pairs == {frozenset((i, 1500 + i)) for i in range(200)}


def test_row_blocks_make_a_product_independent_of_the_batch():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(700, 50)).astype(np.float32)
    w = rng.normal(size=(30, 50)).astype(np.float32)
    whole = by_row_blocks(lambda b: b @ w.T, x)
    # chunks of any size, starting anywhere: each row keeps its place in its block
    for size in (3, 37, 256, 300):
        pieces = np.concatenate([by_row_blocks(lambda b: b @ w.T, x[a : a + size], a) for a in range(0, 700, size)])
        np.testing.assert_array_equal(whole, pieces)
    shifted = by_row_blocks(lambda b: b @ w.T, x[5:], 5)
    np.testing.assert_array_equal(whole[5:], shifted)


def test_bad_kernel_name_and_calibration_cache(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="kernel must be one of"):
        _kernel.set_kernel("fp8")
    monkeypatch.setenv("SELFPRUNE_CACHE", str(tmp_path))
    first = _kernel.calibration(refresh=True)
    assert (tmp_path / "kernel-calibration.json").is_file()
    assert _kernel.calibration() == first  # read back, not measured again
    assert first["bf16_speedup"] == pytest.approx(first["fp32_checked_s"] / first["bf16_s"])
    times = first["times"]
    assert first["best"] in times and times[first["best"]] <= times["fp32-checked"]  # never a slower one
    monkeypatch.setenv("SELFPRUNE_KERNEL", "fp32")
    assert _kernel.active_kernel() == "fp32"  # the environment overrides the setting


def test_without_torch_the_default_kernel_needs_only_faiss(monkeypatch):
    import sys

    from selfprune.metrics.pseudo import pseudo_labels

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.setattr(_kernel, "_resolved", {})
    monkeypatch.delenv("SELFPRUNE_KERNEL", raising=False)
    assert _kernel.active_kernel() == "fp32-checked"
    rng = np.random.default_rng(8)
    x = _unit(rng.normal(size=(400, 16)))
    _, got = nearest(x, x[:10], top=2)
    np.testing.assert_array_equal(got, _reference(x, x[:10], 2))
    assert len(pseudo_labels(x, k=5, refine="none").labels) == 400


def test_torch_kernels_run_at_full_precision_and_restore_the_settings(monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = _unit(rng.normal(size=(500, 24)))
    c = _unit(x[:40] + 1e-4 * rng.normal(size=(40, 24)))  # near ties everywhere
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # a caller's setting that would allow bf16 products
    try:
        with kernel("fp32-torch"):
            _, got = nearest(x, c, top=2)
        assert torch.get_float32_matmul_precision() == "medium"  # restored
    finally:
        torch.set_float32_matmul_precision(old)
    np.testing.assert_array_equal(got, _reference(x, c, 2))


def test_a_kernel_device_that_is_not_there_is_named(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("SELFPRUNE_KERNEL_DEVICE", "nosuchdevice")
    with pytest.raises(ValueError, match="SELFPRUNE_KERNEL_DEVICE='nosuchdevice'"):
        _kernel.kernel_device()
    monkeypatch.setenv("SELFPRUNE_KERNEL_DEVICE", "cpu")
    assert _kernel.kernel_device() == "cpu"


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 200), k=st.integers(1, 80), d=st.integers(1, 512), seed=st.integers(0, 2**16),
       kind=st.sampled_from(("bf16", "fp16", "fp32-torch", "fp32")))  # fmt: skip
def test_the_candidate_error_never_exceeds_the_bound(n, k, d, seed, kind):
    """The premise of every re-check: |candidate - float64| <= beta for every pair."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x = _unit(rng.normal(size=(n, d)))
    c = _unit(rng.normal(size=(k, d)))
    s, beta = _kernel._candidates(x, c, kind)
    err = np.abs(s.cpu().double().numpy() - x.astype(np.float64) @ c.astype(np.float64).T)
    assert (err <= beta.numpy()[:, None]).all()

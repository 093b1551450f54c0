"""Similarity kernels with an exact re-check: fast candidate products, exact decisions.

Two questions are asked of similarities over all rows: *which centroid is nearest* (the final
assignment of prototypes, pseudo-labels, dedup's clusters, the audit) and *is this pair above
1 - eps* (dedup's cluster pass). Float products round differently with the batch size and the
thread count, so the answers are made exact: a candidate product decides almost every case, and
the few it cannot decide are recomputed in float64. The results are those of the **exact
reference**, float64 dot products of the float32 inputs, whatever the candidate type, the chunking,
the thread count or the engine.

**The bound.** Inputs rounded to the candidate type (unit roundoff ``u``: 2^-8 for bfloat16,
2^-11 for float16, 0 for fp32) give ``x~ = x + r_x`` and ``c~ = c + r_c``. The candidate product
``s~`` (accumulated in fp32 and, for the half types, rounded to that type on output) differs from
the exact ``s = x . c`` by at most

    beta_i = |r_x_i| max_j |c~_j| + |x_i| max_j |r_c_j| + (u_out + gamma_D) |x~_i| max_j |c~_j|

(Cauchy-Schwarz on the two rounding terms; ``gamma_D = D 2^-24 / (1 - D 2^-24)`` for fp32
accumulation in any order; ``u_out`` the output rounding, 0 for fp32). So every centroid that
can be among the true top ``t`` of row i has ``s~ >= s~_(t) - 2 beta_i``; those candidates are
rescored exactly and the top ``t`` taken by (exact similarity, then lower index). A pair can be
above a threshold only if ``s~ >= thr - beta``; only those pairs are rescored.

**Kernels.** ``fp32-checked``: faiss's fp32 search gives the candidates (``gamma_D`` alone, about
2e-5 for D = 384: a handful of rows in a million are rescored). ``bf16``: a bfloat16 product
(torch); its window is about 0.015 in cosine, wide enough that on clustered data about 40% of the
rows are rescored, which on the CPU measured here costs more than the product saves
(docs/engine.md). ``fp16``: a float16 product (torch); eight times finer rounding than bfloat16
(a window of about 0.002 in cosine), so far fewer rows are rescored, on hardware whose float16
product is fast. ``fp32-torch``: an fp32 product by torch (``gamma_D``, as ``fp32-checked``).
``auto`` (default) times the candidates on a sample once per machine and device (cached) and keeps
the fastest (``fp32-checked`` unless another is more than 1.1x faster). ``fp32``: faiss's search
with no re-check (the values of earlier versions, byte for byte). ``SELFPRUNE_KERNEL`` overrides
the setting.

**GPU.** The torch kernels (``bf16``, ``fp16``, ``fp32-torch``) compute their products on
:func:`kernel_device`: CUDA when torch sees a GPU, else the CPU (``SELFPRUNE_KERNEL_DEVICE``
overrides it). Only the (n, k) candidate products and the top-k run there; the bound, the window
and the float64 re-check run on the CPU as before, so a GPU gives the same answers as the CPU. The
products run at full fp32 precision (no TF32) and half products accumulate in fp32 (no
reduced-precision reductions), which is what the bound assumes; the settings are restored afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import InvalidInputError

KERNELS = ("auto", "bf16", "fp16", "fp32-checked", "fp32-torch", "fp32")
"""``auto``: exact results, candidates from the fastest checked kernel (calibrated); ``bf16`` /
``fp16`` / ``fp32-checked`` / ``fp32-torch``: exact results, candidates in that type (``fp32-checked`` by
faiss, the others by torch on :func:`kernel_device`); ``fp32``: plain fp32, no re-check."""
TORCH_KERNELS = ("bf16", "fp16", "fp32-torch")
_HALF = {"bf16": ("bfloat16", 2.0**-8), "fp16": ("float16", 2.0**-11)}  # torch type, unit roundoff

EXTRA = 7
"""Candidates fetched beyond the top ``t``; rows with more inside the window are rescored in full."""

_BLOCK = 4096
_GPU_BLOCK = 65_536  # rows per product on a GPU: (65,536 x k) fp32 candidates stay small there
_setting = ["auto"]
_resolved: dict[str, str] = {}


def set_kernel(name: str) -> None:
    """Choose the similarity kernel for this process (see :data:`KERNELS`)."""
    if name not in KERNELS:
        raise InvalidInputError(f"kernel must be one of {KERNELS}, got {name!r}")
    _setting[0] = name


@contextlib.contextmanager
def kernel(name: str) -> Iterator[None]:
    """Use kernel ``name`` inside the block."""
    old = _setting[0]
    set_kernel(name)
    try:
        yield
    finally:
        _setting[0] = old


def active_kernel() -> str:
    """The kernel in use: ``bf16``, ``fp32-checked`` or ``fp32`` (``auto`` resolved)."""
    name = os.environ.get("SELFPRUNE_KERNEL") or _setting[0]
    if name not in KERNELS:
        raise InvalidInputError(f"SELFPRUNE_KERNEL must be one of {KERNELS}, got {name!r}")
    if name != "auto":
        return name
    if "auto" not in _resolved:
        try:
            import torch  # noqa: F401  (bfloat16 candidates need it; fp32-checked needs only faiss)
        except ImportError:
            _resolved["auto"] = "fp32-checked"
        else:
            _resolved["auto"] = calibration()["best"]
    return _resolved["auto"]


def kernel_device() -> str:
    """Where the torch kernels compute their products: ``SELFPRUNE_KERNEL_DEVICE``, else ``cuda``
    when torch sees a GPU, else ``cpu``."""
    import torch

    name = os.environ.get("SELFPRUNE_KERNEL_DEVICE")
    if name:
        try:
            dev = torch.device(name)
            torch.empty(1, device=dev)
        except (RuntimeError, AssertionError) as exc:
            raise InvalidInputError(f"SELFPRUNE_KERNEL_DEVICE={name!r} is not usable here: {exc}") from None
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def _full_precision(torch) -> Iterator[None]:
    """fp32 products at full precision (no TF32, no bf16 inside fp32 products) and fp32
    accumulation of half products inside the block: the bound's premise. The caller's settings
    are restored, whichever of torch's two precision APIs they were made with."""
    cuda = torch.backends.cuda.matmul
    flags = ("allow_bf16_reduced_precision_reduction", "allow_fp16_reduced_precision_reduction")
    saved = {f: getattr(cuda, f) for f in flags}
    backends = (torch.backends.cuda.matmul, torch.backends.mkldnn.matmul)
    try:
        legacy = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")
    except RuntimeError:  # the caller chose precisions per backend (torch's newer API): use that one
        legacy, per_backend = None, [b.fp32_precision for b in backends]
        for b in backends:
            b.fp32_precision = "ieee"
    for f in flags:
        setattr(cuda, f, False)
    try:
        yield
    finally:
        if legacy is not None:
            torch.set_float32_matmul_precision(legacy)
        else:
            for b, v in zip(backends, per_backend, strict=True):
                b.fp32_precision = v
        for f, v in saved.items():
            setattr(cuda, f, v)


def _cache_file() -> Path:
    root = Path(os.environ.get("SELFPRUNE_CACHE", Path.home() / ".cache" / "selfprune"))
    return root / "kernel-calibration.json"


def _machine_key() -> str:
    import torch

    dev = kernel_device()
    if dev.startswith("cuda"):
        dev = f"{dev} {torch.cuda.get_device_name(torch.device(dev))}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}|{os.cpu_count()}|torch {torch.__version__}|{dev}"


def calibration(*, refresh: bool = False) -> dict:
    """Time the re-checked search on each candidate kernel (16,384 clustered rows x 1,000 centroids
    in 384-d; ``fp32-torch`` only when the kernel device is a GPU, on a CPU it is the slowest);
    cached per machine and device. ``best``: the kernel ``auto`` uses; ``times``: seconds each;
    ``bf16_speedup`` > 1: bfloat16 candidates are faster than faiss's here."""
    path, key = _cache_file(), _machine_key()
    if not refresh:
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key and "best" in cached:
                return cached
        except (OSError, ValueError):
            pass
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, 384)).astype(np.float32)
    x = centres[rng.integers(0, 2000, 16_384)] + 0.5 * rng.normal(size=(16_384, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c = np.ascontiguousarray(x[:1000])
    times = {}
    kinds = ["fp32-checked", "bf16", "fp16"] + (["fp32-torch"] if kernel_device() != "cpu" else [])
    for kind in kinds:
        with kernel(kind):
            nearest(x[:512], c)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                nearest(x, c)
                best = min(best, time.perf_counter() - t0)
        times[kind] = best
    speedup = times["fp32-checked"] / times["bf16"]
    fastest = min(times, key=times.__getitem__)
    best = fastest if times["fp32-checked"] / times[fastest] > 1.1 else "fp32-checked"
    result = {"key": key, "times": times, "best": best, "fp32_checked_s": times["fp32-checked"],
              "bf16_s": times["bf16"], "bf16_speedup": speedup}  # fmt: skip
    try:
        from selfprune.io.atomic import write_json_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, result)
    except OSError:
        pass  # a read-only home: calibrate again next time
    return result


# ----------------------------------------------------------------------------------------------
# candidate products and their error bound


def _candidates(x: np.ndarray, c: np.ndarray, kind: str):
    """The candidate product (torch float32 (n, k), on the kernel device for the torch kernels) and
    the per-row bound beta (torch float64 (n,), on the CPU)."""
    import torch

    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    if kind not in TORCH_KERNELS:
        return torch.from_numpy(x @ c.T), torch.from_numpy(_fp32_bound(x, c))
    half = getattr(torch, _HALF[kind][0]) if kind in _HALF else torch.float32
    xb, cb = xt.to(half), ct.to(half)
    dev = kernel_device()
    with _full_precision(torch):
        s = (xb.to(dev) @ cb.to(dev).T).float()
    if kind not in _HALF:
        return s, torch.from_numpy(_fp32_bound(x, c))
    xr, cr = xb.float(), cb.float()
    rx = (xr - xt).double().norm(dim=1)
    rc = (cr - ct).double().norm(dim=1).max()
    xn, cn = xr.double().norm(dim=1), cr.double().norm(dim=1).max()
    beta = rx * cn + xt.double().norm(dim=1) * rc + (_HALF[kind][1] + _gamma(x.shape[1])) * xn * cn
    return s, _pad(beta)


def _gamma(d: int) -> float:
    """The fp32 accumulation bound over ``d`` terms, in any order."""
    return d * 2.0**-24 / (1 - d * 2.0**-24)


def _pad(beta):
    """A hair above the bound, for the bound's own rounding."""
    return beta * (1 + 1e-6) + 1e-30


def _fp32_bound(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """beta of an fp32 product (float64 (n,)): ``gamma_D |x_i| max_j |c_j|``, norms in float64."""
    xn = np.sqrt(np.einsum("nd,nd->n", x, x, dtype=np.float64))
    cn = float(np.sqrt(np.einsum("kd,kd->k", c, c, dtype=np.float64)).max())
    return _pad(_gamma(x.shape[1]) * xn * cn)


def _exact_rows(x: np.ndarray, c64: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Exact float64 similarity of each row to each of its candidates ``idx`` (n, m); the same value
    for the same pair whatever else is in the batch (a plain loop over D, no BLAS). In row blocks,
    so the float64 copies stay in cache."""
    out = np.empty(idx.shape, dtype=np.float64)
    for a in range(0, len(x), 1024):
        xb = x[a : a + 1024].astype(np.float64)
        out[a : a + 1024] = np.einsum("nd,nmd->nm", xb, c64[idx[a : a + 1024]], optimize=False)
    return out


def nearest(x: np.ndarray, centroids: np.ndarray, top: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` most similar centroids of each row: (similarities (n, top) float64, indices (n, top)).

    Exact (float64) unless the kernel is plain ``fp32`` (faiss, as before). Ties: lower index first.
    """
    kind = active_kernel()
    x = np.ascontiguousarray(x, dtype=np.float32)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    if top > len(c):
        raise InvalidInputError(f"nearest: top={top} exceeds the {len(c)} centroids")
    if kind == "fp32":
        from selfprune.metrics._kmeans import faiss_search

        s, i = faiss_search(x, c, top)
        return s.astype(np.float64), i.astype(np.int64)
    c64 = c.astype(np.float64)
    if kind == "fp32-checked":
        return _nearest_faiss(x, c, c64, top)
    sims = np.empty((len(x), top), dtype=np.float64)
    labels = np.empty((len(x), top), dtype=np.int64)
    block = _BLOCK if kernel_device() == "cpu" else _GPU_BLOCK
    for a in range(0, len(x), block):
        sims[a : a + block], labels[a : a + block] = _nearest_block(x[a : a + block], c, c64, top, kind)
    return sims, labels


def _nearest_faiss(x, c, c64, top):
    """faiss's fp32 top ``top + 1`` as candidates; rows whose next candidate is inside the window
    are searched again wider, and rescored exactly."""
    from selfprune.metrics._kmeans import faiss_search

    n, k = len(x), len(c)
    beta = _fp32_bound(x, c)
    labels = np.empty((n, top), dtype=np.int64)
    for a in range(0, n, 65_536):
        xs, bs = x[a : a + 65_536], beta[a : a + 65_536]
        t = min(k, top + 1)
        sims, idx = faiss_search(xs, c, t)
        lab = idx[:, :top].astype(np.int64)
        if t > top:
            hard = np.flatnonzero(sims[:, top].astype(np.float64) >= sims[:, top - 1] - 2 * bs)
            if len(hard):
                lab[hard] = _rescore(xs[hard], c, c64, top, bs[hard])
        labels[a : a + 65_536] = lab
    return _exact_ordered(x, c64, labels)


def _rescore(x, c, c64, top, beta):
    """The exact top ``top`` of rows whose faiss candidates were too close to call."""
    from selfprune.metrics._kmeans import faiss_search

    k = len(c)
    m = min(k, top + EXTRA)
    sims, idx = faiss_search(x, c, m)
    idx = idx.astype(np.int64)
    inside = (sims.astype(np.float64) >= (sims[:, top - 1] - 2 * beta)[:, None]).sum(axis=1)
    out = _top_in_window(x, c64, idx, inside, top)
    full = np.flatnonzero(inside >= m) if m < k else np.empty(0, dtype=np.int64)
    if len(full):  # more candidates inside the window than fetched: every centroid, exactly
        out[full] = _top_of_all(x[full], c64, top)
    return out


def _top_in_window(x, c64, cand, inside, top):
    """The exact top ``top`` of each row among its first ``inside`` candidates ``cand`` (n, m);
    ties go to the lower index."""
    ex = _exact_rows(x, c64, cand)
    ex[np.arange(cand.shape[1])[None, :] >= inside[:, None]] = -np.inf  # outside the window: cannot win
    return np.take_along_axis(cand, np.lexsort((cand, -ex), axis=1)[:, :top], axis=1)


def _top_of_all(x, c64, top):
    """The exact top ``top`` of each row over every centroid; ties go to the lower index."""
    ex = x.astype(np.float64) @ c64.T
    return np.lexsort((np.broadcast_to(np.arange(len(c64)), ex.shape), -ex), axis=1)[:, :top]


def _exact_ordered(x, c64, labels):
    """The exact similarities of the chosen ``labels`` (n, top), both ordered by similarity, then index."""
    exact = _exact_rows(x, c64, labels)
    if labels.shape[1] > 1:
        o = np.lexsort((labels, -exact), axis=1)
        labels, exact = np.take_along_axis(labels, o, axis=1), np.take_along_axis(exact, o, axis=1)
    return exact, labels


def _nearest_block(x, c, c64, top, kind):
    import torch

    n, k = len(x), len(c)
    m = min(k, top + EXTRA)
    s, beta = _candidates(x, c, kind)
    if top == 1:  # one pass for the maximum, one to count what is inside its window
        mx, arg = s.max(dim=1)
        mx = mx.cpu()
        floor = (mx.double() - 2 * beta).float() - torch.finfo(torch.float32).eps * mx.abs()
        inside = (s >= floor.to(s.device)[:, None]).sum(dim=1).cpu().numpy()
        labels = arg.cpu().numpy().astype(np.int64)[:, None]
        rows = np.flatnonzero(inside > 1)
        idx = np.zeros((n, m), dtype=np.int64)
        if len(rows):
            idx[rows] = torch.topk(s[torch.from_numpy(rows).to(s.device)], m, dim=1)[1].cpu().numpy()
    else:
        vals, idx = torch.topk(s, m, dim=1)  # sorted, largest first
        vals, idx, beta_np = vals.cpu().double().numpy(), idx.cpu().numpy().astype(np.int64), beta.numpy()
        inside = (vals >= (vals[:, top - 1] - 2 * beta_np)[:, None]).sum(axis=1)  # candidates that can be top
        labels = idx[:, :top].copy()  # right when exactly ``top`` candidates are inside the window
    full = inside >= m if m < k else np.zeros(n, dtype=bool)
    hard = (inside > top) & ~full
    if hard.any():
        labels[hard] = _top_in_window(x[hard], c64, idx[hard], inside[hard], top)
    if full.any():  # more candidates inside the window than fetched: every centroid, exactly
        labels[full] = _top_of_all(x[full], c64, top)
    return _exact_ordered(x, c64, labels)


def pairs_above(a: np.ndarray, b: np.ndarray, thr: float, *, lower: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair whose similarity ``a[i] . b[j]`` exceeds ``thr``: ``(i, j, value)``, row-major;
    with ``lower``, only the pairs with ``j < i`` (for ``a`` against itself: no row with itself,
    each pair once).

    The checked kernels find the candidates with the fast product and its bound and compute each
    one in float64, so the pairs and values are the exact reference's. The plain ``fp32`` kernel
    compares its fp32 product (as a float64 number) with ``thr``. Nothing dense in float64 is
    built: callers only ever need the pairs above the threshold.
    """
    kind = active_kernel()
    if kind == "fp32":
        s = a @ b.T
        lim: Any = thr
        if s.dtype == np.float32:  # the largest float32 not above thr: v > lim iff float64(v) > thr
            lim = np.float32(thr)
            if float(lim) > thr:
                lim = np.nextafter(lim, np.float32(-np.inf))
        i, j = _lower(*np.nonzero(s > lim), lower)
        return i, j, s[i, j].astype(np.float64)
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    if kind in TORCH_KERNELS:
        st, bt = _candidates(a, b, kind)
        s, beta = st.cpu().numpy(), bt.numpy()
    else:  # numpy's fp32 product, as the plain kernel computes it
        s, beta = a @ b.T, _fp32_bound(a, b)
    lim = np.nextafter((thr - beta).astype(np.float32), np.float32(-np.inf))  # never above thr - beta
    i, j = _lower(*np.nonzero(s >= lim[:, None]), lower)
    v = np.empty(len(i), dtype=np.float64)
    for p in range(0, len(i), 65_536):
        ii, jj = i[p : p + 65_536], j[p : p + 65_536]
        v[p : p + 65_536] = np.einsum("nd,nd->n", a[ii].astype(np.float64), b[jj].astype(np.float64),
                                      optimize=False)
    keep = v > thr
    return i[keep], j[keep], v[keep]


def _lower(i: np.ndarray, j: np.ndarray, lower: bool) -> tuple[np.ndarray, np.ndarray]:
    if not lower:
        return i, j
    keep = j < i
    return i[keep], j[keep]


ROW_BLOCK = 256
"""Rows per product in :func:`by_row_blocks`: every row is computed in a product of exactly this
many rows, at a place fixed by its row number, so its value depends neither on how many rows came
with it (a CPU GEMM picks other kernels for small batches, and those round differently) nor on
where its chunk began (a GEMM kernel may also round a row by its place in the block, as
OpenBLAS's Haswell kernel does: chunks of 37 rows gave other values than the whole array before
rows were placed by number, ``tests/metrics/test_kernel.py``)."""


def by_row_blocks(fn, x: np.ndarray, start: int = 0) -> np.ndarray:
    """``fn`` (a row-wise function of a float32 (ROW_BLOCK, D) numpy block, returning an array) over
    ``x`` in zero-padded blocks of ``ROW_BLOCK`` rows, concatenated. ``start`` is the row number of
    ``x[0]`` in the whole data: row ``r`` is always computed at place ``r % ROW_BLOCK`` of its block,
    so it gets the same value however the data was chunked."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    lead = start % ROW_BLOCK
    parts = []
    for a in range(-lead, len(x), ROW_BLOCK):
        blk = x[max(a, 0) : a + ROW_BLOCK]
        before, after = max(-a, 0), ROW_BLOCK - max(-a, 0) - len(blk)
        if before or after:
            blk = np.concatenate([np.zeros((before, x.shape[1]), np.float32), blk,
                                  np.zeros((after, x.shape[1]), np.float32)])  # fmt: skip
        parts.append(np.asarray(fn(blk))[before : ROW_BLOCK - after])
    return np.concatenate(parts) if parts else np.empty((0,))


__all__ = [
    "KERNELS",
    "ROW_BLOCK",
    "by_row_blocks",
    "set_kernel",
    "kernel",
    "active_kernel",
    "kernel_device",
    "calibration",
    "nearest",
    "pairs_above",
]

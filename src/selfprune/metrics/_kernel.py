"""Similarity kernels with an exact re-check: fast candidate products, exact decisions.

Two questions are asked of similarities at scale: *which centroid is nearest* (k-means assignment,
prototypes, pseudo-labels, dedup's clusters) and *is this pair above 1 - eps* (dedup's cluster
pass). A product in bfloat16 decides almost every case at a third of the fp32 cost on CPUs with
AVX-512 BF16; the few cases it cannot decide are recomputed exactly. The results are those of the
**exact reference**, float64 dot products of the float32 inputs: the same whatever the candidate
type, the chunking, the thread count or the engine.

**The bound.** Inputs rounded to the candidate type (unit roundoff ``u``: 2^-8 for bfloat16) give
``x~ = x + r_x`` and ``c~ = c + r_c``. The candidate product ``s~`` (accumulated in fp32 and, for
bfloat16 on CPU, rounded to bfloat16 on output) differs from the exact ``s = x . c`` by at most

    beta_i = |r_x_i| max_j |c~_j| + |x_i| max_j |r_c_j| + (u_out + gamma_D) |x~_i| max_j |c~_j|

(Cauchy-Schwarz on the two rounding terms; ``gamma_D = D 2^-24 / (1 - D 2^-24)`` for fp32
accumulation in any order; ``u_out`` the output rounding, 0 for fp32). So every centroid that
can be among the true top ``t`` of row i has ``s~ >= s~_(t) - 2 beta_i``; those candidates are
rescored exactly and the top ``t`` taken by (exact similarity, then lower index). A pair is above a
threshold only if ``s~ > thr - beta``; only those pairs are rescored.

``set_kernel("fp32")`` restores the plain faiss / numpy fp32 products with no re-check (the
behaviour of earlier versions, byte for byte). ``"auto"`` (default) measures once per process
whether bfloat16 products are faster than fp32 here (cached on disk per CPU and torch version) and
uses them if so, else fp32 candidates with the same exact re-check.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from selfprune.errors import InvalidInputError

KERNELS = ("auto", "bf16", "fp32-checked", "fp32")
"""``auto``: exact results, candidates in the faster of bf16 and fp32 (calibrated); ``bf16`` /
``fp32-checked``: exact results, candidates in that type; ``fp32``: plain fp32, no re-check."""

EXTRA = 7
"""Candidates fetched beyond the top ``t``; rows with more inside the window are rescored in full."""

_BLOCK = 4096
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
    name = os.environ.get("SELFPRUNE_KERNEL", _setting[0])
    if name not in KERNELS:
        raise InvalidInputError(f"SELFPRUNE_KERNEL must be one of {KERNELS}, got {name!r}")
    if name != "auto":
        return name
    if "auto" not in _resolved:
        _resolved["auto"] = "bf16" if calibration()["bf16_speedup"] >= 1.3 else "fp32-checked"
    return _resolved["auto"]


def _cache_file() -> Path:
    root = Path(os.environ.get("SELFPRUNE_CACHE", Path.home() / ".cache" / "selfprune"))
    return root / "kernel-calibration.json"


def _machine_key() -> str:
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}|{os.cpu_count()}|torch {torch.__version__}"


def calibration(*, refresh: bool = False) -> dict:
    """Time a fp32 and a bf16 product of (4096 x 384) by (384 x 1024); cached per machine key."""
    import torch

    path, key = _cache_file(), _machine_key()
    if not refresh:
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return cached
        except (OSError, ValueError):
            pass
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4096, 384, generator=g), torch.randn(384, 1024, generator=g)
    times = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, y = a.to(dtype), b.to(dtype)
        x @ y
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            x @ y
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    speedup = times["fp32"] / times["bf16"]
    result = {"key": key, "fp32_s": times["fp32"], "bf16_s": times["bf16"], "bf16_speedup": speedup}
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
    """The candidate product (torch float32 (n, k)) and the per-row bound beta (torch float64 (n,))."""
    import torch

    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    d = x.shape[1]
    gamma = d * 2.0**-24 / (1 - d * 2.0**-24)
    if kind == "bf16":
        xb, cb = xt.bfloat16(), ct.bfloat16()
        s = (xb @ cb.T).float()
        xr, cr = xb.float(), cb.float()
        rx = (xr - xt).double().norm(dim=1)
        rc = (cr - ct).double().norm(dim=1).max()
        xn, cn = xr.double().norm(dim=1), cr.double().norm(dim=1).max()
        beta = rx * cn + xt.double().norm(dim=1) * rc + (2.0**-8 + gamma) * xn * cn
    else:
        s = xt @ ct.T
        beta = gamma * xt.double().norm(dim=1) * ct.double().norm(dim=1).max()
    return s, beta * (1 + 1e-6) + 1e-30  # a hair above the bound, for the bound's own rounding


def _exact_rows(x64: np.ndarray, c64: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Exact float64 similarity of each row to each of its candidates ``idx`` (n, m); same value for
    the same pair whatever else is in the batch."""
    return np.einsum("nd,nmd->nm", x64, c64[idx], optimize=False)


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
    sims = np.empty((len(x), top), dtype=np.float64)
    labels = np.empty((len(x), top), dtype=np.int64)
    for a in range(0, len(x), _BLOCK):
        sims[a : a + _BLOCK], labels[a : a + _BLOCK] = _nearest_block(x[a : a + _BLOCK], c, c64, top, kind)
    return sims, labels


def _nearest_block(x, c, c64, top, kind):
    import torch

    n, k = len(x), len(c)
    m = min(k, top + EXTRA)
    s, beta = _candidates(x, c, kind)
    x64 = x.astype(np.float64)
    if top == 1:  # one pass for the maximum, one to count what is inside its window
        mx, arg = s.max(dim=1)
        floor = (mx.double() - 2 * beta).float() - torch.finfo(torch.float32).eps * mx.abs()
        inside = (s >= floor[:, None]).sum(dim=1).numpy()
        labels = arg.numpy().astype(np.int64)[:, None]
        rows = np.flatnonzero(inside > 1)
        idx = np.zeros((n, m), dtype=np.int64)
        if len(rows):
            idx[rows] = torch.topk(s[torch.from_numpy(rows)], m, dim=1)[1].numpy()
    else:
        vals, idx = torch.topk(s, m, dim=1)  # sorted, largest first
        vals, idx, beta_np = vals.double().numpy(), idx.numpy().astype(np.int64), beta.numpy()
        inside = (vals >= (vals[:, top - 1] - 2 * beta_np)[:, None]).sum(axis=1)  # candidates that can be top
        labels = idx[:, :top].copy()  # right when exactly ``top`` candidates are inside the window
    full = inside >= m if m < k else np.zeros(n, dtype=bool)
    hard = (inside > top) & ~full
    if hard.any():
        cand = idx[hard]
        ex = _exact_rows(x64[hard], c64, cand)
        ex[np.arange(m)[None, :] >= inside[hard][:, None]] = -np.inf  # outside the window: cannot win
        labels[hard] = np.take_along_axis(cand, np.lexsort((cand, -ex), axis=1)[:, :top], axis=1)
    if full.any():  # more candidates inside the window than fetched: every centroid, exactly
        ex = x64[full] @ c64.T
        labels[full] = np.lexsort((np.broadcast_to(np.arange(k), ex.shape), -ex), axis=1)[:, :top]
    exact = _exact_rows(x64, c64, labels)
    if top > 1:  # order the chosen ones by exact similarity, then index
        o = np.lexsort((labels, -exact), axis=1)
        labels, exact = np.take_along_axis(labels, o, axis=1), np.take_along_axis(exact, o, axis=1)
    return exact, labels


def above(a: np.ndarray, b: np.ndarray, thr: float) -> np.ndarray:
    """Similarities of every row of ``a`` to every row of ``b`` (n, m): exact float64 wherever the
    pair can exceed ``thr``, ``-inf`` where it cannot. Plain ``fp32`` kernel: ``a @ b.T`` as before."""
    kind = active_kernel()
    if kind == "fp32":
        return a @ b.T
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    s, beta = _candidates(a, b, kind)
    out = np.full(s.shape, -np.inf, dtype=np.float64)
    i, j = np.nonzero(s.numpy() >= (thr - beta.numpy())[:, None])
    for p in range(0, len(i), 65_536):
        ii, jj = i[p : p + 65_536], j[p : p + 65_536]
        out[ii, jj] = np.einsum("nd,nd->n", a[ii].astype(np.float64), b[jj].astype(np.float64), optimize=False)
    return out


ROW_BLOCK = 256
"""Rows per product in :func:`by_row_blocks`: every row is computed in a product of exactly this
many rows, so its value does not depend on how many rows came with it (a CPU GEMM picks other
kernels for small batches, and those round differently)."""


def by_row_blocks(fn, x: np.ndarray) -> np.ndarray:
    """``fn`` (a row-wise function of a torch float32 (ROW_BLOCK, D) tensor) over ``x`` in zero-padded
    blocks of ``ROW_BLOCK`` rows, concatenated: the same value for a row however ``x`` was chunked."""
    import torch

    x = np.ascontiguousarray(x, dtype=np.float32)
    parts = []
    with torch.inference_mode():
        for a in range(0, len(x), ROW_BLOCK):
            blk = x[a : a + ROW_BLOCK]
            if len(blk) < ROW_BLOCK:
                blk = np.concatenate([blk, np.zeros((ROW_BLOCK - len(blk), x.shape[1]), np.float32)])
            parts.append(fn(torch.from_numpy(blk)).numpy()[: min(ROW_BLOCK, len(x) - a)])
    return np.concatenate(parts) if parts else np.empty((0,))


__all__ = [
    "KERNELS",
    "ROW_BLOCK",
    "by_row_blocks",
    "set_kernel",
    "kernel",
    "active_kernel",
    "calibration",
    "nearest",
    "above",
]

"""Validation at the boundary: every public function checks its inputs here once, then computes.

Messages name the caller, the parameter, what is allowed and what was given.
"""

from __future__ import annotations

import numbers

import numpy as np

from selfprune.errors import InvalidInputError

SeedLike = int | np.random.Generator


def check_embeddings(x, *, caller: str, min_rows: int = 1, name: str = "embeddings") -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 (N, D) array, or raise InvalidInputError."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InvalidInputError(f"{caller}: {name} is not an array ({exc})") from exc
    if arr.ndim != 2:
        raise InvalidInputError(f"{caller}: {name} must be 2-D (N, D), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInputError(f"{caller}: {name} is empty (shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InvalidInputError(f"{caller}: {name} must be real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    # in row blocks: a full-size boolean mask would cost half the array again
    bad_blocks = [
        lo + np.flatnonzero(~np.isfinite(arr[lo : lo + 16_384]).all(axis=1))
        for lo in range(0, arr.shape[0], 16_384)
        if not np.isfinite(arr[lo : lo + 16_384]).all()
    ]
    if bad_blocks:
        rows = np.concatenate(bad_blocks)
        raise InvalidInputError(f"{caller}: {name} contain NaN or Inf in {len(rows)} row(s), first at row {rows[0]}")
    if arr.shape[0] < min_rows:
        raise InvalidInputError(f"{caller}: needs at least {min_rows} rows of {name}, got {arr.shape[0]}")
    return arr


def check_ids(ids, n: int, *, caller: str) -> np.ndarray:
    """Return unique example ids aligned with ``n`` rows; ``None`` means ``0..n-1``."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InvalidInputError(f"{caller}: ids must be 1-D, got shape {arr.shape}")
    if len(arr) != n:
        raise InvalidInputError(f"{caller}: {len(arr)} ids for {n} rows; they must match")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.int64)
    elif arr.dtype.kind in "UO":
        arr = arr.astype(str)
    else:
        raise InvalidInputError(f"{caller}: ids must be integers or strings, got dtype {arr.dtype}")
    uniq, counts = np.unique(arr, return_counts=True)
    if len(uniq) != len(arr):
        dup = uniq[counts > 1]
        raise InvalidInputError(f"{caller}: ids must be unique; {len(dup)} duplicated, e.g. {dup[0].item()!r}")
    return arr


def check_labels(labels, n: int, *, caller: str) -> np.ndarray:
    """Return integer class labels aligned with ``n`` rows."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InvalidInputError(f"{caller}: labels must be 1-D, got shape {arr.shape}")
    if len(arr) != n:
        raise InvalidInputError(f"{caller}: {len(arr)} labels for {n} rows; they must match")
    if not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise InvalidInputError(f"{caller}: labels must be integer class indices, got dtype {arr.dtype}")
    if n and arr.min() < 0:
        raise InvalidInputError(f"{caller}: labels must be >= 0, got {arr.min()}")
    return arr.astype(np.int64)


def check_scores_values(values, n: int | None = None, *, caller: str) -> np.ndarray:
    """Return finite float64 (N,) values."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidInputError(f"{caller}: values must be 1-D, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise InvalidInputError(f"{caller}: {len(arr)} values for {n} ids; they must match")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))
        raise InvalidInputError(f"{caller}: values contain NaN or Inf at {len(bad)} position(s), first {bad[0]}")
    return arr


def resolve_keep(keep, n: int, *, caller: str) -> int:
    """How many of ``n`` examples to keep: a fraction in (0, 1] or a whole count in [1, n]."""
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
        raise InvalidInputError(f"{caller}: keep must be a fraction or a count, got {keep!r}")
    if n <= 0:
        raise InvalidInputError(f"{caller}: nothing to select from (0 examples)")
    if isinstance(keep, numbers.Integral) or (float(keep) > 1 and float(keep).is_integer()):
        count = int(keep)
        if not 1 <= count <= n:
            raise InvalidInputError(f"{caller}: keep count must be in [1, {n}], got {count}")
        return count
    frac = float(keep)
    if not (0.0 < frac <= 1.0) or not np.isfinite(frac):
        raise InvalidInputError(f"{caller}: keep must be a fraction in (0, 1] or a count in [1, {n}], got {keep!r}")
    return max(1, int(round(frac * n)))


def check_int(value, *, caller: str, name: str, low: int = 1, high: int | None = None) -> int:
    """Return ``value`` as int within [low, high], or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{caller}: {name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidInputError(f"{caller}: {name} must be {bound}, got {value}")
    return value


def as_rng(seed: SeedLike, *, caller: str = "selfprune") -> np.random.Generator:
    """A numpy Generator from an int seed or a Generator (never the global RNG)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidInputError(f"{caller}: seed must be a non-negative int or a Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def seed_int(seed: SeedLike) -> int:
    """An int seed for libraries that want one (faiss, torch), derived deterministically."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**31 - 1))
    return int(seed)


def align_ids(reference_ids, ids, *, caller: str, what: str = "reference", allow_missing: bool = False) -> np.ndarray:
    """Positions in ``reference_ids`` (unique) of each of ``ids``, so ``reference_ids[out] == ids``.

    Vectorised (one sort and a binary search). ``ids`` may repeat; every one must be present unless
    ``allow_missing``, which gives -1 for an absent id. Raises InvalidInputError naming ``caller``
    and the ``what`` the reference ids belong to when reference ids repeat, when the two are of
    different kinds (strings and integers) or when ids are missing, with a few examples.
    """
    ref = np.asarray(reference_ids).reshape(-1)
    want = np.asarray(ids).reshape(-1)
    kinds = {ref.dtype.kind, want.dtype.kind}
    if kinds <= set("iu"):
        if ref.dtype != want.dtype:
            ref, want = ref.astype(np.int64), want.astype(np.int64)
    elif kinds <= set("UO") and len(kinds) == 2:
        ref, want = ref.astype(str), want.astype(str)
    elif len(kinds) > 1 and len(ref) and len(want):
        raise InvalidInputError(
            f"{caller}: ids ({want.dtype}) and {what} ids ({ref.dtype}) are of different kinds"
        )
    order = np.argsort(ref, kind="stable")
    sorted_ref = ref[order]
    repeated = sorted_ref[1:][sorted_ref[1:] == sorted_ref[:-1]]
    if len(repeated):
        dup = np.unique(repeated)
        raise InvalidInputError(
            f"{caller}: the {what} ids must be unique; {len(dup)} duplicated, e.g. {_few(dup)}"
        )
    if len(sorted_ref) == 0:
        at = np.zeros(len(want), dtype=np.int64)
        found = np.zeros(len(want), dtype=bool)
    else:
        at = np.minimum(np.searchsorted(sorted_ref, want), len(sorted_ref) - 1)
        found = sorted_ref[at] == want
    out = order[at] if len(sorted_ref) else at
    if not found.all():
        if not allow_missing:
            lost = want[~found]
            raise InvalidInputError(
                f"{caller}: {len(lost)} of {len(want)} ids are not in the {what}, e.g. {_few(lost)}"
            )
        out = np.where(found, out, -1)
    return out.astype(np.int64, copy=False)


def _few(values: np.ndarray, count: int = 3) -> str:
    """The first ``count`` of ``values`` as a short, readable list."""
    shown = ", ".join(repr(v) for v in values[:count].tolist())
    return shown + (", ..." if len(values) > count else "")


def kept_indices(dataset_ids, kept_ids, *, caller: str = "kept_indices") -> np.ndarray:
    """Positions (sorted, int64) in ``dataset_ids`` of every kept id; every kept id must be present."""
    ref = np.asarray(dataset_ids).reshape(-1)
    kept = np.asarray(kept_ids).reshape(-1)
    if len(kept) == 0:
        raise InvalidInputError(f"{caller}: no kept ids; a selection keeps at least one example")
    if len(np.unique(kept)) != len(kept):
        raise InvalidInputError(f"{caller}: the kept ids repeat; give each kept id once")
    return np.sort(align_ids(ref, kept, caller=caller, what="dataset")).astype(np.int64)

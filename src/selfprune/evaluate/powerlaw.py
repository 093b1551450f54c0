"""Power-law fits of test error against kept examples, and honest comparisons with random pruning.

The fit is ``error(n) = a * n**(-b) + c`` (Sorscher et al.; Hestness et al.): ``b`` is the scaling
exponent (larger = error falls faster as data grows), ``c`` the irreducible error. Its uncertainty
comes from the least-squares covariance and, with several seeds, from a bootstrap over seeds; the
larger of the two is the one used. Comparisons with random are made size by size: a metric is said
to beat random at a size only where its worst seed is better than random's best seed, i.e. where
the seed spreads do not overlap. With one seed nothing is claimed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_int
from selfprune.errors import InvalidInputError


@dataclass(frozen=True)
class PowerLawFit:
    """``error(n) = a * n**(-b) + c`` with 1-sigma uncertainties.

    ``b_err``: from the fit covariance (inf when it cannot be estimated, e.g. three sizes for three
    parameters); ``b_boot``: standard deviation of ``b`` over a bootstrap of seeds (None with one
    seed); ``b_sigma``: the larger of the available ones. ``rss`` is the residual sum of squares.
    ``bootstrap_fitted`` / ``bootstrap_dropped``: bootstrap replicates that gave a ``b``, and those
    left out (a resample with fewer than three sizes, or a fit that did not converge).
    """

    a: float
    b: float
    c: float
    b_err: float
    c_err: float
    b_boot: float | None
    n_points: int
    n_sizes: int
    rss: float
    n_range: tuple[float, float]
    bootstrap_fitted: int = 0
    bootstrap_dropped: int = 0

    @property
    def b_sigma(self) -> float:
        cands = [v for v in (self.b_err, self.b_boot) if v is not None and math.isfinite(v)]
        return max(cands) if cands else math.inf

    def predict(self, n) -> np.ndarray:
        n = np.asarray(n, dtype=np.float64)
        return self.a * n ** (-self.b) + self.c

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["b_sigma"] = self.b_sigma
        d["n_range"] = list(self.n_range)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _model(n, amp, b, c):
    return amp * n ** (-b) + c


def _fit_once(nr: np.ndarray, err: np.ndarray, start=None):
    """Best of a few starts (or one given start); returns (params, cov, rss) in rescaled n (n / n_ref)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    c0 = max(0.0, 0.5 * float(err.min()))
    best = None
    starts = (
        [start]
        if start is not None
        else [(max(float(err.max()) - c0, 1e-4) * float(nr.min()) ** b0, b0, c0) for b0 in (0.25, 0.5, 1.0, 2.0)]
    )
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                p, cov = curve_fit(
                    _model,
                    nr,
                    err,
                    p0=p0,
                    bounds=([0.0, 0.0, 0.0], [np.inf, 5.0, 1.0]),
                    maxfev=20000,
                )
        except (RuntimeError, ValueError):
            continue
        rss = float(np.sum((_model(nr, *p) - err) ** 2))
        if best is None or rss < best[2] - 1e-15:
            best = (p, cov, rss)
    if best is None:
        raise InvalidInputError("fit_power_law: the least-squares fit did not converge from any start")
    return best


def fit_power_law(
    n,
    error,
    *,
    groups=None,
    bootstrap: int = 200,
    seed: SeedLike = 0,
) -> PowerLawFit:
    """Fit ``error = a * n**(-b) + c`` to points ``(n, error)``; error in [0, 1], n > 0.

    ``groups`` (one label per point, e.g. the seed) enables a bootstrap over groups: whole seeds
    are resampled with replacement ``bootstrap`` times and ``b`` refitted. Needs at least three
    distinct sizes; with exactly three the covariance (hence ``b_err``) is unknown (inf).
    """
    caller = "fit_power_law"
    n_arr = np.asarray(n, dtype=np.float64)
    e_arr = np.asarray(error, dtype=np.float64)
    if n_arr.ndim != 1 or n_arr.shape != e_arr.shape:
        raise InvalidInputError(
            f"{caller}: n and error must be 1-D of equal length, got {n_arr.shape} and {e_arr.shape}"
        )
    if not (np.all(np.isfinite(n_arr)) and np.all(np.isfinite(e_arr))):
        raise InvalidInputError(f"{caller}: n and error must be finite")
    if np.any(n_arr <= 0):
        raise InvalidInputError(f"{caller}: n must be > 0, got min {n_arr.min()}")
    if np.any(e_arr < 0) or np.any(e_arr > 1):
        raise InvalidInputError(f"{caller}: error must be in [0, 1], got range [{e_arr.min()}, {e_arr.max()}]")
    sizes = np.unique(n_arr)
    if len(sizes) < 3:
        raise InvalidInputError(f"{caller}: needs at least 3 distinct sizes for 3 parameters, got {len(sizes)}")
    check_int(bootstrap, caller=caller, name="bootstrap", low=0)
    n_ref = float(sizes.max())
    nr = n_arr / n_ref
    p, cov, rss = _fit_once(nr, e_arr)
    amp, b, c = (float(v) for v in p)
    dof = len(n_arr) - 3
    cov = np.asarray(cov, dtype=np.float64)
    if dof <= 0 or not np.all(np.isfinite(np.diag(cov))):
        b_err = c_err = math.inf
    else:
        b_err, c_err = math.sqrt(max(cov[1, 1], 0.0)), math.sqrt(max(cov[2, 2], 0.0))
    b_boot = None
    bs: list[float] = []
    dropped = 0
    if groups is not None and bootstrap > 0:
        g = np.asarray(groups)
        if g.shape != n_arr.shape:
            raise InvalidInputError(f"{caller}: groups must have one label per point, got shape {g.shape}")
        labels = np.unique(g)
        if len(labels) >= 2:
            rng = as_rng(seed, caller=caller)
            members = [np.flatnonzero(g == lab) for lab in labels]
            start = tuple(np.clip(p, [1e-12, 1e-6, 1e-6], [np.inf, 5.0 - 1e-6, 1.0 - 1e-6]))
            for _ in range(bootstrap):
                pick = rng.integers(0, len(labels), size=len(labels))
                idx = np.concatenate([members[i] for i in pick])
                if len(np.unique(nr[idx])) < 3:
                    dropped += 1
                    continue
                try:
                    bs.append(float(_fit_once(nr[idx], e_arr[idx], start=start)[0][1]))
                except InvalidInputError:
                    dropped += 1
            if len(bs) >= 2:
                b_boot = float(np.std(bs, ddof=1))
    return PowerLawFit(
        a=amp * n_ref**b,
        b=b,
        c=c,
        b_err=b_err,
        c_err=c_err,
        b_boot=b_boot,
        n_points=len(n_arr),
        n_sizes=len(sizes),
        rss=rss,
        n_range=(float(sizes.min()), n_ref),
        bootstrap_fitted=len(bs),
        bootstrap_dropped=dropped,
    )


# ---------------------------------------------------------------- comparisons with random


@dataclass(frozen=True)
class SizeComparison:
    """One size of one metric/policy against random at the same keep; accuracies in [0, 1].

    ``verdict``: ``above`` (every seed beats every random seed), ``below`` (the reverse),
    ``overlap`` (seed spreads overlap: no claim) or ``one seed`` (no spread to judge: no claim).
    """

    keep: float
    n_train: float
    mean: float
    std: float
    min: float
    max: float
    random_mean: float
    random_std: float
    random_min: float
    random_max: float
    diff: float
    n_seeds: int
    verdict: str


def _group(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[float, list[Mapping]]]:
    out: dict[tuple[str, str], dict[float, list[Mapping]]] = {}
    for r in rows:
        out.setdefault((r["metric"], r["policy"]), {}).setdefault(float(r["keep"]), []).append(r)
    return out


def compare_to_random(rows: Sequence[Mapping[str, Any]], metric: str, policy: str) -> list[SizeComparison]:
    """Size-by-size comparison of ``metric``/``policy`` with the random rows of the same keep."""
    groups = _group(rows)
    if ("random", "random") not in groups:
        raise InvalidInputError("compare_to_random: the table has no random baseline rows")
    if (metric, policy) not in groups:
        raise InvalidInputError(f"compare_to_random: no rows for metric {metric!r} with policy {policy!r}")
    base = groups[("random", "random")]
    out = []
    for keep, rs in sorted(groups[(metric, policy)].items()):
        if keep not in base:
            continue
        a = np.array([r["test_accuracy"] for r in rs], dtype=np.float64)
        b = np.array([r["test_accuracy"] for r in base[keep]], dtype=np.float64)
        k = min(len(a), len(b))
        if k < 2:
            verdict = "one seed"
        elif a.min() > b.max():
            verdict = "above"
        elif a.max() < b.min():
            verdict = "below"
        else:
            verdict = "overlap"
        out.append(
            SizeComparison(
                keep=keep,
                n_train=float(np.mean([r["n_train"] for r in rs])),
                mean=float(a.mean()),
                std=float(a.std()),
                min=float(a.min()),
                max=float(a.max()),
                random_mean=float(b.mean()),
                random_std=float(b.std()),
                random_min=float(b.min()),
                random_max=float(b.max()),
                diff=float(a.mean() - b.mean()),
                n_seeds=k,
                verdict=verdict,
            )
        )
    return out


@dataclass(frozen=True)
class CurveAnalysis:
    """Fits, comparisons and plain statements per ``"metric/policy"`` (random under ``"random/random"``)."""

    fits: dict[str, PowerLawFit | None]
    fit_errors: dict[str, str]
    comparisons: dict[str, list[SizeComparison]]
    statements: dict[str, str]
    full_accuracy: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fits": {k: (None if v is None else v.to_dict()) for k, v in self.fits.items()},
            "fit_errors": self.fit_errors,
            "comparisons": {k: [asdict(c) for c in v] for k, v in self.comparisons.items()},
            "statements": self.statements,
            "full_accuracy": self.full_accuracy,
        }


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _sizes(cs: list[SizeComparison]) -> str:
    return ", ".join(f"n={c.n_train:.0f} ({_pts(c.diff)} pts)" for c in cs)


def _exponent_phrase(fit: PowerLawFit | None, ref: PowerLawFit | None, why: str | None = None) -> str:
    if fit is None:
        return "no power-law fit" + (f" ({why})" if why else "")
    own = (
        f"b = {fit.b:.3f} ± {fit.b_sigma:.3f}"
        if math.isfinite(fit.b_sigma)
        else f"b = {fit.b:.3f} (uncertainty unknown)"
    )
    if fit.bootstrap_dropped:
        total = fit.bootstrap_fitted + fit.bootstrap_dropped
        own += f" [bootstrap: {fit.bootstrap_fitted} of {total} resamples fitted, {fit.bootstrap_dropped} left out]"
    if ref is None:
        return own
    sig = math.hypot(fit.b_sigma, ref.b_sigma)
    if not math.isfinite(sig):
        return f"{own} vs random's {ref.b:.3f}; too few points to compare exponents"
    if fit.b - ref.b > 2 * sig:
        how = "steeper than random's (error falls faster with data)"
    elif ref.b - fit.b > 2 * sig:
        how = "flatter than random's (error falls slower with data)"
    else:
        how = "not distinguishable from random's within 2 sigma"
    return f"{own}, {how} ({ref.b:.3f} ± {ref.b_sigma:.3f})"


def analyze_curve(curve, *, bootstrap: int = 200, seed: SeedLike = 0) -> CurveAnalysis:
    """Fit every metric/policy (and random), compare each with random, and say it in words.

    ``curve`` is a :class:`~selfprune.evaluate.curve.Curve` or its rows (dicts with ``metric``,
    ``policy``, ``keep``, ``seed``, ``n_train``, ``test_accuracy``).
    """
    rows = list(getattr(curve, "rows", curve))
    if not rows:
        raise InvalidInputError("analyze_curve: the curve has no rows")
    need = {"metric", "policy", "keep", "seed", "n_train", "test_accuracy"}
    missing = need - set(rows[0])
    if missing:
        raise InvalidInputError(f"analyze_curve: rows lack column(s) {sorted(missing)}")
    groups = _group(rows)
    fits: dict[str, PowerLawFit | None] = {}
    errors: dict[str, str] = {}
    for (metric, policy), by_keep in groups.items():
        name = f"{metric}/{policy}"
        pts = [r for rs in by_keep.values() for r in rs]
        try:
            fits[name] = fit_power_law(
                [r["n_train"] for r in pts],
                [1.0 - r["test_accuracy"] for r in pts],
                groups=[r["seed"] for r in pts],
                bootstrap=bootstrap,
                seed=seed,
            )
        except InvalidInputError as exc:
            fits[name] = None
            errors[name] = str(exc)
    ref = fits.get("random/random")
    comparisons: dict[str, list[SizeComparison]] = {}
    statements: dict[str, str] = {}
    if ("random", "random") in groups:
        statements["random/random"] = (
            f"random (baseline): {_exponent_phrase(ref, None, errors.get('random/random'))}"
        )
    for metric, policy in groups:
        if metric == "random":
            continue
        name = f"{metric}/{policy}"
        if ("random", "random") not in groups:
            statements[name] = (
                f"{name}: no random baseline rows, so no comparison; "
                f"{_exponent_phrase(fits[name], None, errors.get(name))}"
            )
            continue
        cs = compare_to_random(rows, metric, policy)
        comparisons[name] = cs
        statements[name] = _statement(name, cs, fits[name], ref, errors.get(name))
    full: dict[str, float] = {}
    n_max = max(r["n_train"] for r in rows)
    for (metric, policy), by_keep in groups.items():
        at = [r["test_accuracy"] for rs in by_keep.values() for r in rs if r["n_train"] == n_max]
        if at:
            full[f"{metric}/{policy}"] = float(np.mean(at))
    return CurveAnalysis(fits, errors, comparisons, statements, full)


def _statement(
    name: str, cs: list[SizeComparison], fit: PowerLawFit | None, ref: PowerLawFit | None, why: str | None = None
) -> str:
    above = [c for c in cs if c.verdict == "above"]
    below = [c for c in cs if c.verdict == "below"]
    unclear = [c for c in cs if c.verdict in ("overlap", "one seed")]
    parts = []
    if above:
        parts.append(f"bends below random's error curve (beats random beyond the seed spread) at {_sizes(above)}")
    else:
        parts.append("does not beat random beyond the seed spread at any size")
    if below:
        parts.append(f"is worse than random beyond the seed spread at {_sizes(below)}")
    if unclear:
        tag = "one seed, no claim" if all(c.verdict == "one seed" for c in unclear) else "spreads overlap, no claim"
        parts.append(f"is indistinguishable from random at {_sizes(unclear)} ({tag})")
    return f"{name}: " + "; ".join(parts) + f"; exponent {_exponent_phrase(fit, ref, why)}"

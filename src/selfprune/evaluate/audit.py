"""Can a label-free score be trusted? Stability, null controls, agreement, health, and a verdict.

A pruning score computed from embeddings (the prototype metric of Sorscher et al. 2022 by default)
is only as good as the representation under it: an encoder can look fine and still produce a score
that is decided by the k-means seed, by the input norm (Kirsch 2023), or by what an untrained network
would give anyway. :func:`audit` measures, all on the data at hand:

- **stability**: Spearman rank correlation of the score, and the overlap (Jaccard) of the kept set
  at the budget, across k-means seeds, across k (k/4, k, 4k), under a 1 % perturbation of the
  embeddings and, when given, across encoders;
- **agreement**: with labels (any number; ``-1`` marks unlabelled rows), Spearman correlation with a
  supervised difficulty proxy: a given one (e.g. EL2N), or a cross-fitted EL2N of a logistic
  regression on the raw inputs (or on the embeddings when no inputs are given), with a bootstrap
  interval, and the same for each null control;
- **null controls**: the same score on embeddings of an untrained network (needs the images), on
  column-shuffled embeddings, and the input-norm (or embedding-norm) baseline;
- **health**: effective rank, alignment/uniformity (Wang & Isola 2020) of the normalised rows,
  cluster size balance, and how the kept set skews the class (and cluster) mix;
- **pilot** (optional): accuracy of a small model trained on the kept set vs a random one.

The verdict rules (the reason for each is in ``docs/audit.md``). ``fail`` means "do not trust",
``warn`` means "caution"; the verdict is the worst outcome over all checks:

============================  ==============================================================  ======
check                         rule                                                            level
============================  ==============================================================  ======
collapse                      effective rank of the normalised embeddings < 2                 fail
perturbation                  kept sets under 1 % noise less than half-way from chance to     fail
                              identical (excess overlap < 0.5)
seed stability                kept sets across k-means seeds not above chance (z < 3)         fail
seed stability                excess overlap across seeds < 0.5                               warn
k stability                   median excess overlap (k/4 and 4k vs k) < 0.5                   warn
cross-encoder                 excess overlap with another encoder's kept set < 0.5            warn
null: input norm, shuffled,   the null explains at least half the score's rank variance       fail
random network                (rho^2 >= 0.5); at least a quarter (rho^2 >= 0.25)              warn
agreement                     Spearman with the proxy not above 0 (95 % bootstrap interval)   fail
agreement vs random network   not above the untrained network's agreement (95 % interval)     fail
agreement                     rho < 0.3 (weaker than Cohen's "medium" correlation)            warn
class mix                     a class loses all its examples at the budget                    fail
class mix                     a class keeps less than half its fair share                     warn
cluster balance               one cluster holds more than half of the examples                warn
pilot                         worse than random by more than the seed spread                  fail
pilot                         not better than random at keep 0.5                              warn
no labelled evidence          neither labels nor a pilot: cannot tell if it tracks difficulty warn
============================  ==============================================================  ======

Excess overlap = (J - J0) / (1 - J0), with J0 = f / (2 - f) the Jaccard of two random kept sets at
keep fraction f: 0 is chance, 1 identical kept sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfprune._checks import (
    SeedLike,
    as_rng,
    check_embeddings,
    check_int,
    check_scores_values,
    resolve_keep,
    seed_int,
)
from selfprune._seeds import seed_list as seed_list_of
from selfprune.errors import InvalidInputError
from selfprune.evaluate.audit_figures import (
    Agreement,
    Alignment,
    AuditFigures,
    Clusters,
    KStability,
    MixSkew,
    Overlap,
    Perturbation,
    SeedStability,
    VsUntrained,
)
from selfprune.scores import Scores

VERDICTS = ("trust", "caution", "do not trust")
STATUS_ORDER = {"pass": 0, "skip": 0, "warn": 1, "fail": 2}
PERTURBATION = 0.01
"""Relative size of the isotropic noise added to the embeddings in the perturbation check."""


# ----------------------------------------------------------------------------- small measures


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two (N,) arrays (average ranks for ties); 0.0 when either is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb))


def kept_mask(values: np.ndarray, m: int) -> np.ndarray:
    """Boolean (N,) mask of the ``m`` highest values (the ``hard`` policy; ties by position)."""
    mask = np.zeros(len(values), dtype=bool)
    mask[np.argsort(-np.asarray(values), kind="stable")[:m]] = True
    return mask


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard overlap of two boolean masks."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def chance_jaccard(m: int, n: int) -> float:
    """Expected Jaccard of two uniformly random kept sets of size ``m`` out of ``n`` (~ f/(2-f))."""
    inter = m * m / n
    return inter / (2 * m - inter)


def excess_overlap(j: float, m: int, n: int) -> float:
    """How far a Jaccard ``j`` is from chance (0) toward identical kept sets (1)."""
    j0 = chance_jaccard(m, n)
    return float((j - j0) / (1 - j0)) if j0 < 1 else 1.0


def overlap_z(a: np.ndarray, b: np.ndarray) -> float:
    """z-score of the kept sets' intersection against two random sets of the same sizes (hypergeometric)."""
    n, ma, mb = len(a), int(a.sum()), int(b.sum())
    mean = ma * mb / n
    var = ma * mb * (n - ma) * (n - mb) / (n * n * max(n - 1, 1))
    return float((np.count_nonzero(a & b) - mean) / math.sqrt(var)) if var > 0 else 0.0


def effective_rank(x: np.ndarray) -> float:
    """Roy & Vetterli (2007) effective rank of the L2-normalised rows: exp(entropy of singular values).

    1 for rows that all point one way (complete collapse), up to min(N, D) when spread evenly.
    """
    z = _normalize(x).astype(np.float64)
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() if s.sum() > 0 else np.ones(1)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def alignment_uniformity(
    x: np.ndarray, groups: np.ndarray, *, seed: SeedLike = 0, pairs: int = 20_000
) -> tuple[float, float]:
    """Wang & Isola (2020) on L2-normalised rows: alignment = E||z_i - z_j||^2 over random pairs of
    the same group (class, or cluster when unlabelled; lower = tighter), uniformity =
    log E exp(-2 ||z_i - z_j||^2) over random pairs (from 0 for a single point down to about -4
    for an even spread on a high-dimensional sphere; lower = more uniform)."""
    rng = as_rng(seed, caller="alignment_uniformity")
    z = _normalize(x).astype(np.float64)
    n = len(z)
    i, j = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    keep = i != j
    d2 = ((z[i[keep]] - z[j[keep]]) ** 2).sum(1)
    uniformity = float(np.log(np.mean(np.exp(-2.0 * d2)))) if len(d2) else 0.0
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, n])
    ok = sizes >= 2
    if not ok.any():
        return float("nan"), uniformity
    grp = rng.choice(np.flatnonzero(ok), size=pairs, p=sizes[ok] / sizes[ok].sum())
    a = rng.integers(0, sizes[grp])
    b = (a + 1 + rng.integers(0, sizes[grp] - 1)) % sizes[grp]
    ia, ib = order[starts[grp] + a], order[starts[grp] + b]
    return float(((z[ia] - z[ib]) ** 2).sum(1).mean()), uniformity


def _normalize(x: np.ndarray) -> np.ndarray:
    from selfprune.metrics._kmeans import normalize_rows

    return normalize_rows(x)


def prototype_values(x: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    """The prototype score (cosine distance to the nearest of ``k`` spherical k-means centroids)."""
    from selfprune.metrics import prototypes

    return prototypes(x, k=k, seed=seed).values


def cluster_assignments(x: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    """Index of the nearest of ``k`` spherical k-means centroids for each row (N,)."""
    from selfprune.engine.base import get_engine, sample_rows, stack
    from selfprune.metrics._kmeans import fit_centroids, nearest_chunk

    sample = _normalize(sample_rows(x, k * 256, seed=seed))
    cents = fit_centroids(sample, k=k, seed=seed)
    return stack(get_engine().map(nearest_chunk, x, {"centroids": cents}), "label")


def el2n_proxy(features: np.ndarray, labels: np.ndarray, *, seed: SeedLike = 0, folds: int = 3) -> np.ndarray:
    """Cross-fitted EL2N (Paul et al. 2021): ||softmax - onehot||_2 of a logistic regression that did
    not see the example (``folds``-fold). Standardised flat features; (N,), higher = harder."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = as_rng(seed, caller="el2n_proxy")
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    classes, y = np.unique(labels, return_inverse=True)
    fold = rng.permutation(len(x)) % folds
    out = np.empty(len(x))
    for f in range(folds):
        tr, te = fold != f, fold == f
        scaler = StandardScaler().fit(x[tr])
        clf = LogisticRegression(max_iter=100, random_state=seed_int(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(scaler.transform(x[tr]), y[tr])
        probs = np.zeros((int(te.sum()), len(classes)))
        probs[:, clf.classes_] = clf.predict_proba(scaler.transform(x[te]))
        onehot = np.eye(len(classes))[y[te]]
        out[te] = np.sqrt(((probs - onehot) ** 2).sum(1))
    return out


def bootstrap_rho(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    seed: SeedLike = 0,
    n_boot: int = 200,
) -> tuple[float, float, float]:
    """Spearman rho(a, b) - rho(c, b) (or rho(a, b) when ``c`` is None) with a paired 95 % bootstrap
    percentile interval: (estimate, low, high)."""
    from scipy.stats import rankdata

    rng = as_rng(seed, caller="bootstrap_rho")

    def stat(idx: np.ndarray) -> float:
        rb = rankdata(b[idx])
        r = _pearson(rankdata(a[idx]), rb)
        return r - _pearson(rankdata(c[idx]), rb) if c is not None else r

    est = stat(np.arange(len(a)))
    boots = np.array([stat(rng.integers(0, len(a), len(a))) for _ in range(n_boot)])
    return est, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = a.std(), b.std()
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb)) if sa > 0 and sb > 0 else 0.0


def mix_skew(kept: np.ndarray, groups: np.ndarray) -> MixSkew:
    """How a kept mask changes the group mix: total-variation distance between the kept and full
    group proportions, and each group's retention ratio (kept share / full share; 1 = unchanged)."""
    ids, full = np.unique(groups, return_counts=True)
    kept_counts = np.array([np.count_nonzero(kept & (groups == g)) for g in ids])
    p_full = full / full.sum()
    p_kept = kept_counts / max(kept_counts.sum(), 1)
    ratio = p_kept / p_full
    worst = int(np.argmin(ratio))
    return MixSkew(
        tv_distance=float(0.5 * np.abs(p_kept - p_full).sum()),
        min_retention_ratio=float(ratio[worst]),
        worst_group=ids[worst].item(),
        groups_emptied=int(np.count_nonzero((kept_counts == 0) & (full > 0))),
        retention={str(g): float(r) for g, r in zip(ids.tolist(), ratio.tolist(), strict=True)},
    )


# ----------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Check:
    """One audit check: ``status`` is pass / warn / fail / skip; ``value`` the figure it rests on."""

    name: str
    status: str
    value: float | None
    rule: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "value": self.value,
            "rule": self.rule,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditReport:
    """Verdict (trust / caution / do not trust), its reasons, every check, and the figures."""

    verdict: str
    reasons: list[str]
    checks: list[Check]
    figures: AuditFigures

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons),
                "checks": [c.to_dict() for c in self.checks], "figures": self.figures.to_dict()}  # fmt: skip


def verdict_of(checks: list[Check]) -> tuple[str, list[str]]:
    """The worst status wins: any fail -> "do not trust", any warn -> "caution", else "trust"."""
    worst = max((STATUS_ORDER[c.status] for c in checks), default=0)
    reasons = [f"{c.status}: {c.name}: {c.detail}" for c in checks if c.status in ("fail", "warn")]
    reasons.sort(key=lambda r: 0 if r.startswith("fail") else 1)
    if not reasons:
        reasons = ["every check passed"]
    return VERDICTS[worst], reasons


# ----------------------------------------------------------------------------- audit


def default_k(n: int, meta: Mapping[str, Any] | None = None) -> int:
    """The k-means k an audit of ``n`` rows uses when none is given: the score's own ``k`` (its
    meta), else 100 capped at N/4 (and at least 2). Cross-encoder scores use the same k."""
    meta = meta or {}
    return int(meta.get("k", min(100, max(2, n // 4))))


@dataclass(frozen=True)
class _Inputs:
    """Everything :func:`audit` reads, validated and aligned with the embedding rows."""

    x: np.ndarray
    values: np.ndarray
    name: str
    meta: dict[str, Any]
    m: int
    k: int
    seeds: tuple[int, ...]
    base_seed: int
    y: np.ndarray | None
    inputs: np.ndarray | None
    proxy: np.ndarray | None
    others: dict[str, np.ndarray]
    random_embeddings: np.ndarray | None
    recompute: Callable[..., np.ndarray] | None
    max_labelled: int
    pilot: Callable[[np.ndarray, int], dict[str, Any]] | None

    @property
    def n(self) -> int:
        return len(self.x)

    def overlap(self, a_vals: np.ndarray, b_vals: np.ndarray) -> Overlap:
        """Kept-set agreement of two scores at the budget ``m``."""
        a, b = kept_mask(a_vals, self.m), kept_mask(b_vals, self.m)
        j = jaccard(a, b)
        return Overlap(spearman=rank_correlation(a_vals, b_vals), jaccard=j,
                       excess_overlap=excess_overlap(j, self.m, self.n), z=overlap_z(a, b))  # fmt: skip


def _validate(
    embeddings, scores, *, keep, k, labels, inputs, proxy, other_scores, random_embeddings,
    n_seeds, seeds, seed, max_labelled, pilot, score_fn,
) -> _Inputs:  # fmt: skip
    """Check every argument of :func:`audit` (cheap: no k-means, no training)."""
    caller = "audit"
    x = check_embeddings(embeddings, caller=caller, min_rows=4)
    n = len(x)
    name = scores.name if isinstance(scores, Scores) else "score"
    meta = dict(scores.meta) if isinstance(scores, Scores) else {}
    values = check_scores_values(scores.values if isinstance(scores, Scores) else scores, n, caller=caller)
    m = resolve_keep(keep, n, caller=caller)
    if m == n:
        raise InvalidInputError(f"audit: keep must leave something out (keep={keep!r} keeps all {n} rows)")
    seed_runs = seed_list_of(seeds, n_seeds, caller=caller, default=3, least=2)
    if k is None:
        k = default_k(n, meta)
    k = check_int(k, caller=caller, name="k", low=2, high=n)
    base_seed = seed_int(as_rng(seed, caller=caller))
    y = None
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise InvalidInputError(f"audit: labels must be (N,) integers (-1 = unlabelled), got {y.dtype} {y.shape}")
    if inputs is not None:
        if len(inputs) != n:
            raise InvalidInputError(f"audit: inputs has {len(inputs)} rows, embeddings {n}")
        inputs = np.asarray(inputs)
    prox = None
    if proxy is not None:
        prox = np.asarray(proxy, dtype=np.float64)
        if prox.shape != (n,):
            raise InvalidInputError(f"audit: proxy must be (N,) = ({n},), got {prox.shape}")
    others = {
        str(o): check_scores_values(s.values if isinstance(s, Scores) else s, n, caller=f"audit (other_scores[{o!r}])")
        for o, s in (other_scores or {}).items()
    }
    rand = None
    if random_embeddings is not None:
        rand = check_embeddings(random_embeddings, caller=caller, name="random_embeddings")
        if len(rand) != n:
            raise InvalidInputError(f"audit: random_embeddings has {len(rand)} rows, embeddings {n}")
    max_labelled = check_int(max_labelled, caller=caller, name="max_labelled", low=20)
    for what, fn in (("pilot", pilot), ("score_fn", score_fn)):
        if fn is not None and not callable(fn):
            raise InvalidInputError(f"audit: {what} must be a function or None, got {type(fn).__name__}")
    recompute = score_fn
    if recompute is None and (meta.get("metric", name) == "prototypes"):
        recompute = prototype_values
    return _Inputs(x=x, values=values, name=name, meta=meta, m=m, k=k, seeds=seed_runs, base_seed=base_seed, y=y,
                   inputs=inputs, proxy=prox, others=others, random_embeddings=rand, recompute=recompute,
                   max_labelled=max_labelled, pilot=pilot)  # fmt: skip


def audit(
    embeddings,
    scores: Scores | np.ndarray,
    *,
    keep: float | int = 0.5,
    k: int | None = None,
    labels=None,
    inputs=None,
    proxy=None,
    other_scores: Mapping[str, Scores | np.ndarray] | None = None,
    random_embeddings=None,
    n_seeds: int | None = None,
    seeds: Sequence[int] | None = None,
    seed: SeedLike = 0,
    max_labelled: int = 5_000,
    pilot: Callable[[np.ndarray, int], dict[str, Any]] | None = None,
    score_fn: Callable[..., np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditReport:
    """Audit a label-free score computed from ``embeddings`` (N, D); see the module docstring.

    ``scores``: the score to audit (a Scores aligned with the rows, or (N,) values), higher = harder.
    ``keep``: the budget (fraction or count) kept by the hard policy. ``k``: prototypes' k (default:
    from the score's meta, else 100 capped at N/4). ``labels``: optional (N,) ints, -1 = unlabelled.
    ``inputs``: optional raw examples (N, ...) for the input-norm null, the untrained-network null
    (uint8 images) and the default EL2N proxy. ``proxy``: optional (N,) supervised difficulty (higher =
    harder; NaN where unknown). ``other_scores``: the same metric from other encoders (cross-encoder
    stability). ``random_embeddings``: embeddings of an untrained network, when not computable from
    ``inputs``. ``n_seeds`` (default 3, seeds ``0..n-1``) or ``seeds`` (a list): the k-means seeds
    of the stability checks, at least two. ``seed``: the master seed of every other random choice.
    ``max_labelled``: the most labelled rows the agreement check uses (a random sample above it).
    ``pilot(values, seed) -> dict``: see :func:`pilot_curve`. ``score_fn(x, k=, seed=) -> (N,)``
    recomputes the score (default: prototypes when the score is a prototype score; other metrics get
    no seed/k/null recomputation). ``progress(step)`` is called as each part starts (health,
    stability, null controls, agreement, pilot). Every argument is checked before any clustering
    or training starts. Deterministic under ``seed``.
    """
    a = _validate(
        embeddings, scores, keep=keep, k=k, labels=labels, inputs=inputs, proxy=proxy, other_scores=other_scores,
        random_embeddings=random_embeddings, n_seeds=n_seeds, seeds=seeds, seed=seed, max_labelled=max_labelled,
        pilot=pilot, score_fn=score_fn,
    )  # fmt: skip

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    checks: list[Check] = []
    kept = kept_mask(a.values, a.m)
    step("health")
    health = _health(a, kept, checks)
    step("stability")
    runs = _stability(a, checks) if a.recompute is not None else None
    if runs is None:
        checks.append(
            Check(
                "stability",
                "warn",
                None,
                "needs a recomputable score",
                f"{a.name!r} cannot be recomputed from embeddings, so seed/k stability and the "
                "embedding null controls were not checked",
            )
        )
    cross = _cross_encoder(a, checks) if a.others else None
    step("null controls")
    null_values = _null_values(a)
    nulls = _nulls(a, null_values, checks)
    step("agreement")
    agreement = _agreement(a, null_values, checks)
    step("pilot")
    pilot_fig = _pilot(a, checks) if a.pilot is not None else None
    if agreement is None and pilot_fig is None:
        checks.append(
            Check(
                "no labelled evidence",
                "warn",
                None,
                "labels or a pilot are needed to say 'trust'",
                "without labels or a pilot nothing shows the score tracks real difficulty",
            )
        )
    verdict, reasons = verdict_of(checks)
    figures = AuditFigures(
        n=a.n, dim=int(a.x.shape[1]), keep=a.m / a.n, kept=a.m, k=a.k, score=a.name,
        chance_jaccard=chance_jaccard(a.m, a.n), **health, **(runs or {}), cross_encoder=cross, nulls=nulls,
        agreement=agreement, pilot=pilot_fig,
    )  # fmt: skip
    return AuditReport(verdict=verdict, reasons=reasons, checks=checks, figures=figures)


def _health(a: _Inputs, kept: np.ndarray, checks: list[Check]) -> dict[str, Any]:
    """Collapse, cluster balance, alignment/uniformity and the class/cluster mix at the budget."""
    x, n, k, y = a.x, a.n, a.k, a.y
    erank = effective_rank(_sample(x, 20_000, a.base_seed))
    checks.append(
        Check(
            "collapse",
            "fail" if erank < 2 else "pass",
            erank,
            "effective rank >= 2",
            f"effective rank of the normalised embeddings is {erank:.2f}",
        )
    )
    clusters = cluster_assignments(x, k=k, seed=a.seeds[0])
    sizes = np.bincount(clusters, minlength=k)
    share = sizes / n
    ent = -(share[share > 0] * np.log(share[share > 0])).sum()
    cl = Clusters(largest_share=float(share.max()), effective_clusters=float(np.exp(ent)),
                  empty=int(np.count_nonzero(sizes == 0)), sizes=sizes.tolist())  # fmt: skip
    checks.append(
        Check(
            "cluster balance",
            "warn" if share.max() > 0.5 else "pass",
            float(share.max()),
            "largest cluster <= half of the examples",
            f"largest of {k} clusters holds {share.max():.0%} of the examples",
        )
    )
    groups = y if y is not None and np.all(y >= 0) else clusters
    align, unif = alignment_uniformity(x, groups, seed=a.base_seed)
    out: dict[str, Any] = {
        "effective_rank": erank,
        "clusters": cl,
        "alignment": Alignment(value=align, groups="classes" if groups is y else "clusters"),
        "uniformity": unif,
        "cluster_mix": mix_skew(kept, clusters),
    }
    if y is not None:
        lab = y >= 0
        if lab.sum() >= 2:
            mix = mix_skew(kept[lab], y[lab])
            out["class_mix"] = mix
            status = "fail" if mix.groups_emptied else ("warn" if mix.min_retention_ratio < 0.5 else "pass")
            checks.append(
                Check(
                    "class mix",
                    status,
                    mix.min_retention_ratio,
                    "no class emptied; every class keeps >= half its fair share",
                    f"class {mix.worst_group} keeps {mix.min_retention_ratio:.2f}x its share "
                    f"({mix.groups_emptied} class(es) emptied)",
                )
            )
    return out


def _stability(a: _Inputs, checks: list[Check]) -> dict[str, Any]:
    """Reproduction, k-means seed, k and perturbation stability of a recomputable score."""
    assert a.recompute is not None
    x, k, n, seeds, recompute = a.x, a.k, a.n, a.seeds, a.recompute
    out: dict[str, Any] = {}
    runs = {s: recompute(x, k=k, seed=s) for s in seeds}
    ref_seeds = a.meta.get("seeds")
    ref_seed = ref_seeds[0] if isinstance(ref_seeds, list) and len(ref_seeds) == 1 else None
    if ref_seed is not None:
        ref = runs.get(ref_seed)
        if ref is None:
            ref = recompute(x, k=k, seed=ref_seed)
        rho = rank_correlation(a.values, ref)
        out["reproduced_spearman"] = rho
        checks.append(
            Check(
                "reproduced",
                "warn" if rho < 0.9 else "pass",
                rho,
                "recomputing the score from these embeddings gives Spearman >= 0.9",
                f"the score recomputed from these embeddings has Spearman {rho:.2f} with the given one",
            )
        )
    pairs = [a.overlap(runs[s], runs[t]) for i, s in enumerate(seeds) for t in seeds[i + 1 :]]
    ex = float(np.median([p.excess_overlap for p in pairs]))
    zmin = float(min(p.z for p in pairs))
    out["seed_stability"] = SeedStability(
        pairs=pairs, median_excess_overlap=ex, median_spearman=float(np.median([p.spearman for p in pairs]))
    )
    checks.append(
        Check(
            "seed stability",
            "fail" if zmin < 3 else ("warn" if ex < 0.5 else "pass"),
            ex,
            "kept sets across k-means seeds: z >= 3 and excess overlap >= 0.5",
            f"kept sets across k-means seeds are {ex:.2f} of the way from chance to identical",
        )
    )
    ks = sorted({max(2, k // 4), min(n, 4 * k)} - {k})
    kres = {str(kk): a.overlap(recompute(x, k=kk, seed=seeds[0]), runs[seeds[0]]) for kk in ks}
    kex = float(np.median([r.excess_overlap for r in kres.values()])) if kres else 1.0
    out["k_stability"] = KStability(vs_k=k, runs=kres, median_excess_overlap=kex)
    checks.append(
        Check(
            "k stability",
            "warn" if kex < 0.5 else "pass",
            kex,
            "excess overlap across k/4, 4k >= 0.5",
            f"kept sets at k/4 and 4k are {kex:.2f} of the way from chance to identical to k={k}",
        )
    )
    noise_rng = np.random.default_rng(a.base_seed + 1)
    rms = float(np.sqrt(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1))))
    scale = PERTURBATION * rms / math.sqrt(x.shape[1])
    noisy = x + (scale * noise_rng.standard_normal(x.shape)).astype(np.float32)
    pert = a.overlap(recompute(noisy, k=k, seed=seeds[0]), runs[seeds[0]])
    out["perturbation"] = Perturbation(relative_noise=PERTURBATION, overlap=pert)
    checks.append(
        Check(
            "perturbation",
            "fail" if pert.excess_overlap < 0.5 else "pass",
            pert.excess_overlap,
            "kept sets under 1% noise: excess overlap >= 0.5",
            f"1% noise moves the kept set to {pert.excess_overlap:.2f} of the way from chance to identical",
        )
    )
    return out


def _cross_encoder(a: _Inputs, checks: list[Check]) -> dict[str, Overlap]:
    """Kept-set agreement with the same metric from other encoders."""
    cross = {name: a.overlap(a.values, ov) for name, ov in a.others.items()}
    worst = min(cross, key=lambda o: cross[o].excess_overlap)
    ex = cross[worst].excess_overlap
    checks.append(
        Check(
            "cross-encoder",
            "warn" if ex < 0.5 else "pass",
            ex,
            "excess overlap with each other encoder >= 0.5",
            f"kept set from {worst!r} is {ex:.2f} of the way from chance to identical "
            f"(Spearman {cross[worst].spearman:.2f})",
        )
    )
    return cross


def _null_values(a: _Inputs) -> dict[str, np.ndarray]:
    """The null-control scores: input (or embedding) norm, and with a recomputable score the same
    score on column-shuffled embeddings and on an untrained network's embeddings."""
    x, n = a.x, a.n
    nulls: dict[str, np.ndarray] = {}
    if a.inputs is not None:
        flat = a.inputs.reshape(n, -1).astype(np.float64)
        nulls["input norm"] = np.sqrt((flat**2).sum(1))
    else:
        nulls["embedding norm"] = np.sqrt((x.astype(np.float64) ** 2).sum(1))
    if a.recompute is not None:
        shuf_rng = np.random.default_rng(a.base_seed + 2)
        shuffled = np.empty_like(x)
        for d in range(x.shape[1]):
            shuffled[:, d] = x[shuf_rng.permutation(n), d]
        nulls["shuffled embeddings"] = a.recompute(shuffled, k=a.k, seed=a.seeds[0])
        rand = a.random_embeddings
        if rand is None and a.inputs is not None and a.inputs.dtype == np.uint8 and a.inputs.ndim >= 3:
            from selfprune.embed.contrastive import untrained_embeddings

            rand = check_embeddings(
                untrained_embeddings(a.inputs, seed=a.base_seed + 3), caller="audit", name="random_embeddings"
            )
        if rand is not None:
            nulls["untrained network"] = a.recompute(rand, k=a.k, seed=a.seeds[0])
    return nulls


def _nulls(a: _Inputs, null_values: dict[str, np.ndarray], checks: list[Check]) -> dict[str, Overlap]:
    """How much of the score's rank order each null control explains."""
    out = {}
    for nname, nv in null_values.items():
        ov = a.overlap(a.values, nv)
        out[nname] = ov
        rho = float(ov.spearman or 0.0)
        r2 = rho**2
        checks.append(
            Check(
                f"null: {nname}",
                "fail" if r2 >= 0.5 else ("warn" if r2 >= 0.25 else "pass"),
                ov.spearman,
                "rho^2 < 0.25 (warn at 0.25, fail at 0.5)",
                f"Spearman with the {nname} score is {rho:.2f} (rho^2 = {r2:.2f})",
            )
        )
    return out


def _agreement(a: _Inputs, null_values: dict[str, np.ndarray], checks: list[Check]) -> Agreement | None:
    """Spearman with a supervised difficulty proxy on the labelled rows (None without evidence)."""
    y, prox, base_seed = a.y, a.proxy, a.base_seed
    lab_pos = np.flatnonzero(y >= 0) if y is not None else np.empty(0, dtype=np.int64)
    if prox is not None:
        lab_pos = np.flatnonzero(np.isfinite(prox))
    if not (len(lab_pos) >= 20 and (prox is not None or (y is not None and len(np.unique(y[lab_pos])) >= 2))):
        return None
    if len(lab_pos) > a.max_labelled:
        lab_pos = np.sort(np.random.default_rng(base_seed + 4).choice(lab_pos, a.max_labelled, replace=False))
    if prox is not None:
        pv, source = prox[lab_pos], "given"
    else:
        assert y is not None
        feats = a.inputs[lab_pos] if a.inputs is not None else a.x[lab_pos]
        pv = el2n_proxy(feats, y[lab_pos], seed=base_seed)
        source = "EL2N of a cross-fitted logistic regression on " + (
            "the inputs" if a.inputs is not None else "the embeddings"
        )
    est, lo, hi = bootstrap_rho(a.values[lab_pos], pv, seed=base_seed + 5)
    null_rho = {nname: rank_correlation(nv[lab_pos], pv) for nname, nv in null_values.items()}
    checks.append(
        Check(
            "agreement",
            "fail" if lo <= 0 else ("warn" if est < 0.3 else "pass"),
            est,
            "Spearman with the proxy > 0 (95% CI) and >= 0.3",
            f"Spearman with the supervised proxy is {est:.2f} [{lo:.2f}, {hi:.2f}] "
            f"on {len(lab_pos)} labelled examples",
        )
    )
    vs = None
    if "untrained network" in null_values:
        untrained = null_values["untrained network"][lab_pos]
        d, dlo, dhi = bootstrap_rho(a.values[lab_pos], pv, untrained, seed=base_seed + 6)
        vs = VsUntrained(difference=d, ci95=(dlo, dhi))
        checks.append(
            Check(
                "agreement vs untrained network",
                "fail" if dlo <= 0 else "pass",
                d,
                "beats the untrained network's agreement (95% CI above 0)",
                f"agreement minus the untrained network's is {d:+.2f} [{dlo:+.2f}, {dhi:+.2f}]",
            )
        )
    return Agreement(proxy=source, n_labelled=int(len(lab_pos)), spearman=est, ci95=(lo, hi), nulls=null_rho,
                     vs_untrained=vs)  # fmt: skip


def _pilot(a: _Inputs, checks: list[Check]) -> dict[str, Any]:
    """A small model trained on the kept set against random kept sets (the user's pilot)."""
    assert a.pilot is not None
    res = a.pilot(a.values, a.base_seed)
    gains = res["gain"]
    spread = res["spread"]
    worse = all(gains[b] < -spread[b] for b in gains)
    g05 = gains.get("0.5", gains[max(gains)])
    checks.append(
        Check(
            "pilot",
            "fail" if worse else ("warn" if g05 <= 0 else "pass"),
            g05,
            "not worse than random beyond the seed spread; better at keep 0.5",
            "accuracy minus random: "
            + ", ".join(f"keep {b}: {gains[b]:+.3f} (spread {spread[b]:.3f})" for b in gains),
        )
    )
    return res


def _sample(x: np.ndarray, rows: int, seed: int) -> np.ndarray:
    if len(x) <= rows:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), rows, replace=False))]


def pilot_curve(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    trainer: Callable[..., Any],
    keeps: tuple[float, ...] = (0.3, 0.5),
    n_seeds: int | None = None,
    seeds: Sequence[int] | None = None,
) -> Callable[[np.ndarray, int], dict[str, Any]]:
    """A pilot for :func:`audit`: train ``trainer`` on the score's kept set and on random kept sets,
    over ``n_seeds`` training seeds (default 2, seeds ``0..n-1``) or the list ``seeds``.

    Returns ``pilot(values, seed) -> {"keeps", "score": {keep: [acc per seed]}, "random": ...,
    "gain": {keep: mean score acc - mean random acc}, "spread": {keep: largest seed-to-seed range}}``.
    """
    n = len(x_train)
    seeds = seed_list_of(seeds, n_seeds, caller="pilot_curve", default=2)

    def run(values: np.ndarray, seed: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "keeps": list(keeps),
            "score": {},
            "random": {},
            "gain": {},
            "spread": {},
        }
        for f in keeps:
            m = resolve_keep(f, n, caller="pilot_curve")
            pos = np.flatnonzero(kept_mask(values, m))
            acc_s, acc_r = [], []
            for s in seeds:
                rpos = np.sort(np.random.default_rng(seed + 7919 * (s + 1)).choice(n, m, replace=False))
                acc_s.append(trainer(x_train[pos], y_train[pos], x_test, y_test, seed=s).test_accuracy)
                acc_r.append(trainer(x_train[rpos], y_train[rpos], x_test, y_test, seed=s).test_accuracy)
            key = str(f)
            out["score"][key], out["random"][key] = acc_s, acc_r
            out["gain"][key] = float(np.mean(acc_s) - np.mean(acc_r))
            out["spread"][key] = float(max(np.ptp(acc_s), np.ptp(acc_r)))
        return out

    return run

"""The figures an audit measured, as typed values; ``to_dict()`` gives the ``figures`` of ``audit.json``.

Each type names the fields one check group rests on (see :func:`selfprune.evaluate.audit.audit`).
A group that did not run (no labels, no recomputable score, no pilot) is ``None`` and left out of
the dict. Floats that are not finite are written as ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfprune.io.atomic import jsonable


def _plain(obj: Any) -> Any:
    return jsonable(obj, finite=True, other=lambda o: o)


@dataclass(frozen=True)
class Overlap:
    """Agreement of two scores' kept sets at the budget: Spearman of the values (None when only a
    mask was compared), Jaccard of the kept sets, excess overlap (0 chance, 1 identical), and the
    hypergeometric z of their intersection."""

    spearman: float | None
    jaccard: float
    excess_overlap: float
    z: float

    def to_dict(self) -> dict[str, Any]:
        return {"spearman": self.spearman, "jaccard": self.jaccard, "excess_overlap": self.excess_overlap,
                "z": self.z}  # fmt: skip


@dataclass(frozen=True)
class Clusters:
    """k-means cluster sizes: the largest cluster's share, exp(entropy) of the shares, empty clusters."""

    largest_share: float
    effective_clusters: float
    empty: int
    sizes: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"largest_share": self.largest_share, "effective_clusters": self.effective_clusters,
                "empty": self.empty, "sizes": list(self.sizes)}  # fmt: skip


@dataclass(frozen=True)
class Alignment:
    """Wang & Isola alignment over pairs of one group; ``groups`` is ``classes`` or ``clusters``."""

    value: float | None
    groups: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "groups": self.groups}


@dataclass(frozen=True)
class MixSkew:
    """How a kept set changes a group mix (see :func:`~selfprune.evaluate.audit.mix_skew`)."""

    tv_distance: float
    min_retention_ratio: float
    worst_group: Any
    groups_emptied: int
    retention: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"tv_distance": self.tv_distance, "min_retention_ratio": self.min_retention_ratio,
                "worst_group": self.worst_group, "groups_emptied": self.groups_emptied,
                "retention": dict(self.retention)}  # fmt: skip


@dataclass(frozen=True)
class SeedStability:
    """Kept-set overlap of every pair of k-means seeds, and the medians the rules read."""

    pairs: list[Overlap]
    median_excess_overlap: float
    median_spearman: float

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": [p.to_dict() for p in self.pairs], "median_excess_overlap": self.median_excess_overlap,
                "median_spearman": self.median_spearman}  # fmt: skip


@dataclass(frozen=True)
class KStability:
    """Kept-set overlap at other k (keyed by k as text) against ``vs_k``, and their median."""

    vs_k: int
    runs: dict[str, Overlap]
    median_excess_overlap: float

    def to_dict(self) -> dict[str, Any]:
        return {"vs_k": self.vs_k, "runs": {k: v.to_dict() for k, v in self.runs.items()},
                "median_excess_overlap": self.median_excess_overlap}  # fmt: skip


@dataclass(frozen=True)
class Perturbation:
    """Kept-set overlap after adding noise of ``relative_noise`` times the rows' RMS norm."""

    relative_noise: float
    overlap: Overlap

    def to_dict(self) -> dict[str, Any]:
        return {"relative_noise": self.relative_noise, **self.overlap.to_dict()}


@dataclass(frozen=True)
class VsUntrained:
    """Agreement minus the untrained network's agreement, with its 95 % bootstrap interval."""

    difference: float
    ci95: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"difference": self.difference, "ci95": list(self.ci95)}


@dataclass(frozen=True)
class Agreement:
    """Spearman of the score with a supervised proxy on the labelled rows (95 % bootstrap interval),
    the same for each null control, and (with the untrained-network null) the paired difference."""

    proxy: str
    n_labelled: int
    spearman: float
    ci95: tuple[float, float]
    nulls: dict[str, float]
    vs_untrained: VsUntrained | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"proxy": self.proxy, "n_labelled": self.n_labelled, "spearman": self.spearman,
                               "ci95": list(self.ci95), "nulls": dict(self.nulls)}  # fmt: skip
        if self.vs_untrained is not None:
            out["vs_untrained"] = self.vs_untrained.to_dict()
        return out


@dataclass(frozen=True)
class AuditFigures:
    """Everything an audit measured. The first block describes the setting, the rest one check group each."""

    n: int
    dim: int
    keep: float
    kept: int
    k: int
    score: str
    chance_jaccard: float
    effective_rank: float
    clusters: Clusters
    alignment: Alignment
    uniformity: float
    cluster_mix: MixSkew
    class_mix: MixSkew | None = None
    reproduced_spearman: float | None = None
    seed_stability: SeedStability | None = None
    k_stability: KStability | None = None
    perturbation: Perturbation | None = None
    cross_encoder: dict[str, Overlap] | None = None
    nulls: dict[str, Overlap] | None = None
    agreement: Agreement | None = None
    pilot: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in a fixed key order; groups that did not run are left out."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if v is None and name in _OPTIONAL:
                continue
            if hasattr(v, "to_dict"):
                v = v.to_dict()
            elif isinstance(v, dict) and name in ("cross_encoder", "nulls"):
                v = {key: o.to_dict() for key, o in v.items()}
            out[name] = v
        return _plain(out)


_OPTIONAL = frozenset(
    {"class_mix", "reproduced_spearman", "seed_stability", "k_stability", "perturbation", "cross_encoder",
     "nulls", "agreement", "pilot"}
)  # fmt: skip

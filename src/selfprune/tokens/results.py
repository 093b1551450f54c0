"""Typed results of token pruning; ``to_dict()`` gives the JSON rows the output files hold.

:class:`ChainResult` is one pruned chain (what :meth:`~selfprune.tokens.prune.TokenPruner.prune`
returns and each ``chains/NNNNNN.json`` checkpoint stores); :class:`RetentionTable` and
:class:`CategoryRow` are the summaries of :mod:`selfprune.tokens.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN_FIELDS = ("position", "text", "token_id", "unit", "category", "deleted_step", "surprisal")


@dataclass(frozen=True)
class TokenRow:
    """One chain token: its ``text`` and ``position``, the ``unit`` it belongs to, its ``category``,
    the greedy ``deleted_step`` (1 = deleted first, 0 = not deleted in the asked range), its
    self-information in the full chain (``surprisal``, nats) and each baseline's step."""

    position: int
    text: str
    token_id: int
    unit: int
    category: str
    deleted_step: int
    surprisal: float
    baseline_steps: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _TOKEN_FIELDS}
        out.update((f"{name}_step", step) for name, step in self.baseline_steps.items())
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TokenRow:
        steps = {k[: -len("_step")]: v for k, v in d.items() if k not in _TOKEN_FIELDS and k.endswith("_step")}
        return cls(**{name: d[name] for name in _TOKEN_FIELDS}, baseline_steps=steps)


@dataclass(frozen=True)
class PrunedText:
    """The greedy-pruned chain at one keep ratio: its text, units and tokens kept."""

    text: str
    units: int
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "units": self.units, "tokens": self.tokens}


@dataclass(frozen=True)
class ObjectiveTrace:
    """The search objective ``kind``, J of the full chain and J after each deletion (None where an
    approximate round skipped it)."""

    kind: str
    full: float
    after_step: list[float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "full": self.full, "after_step": list(self.after_step)}


@dataclass(frozen=True)
class SearchStats:
    """How the greedy search ran: mode and its settings, wall seconds, tokens through the model."""

    search: str
    per_step: int
    rescore: int
    prerank: str | None
    seconds: float
    forward_tokens: int
    refresh: int = 0  # absent from results written before the setting existed

    def to_dict(self) -> dict[str, Any]:
        return {"search": self.search, "per_step": self.per_step, "rescore": self.rescore,
                "prerank": self.prerank, "refresh": self.refresh, "seconds": self.seconds,
                "forward_tokens": self.forward_tokens}


_RESULT_FIELDS = ("id", "question", "chain", "answer", "n_tokens", "n_units", "unit", "steps_run", "tokens",
                  "pruned", "objective", "retention", "search")  # fmt: skip


@dataclass(frozen=True)
class ChainResult:
    """One pruned chain. ``retention[method][keep_key]``: log p(answer | question, the chain that
    method keeps at that ratio); ``empty_logp``: the same with no chain at all. ``extra``: the input
    row's other fields, which travel along."""

    id: str
    question: str
    chain: str
    answer: str
    n_tokens: int
    n_units: int
    unit: str
    steps_run: int
    tokens: list[TokenRow]
    pruned: dict[str, PrunedText]
    objective: ObjectiveTrace
    empty_logp: float
    retention: dict[str, dict[str, float]]
    search: SearchStats
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """Methods measured, in the order they ran (greedy first)."""
        return list(self.retention)

    def to_dict(self) -> dict[str, Any]:
        """The JSON row (the input's extra fields first, then the fields above, in a fixed order)."""
        return {
            **self.extra, "id": self.id, "question": self.question, "chain": self.chain,
            "answer": self.answer, "n_tokens": self.n_tokens, "n_units": self.n_units,
            "unit": self.unit, "steps_run": self.steps_run, "tokens": [t.to_dict() for t in self.tokens],
            "pruned": {k: p.to_dict() for k, p in self.pruned.items()},
            "objective": self.objective.to_dict(),
            "retention": {"empty": self.empty_logp, **{m: dict(v) for m, v in self.retention.items()}},
            "search": self.search.to_dict(),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChainResult:
        """Read a row written by :meth:`to_dict` (e.g. a checkpoint)."""
        ret = dict(d["retention"])
        empty = ret.pop("empty")
        return cls(
            id=d["id"], question=d["question"], chain=d["chain"], answer=d["answer"], n_tokens=d["n_tokens"],
            n_units=d["n_units"], unit=d["unit"], steps_run=d["steps_run"],
            tokens=[TokenRow.from_dict(t) for t in d["tokens"]],
            pruned={k: PrunedText(**p) for k, p in d["pruned"].items()},
            objective=ObjectiveTrace(**d["objective"]), empty_logp=empty, retention=ret,
            search=SearchStats(**d["search"]), extra={k: v for k, v in d.items() if k not in _RESULT_FIELDS},
        )  # fmt: skip


@dataclass(frozen=True)
class MethodCurve:
    """One method's answer log-likelihood per keep ratio, averaged over chains: ``mean``, ``delta``
    (mean of J - J_full) and ``greedy_at_least`` (share of chains where greedy >= this method)."""

    mean: list[float]
    delta: list[float]
    greedy_at_least: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "delta": list(self.delta), "greedy_at_least": list(self.greedy_at_least)}


@dataclass(frozen=True)
class RetentionTable:
    """Answer log-likelihood per method and keep ratio (highest ratio first), over ``n_chains``;
    ``full``: mean J at keep 1, ``empty``: mean J with no chain."""

    ratios: list[float]
    n_chains: int
    full: float
    empty: float
    methods: dict[str, MethodCurve]

    def to_dict(self) -> dict[str, Any]:
        return {"ratios": list(self.ratios), "n_chains": self.n_chains, "full": self.full, "empty": self.empty,
                "methods": {m: c.to_dict() for m, c in self.methods.items()}}  # fmt: skip


@dataclass(frozen=True)
class CategoryRow:
    """One token category: token count, share deleted, mean deletion step (deleted tokens only,
    None if none) and mean relative step (step / chain units; never-deleted tokens count as 1.0)."""

    category: str
    tokens: int
    share_deleted: float
    mean_step: float | None
    mean_relative_step: float

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "tokens": self.tokens, "share_deleted": self.share_deleted,
                "mean_step": self.mean_step, "mean_relative_step": self.mean_relative_step}  # fmt: skip

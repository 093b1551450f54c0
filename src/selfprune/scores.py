"""The score contract.

A :class:`Scores` is one metric over N examples: unique ``ids``, finite float64 ``values`` with
**higher = harder** (more worth keeping under the ``hard`` policy), a ``name`` and ``meta``
(metric, parameters, encoder, seed, library version). Every metric converts its own signal to that
direction at the source and says so in its docstring.

A :class:`ScoreTable` is several metrics aligned by id (and optionally the class labels and, for
label-free scores, the pseudo-labels the proxies trained on, never mixed with ``label``), the
in-memory twin of the score Parquet file: one row per example, ``id`` plus one float column per
metric, each metric's ``meta`` in the file's key-value metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import align_ids, check_ids, check_labels, check_scores_values
from selfprune.errors import InvalidInputError

RESERVED_COLUMNS = ("id", "label", "pseudo_label")


def _version() -> str:
    from selfprune import __version__

    return __version__


@dataclass(frozen=True, eq=False)
class Scores:
    """One difficulty score per example. ``values[i]`` belongs to ``ids[i]``; higher = harder."""

    ids: np.ndarray
    values: np.ndarray
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        caller = f"Scores({self.name!r})"
        if not isinstance(self.name, str) or not self.name or self.name in RESERVED_COLUMNS:
            raise InvalidInputError(f"Scores: name must be a non-empty string other than id/label, got {self.name!r}")
        values = check_scores_values(self.values, caller=caller)
        ids = check_ids(self.ids, len(values), caller=caller)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "ids", ids)
        meta = {"metric": self.name, "selfprune_version": _version(), **dict(self.meta)}
        object.__setattr__(self, "meta", meta)

    def __len__(self) -> int:
        return len(self.values)

    def order(self) -> np.ndarray:
        """Positions from hardest to easiest; ties keep input order (deterministic)."""
        return np.argsort(-self.values, kind="stable")

    def ranks(self) -> np.ndarray:
        """Rank of each example, 0 = hardest."""
        r = np.empty(len(self), dtype=np.int64)
        r[self.order()] = np.arange(len(self))
        return r

    def to_table(self, labels=None) -> ScoreTable:
        return ScoreTable(self.ids, {self.name: self.values}, {self.name: self.meta}, labels=labels)

    def to_pandas(self):
        return self.to_table().to_pandas()


class ScoreTable(Mapping[str, Scores]):
    """Several metrics aligned by example id; ``table["el2n"]`` is a :class:`Scores`."""

    def __init__(
        self,
        ids,
        columns: Mapping[str, Any],
        meta: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        labels=None,
        pseudo_labels=None,
    ) -> None:
        if not columns:
            raise InvalidInputError("ScoreTable: needs at least one metric column")
        meta = dict(meta or {})
        first = next(iter(columns.values()))
        n = len(np.asarray(first))
        self.ids = check_ids(ids, n, caller="ScoreTable")
        self.labels = None if labels is None else check_labels(labels, n, caller="ScoreTable")
        self.pseudo_labels = (
            None if pseudo_labels is None else check_labels(pseudo_labels, n, caller="ScoreTable")
        )
        self._scores: dict[str, Scores] = {}
        for name, values in columns.items():
            s = Scores(self.ids, values, name, dict(meta.get(name, {})))
            if len(s) != n:
                raise InvalidInputError(f"ScoreTable: column {name!r} has {len(s)} rows, expected {n}")
            self._scores[name] = s

    @classmethod
    def from_scores(cls, scores: list[Scores] | tuple[Scores, ...], labels=None) -> ScoreTable:
        """Join several Scores by id (same id set required; order taken from the first)."""
        if not scores:
            raise InvalidInputError("ScoreTable.from_scores: no scores given")
        base = scores[0].ids
        cols, meta = {}, {}
        for s in scores:
            if s.name in cols:
                raise InvalidInputError(f"ScoreTable.from_scores: metric {s.name!r} given twice")
            at = align_ids(base, s.ids, caller="ScoreTable.from_scores", what="table", allow_missing=True)
            if len(s) != len(base) or (at < 0).any():
                raise InvalidInputError(
                    f"ScoreTable.from_scores: {s.name!r} covers different ids than {scores[0].name!r}"
                )
            aligned = np.empty(len(base))
            aligned[at] = s.values
            cols[s.name], meta[s.name] = aligned, s.meta
        return cls(base, cols, meta, labels=labels)

    def __getitem__(self, name: str) -> Scores:
        try:
            return self._scores[name]
        except KeyError:
            raise KeyError(f"no score column {name!r}; columns are {sorted(self._scores)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._scores)

    def __len__(self) -> int:
        return len(self._scores)

    @property
    def n_examples(self) -> int:
        return len(self.ids)

    @property
    def meta(self) -> dict[str, dict[str, Any]]:
        return {k: s.meta for k, s in self._scores.items()}

    def with_scores(self, *scores: Scores) -> ScoreTable:
        """A new table with the given Scores added or replaced (aligned by id)."""
        current = [s for k, s in self._scores.items() if k not in {x.name for x in scores}]
        out = ScoreTable.from_scores([*current, *scores], labels=None)
        rows = align_ids(self.ids, out.ids, caller="ScoreTable.with_scores", what="table")
        if self.labels is not None:
            out.labels = self.labels[rows]
        if self.pseudo_labels is not None:
            out.pseudo_labels = self.pseudo_labels[rows]
        return out

    def to_arrow(self):
        import json

        import pyarrow as pa

        arrays = {"id": pa.array(self.ids)}
        if self.labels is not None:
            arrays["label"] = pa.array(self.labels, type=pa.int64())
        if self.pseudo_labels is not None:
            arrays["pseudo_label"] = pa.array(self.pseudo_labels, type=pa.int64())
        for name, s in self._scores.items():
            arrays[name] = pa.array(s.values, type=pa.float64())
        table = pa.table(arrays)
        md = {b"selfprune": json.dumps({"metrics": self.meta}, default=str).encode()}
        return table.replace_schema_metadata(md)

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def __repr__(self) -> str:
        return f"ScoreTable(n_examples={self.n_examples}, metrics={list(self._scores)})"


def mean_rank(scores, *, name: str = "mean-rank") -> Scores:
    """One score from several: the mean over ``scores`` of each example's normalised rank.

    Each score's values become ranks in (0, 1] (1 = hardest; tied values share their average
    rank), so scores on different scales weigh the same; the result keeps higher = harder. The
    scores must cover the same ids (aligned by id; the order is the first's). ``meta`` records the
    inputs' names and metadata.
    """
    scores = list(scores)
    if len(scores) < 2:
        raise InvalidInputError(f"mean_rank: needs at least 2 scores, got {len(scores)}")
    names = [s.name for s in scores]
    if len(set(names)) < len(names):  # the same metric from several runs: number them
        scores = [Scores(s.ids, s.values, f"{s.name}#{i}", s.meta) for i, s in enumerate(scores)]
    table = ScoreTable.from_scores(scores)
    ranks = [_normalised_ranks(table[s.name].values) for s in scores]
    meta = {"combination": "mean of normalised ranks", "of": names, "inputs": [s.meta for s in scores]}
    return Scores(table.ids, np.mean(np.stack(ranks), axis=0), name, meta)


def _normalised_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` divided by their count, in (0, 1]; ties get their average rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    start = np.cumsum(counts) - counts  # ranks before each distinct value
    return (start + (counts + 1) / 2.0)[inverse] / len(values)


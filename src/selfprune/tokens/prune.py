"""Prune reasoning chains: one chain with :class:`TokenPruner`, a whole file with :func:`prune_chains`.

:meth:`TokenPruner.prune` returns one :class:`~selfprune.tokens.results.ChainResult` per chain
(``to_dict()`` is its JSON row): every chain token with its ``text``, ``position``, ``category``
and ``deleted_step`` (1 = deleted first, 0 = never deleted within the asked range) and the
baselines' steps; the greedy-pruned chain at each keep ratio; the answer log-likelihood of every
method at every curve point.

:func:`prune_chains` runs a list of records into an output folder, one checkpoint file per chain,
so a killed run resumes where it stopped and gives the same results.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfprune._checks import check_int, resolve_keep
from selfprune.errors import InvalidInputError
from selfprune.io.atomic import write_json_atomic, write_text_atomic
from selfprune.tokens.baselines import BASELINES, baseline_orders
from selfprune.tokens.data import ChainRecord, as_records
from selfprune.tokens.greedy import check_search, greedy_prune
from selfprune.tokens.model import CausalLM
from selfprune.tokens.objective import (
    DEFAULT_CONNECTOR,
    OBJECTIVES,
    PROMPTS,
    UNITS,
    ChainScorer,
    Objective,
    build_layout,
    score_sequences,
)
from selfprune.tokens.results import ChainResult, ObjectiveTrace, PrunedText, SearchStats, TokenRow
from selfprune.tokens.tagger import tag_tokens

METHODS = ("greedy", *BASELINES)
RESULT_FORMAT = 1


def parse_keep(keep: str | float | Sequence[float]) -> tuple[float, ...]:
    """Keep ratios from ``"0.3,0.5,0.7"`` or a number or a sequence; each in (0, 1), sorted, unique."""
    if isinstance(keep, str):
        parts = [p.strip() for p in keep.split(",") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InvalidInputError(f"keep: expected numbers like 0.3,0.5,0.7, got {keep!r}") from None
    elif isinstance(keep, (int, float)) and not isinstance(keep, bool):
        values = [float(keep)]
    else:
        try:
            values = [float(v) for v in keep]
        except (TypeError, ValueError):
            raise InvalidInputError(f"keep: expected a list of ratios, got {keep!r}") from None
    if not values:
        raise InvalidInputError("keep: give at least one keep ratio")
    for v in values:
        if not (math.isfinite(v) and 0.0 < v < 1.0):
            raise InvalidInputError(f"keep: every ratio must be in (0, 1), got {v!r}")
    return tuple(sorted(set(values)))


def keep_key(ratio: float) -> str:
    """How a keep ratio is written as a key and in file names: ``0.3`` -> ``"0.30"``."""
    return f"{ratio:.2f}" if round(ratio, 2) == ratio else f"{ratio:g}"


def _curve_ratios(keep: Sequence[float], step: float) -> list[float]:
    points = {1.0, *keep}
    if step > 0:
        x = 1.0
        while x - step >= min(keep) - 1e-9:
            x = round(x - step, 6)
            points.add(x)
    return sorted(points, reverse=True)


class TokenPruner:
    """Greedy likelihood-preserving pruning of reasoning chains, with baselines and categories.

    Settings here, work in :meth:`prune`. ``objective``: ``answer`` or ``joint`` (with
    ``joint_weight``); ``keep``: the keep ratios (fractions of the chain's units) to report;
    ``unit``: prune model ``token``\\ s or whole ``word``\\ s; ``search``: ``exact`` (fast, exact),
    ``naive`` (reference) or ``approx`` (``per_step`` deletions per round after re-scoring the
    ``rescore`` best of a ``prerank`` pre-ranking, ``stale`` or ``gradient``; with ``stale``,
    ``refresh`` more whose exact score is oldest);
    ``prompt``/``connector``: how question and answer are framed (see
    :func:`~selfprune.tokens.objective.build_layout`); ``curve_step``: spacing of the extra keep
    ratios at which every method's answer log-likelihood is measured (0: only ``keep``);
    ``seed``: the random baseline's seed (combined with each chain's id).
    """

    def __init__(self, lm: CausalLM, *, objective: str = "answer", joint_weight: float = 1.0,
                 keep: str | float | Sequence[float] = (0.3, 0.5, 0.7), unit: str = "token",
                 search: str = "exact", per_step: int = 2, rescore: int = 8, prerank: str = "stale",
                 refresh: int = 2,
                 prompt: str = "auto",
                 connector: str = DEFAULT_CONNECTOR, baselines: bool = True,
                 curve_step: float = 0.1, seed: int = 0, batch_tokens: int = 1024) -> None:
        if objective not in OBJECTIVES:
            raise InvalidInputError(f"TokenPruner: objective must be one of {OBJECTIVES}, got {objective!r}")
        if unit not in UNITS:
            raise InvalidInputError(f"TokenPruner: unit must be one of {UNITS}, got {unit!r}")
        if prompt not in PROMPTS:
            raise InvalidInputError(f"TokenPruner: prompt must be one of {PROMPTS}, got {prompt!r}")
        if not isinstance(connector, str):
            raise InvalidInputError(f"TokenPruner: connector must be a string, got {connector!r}")
        self.search, self.per_step, self.rescore, self.prerank = check_search(search, per_step, rescore, prerank)
        self.refresh = check_int(refresh, caller="TokenPruner", name="refresh", low=0)
        self.objective = Objective(objective, float(joint_weight))
        self.keep = parse_keep(keep)
        try:
            curve_step = float(curve_step)
        except (TypeError, ValueError):
            raise InvalidInputError(f"TokenPruner: curve_step must be a number, got {curve_step!r}") from None
        if not (0.0 <= curve_step < 1.0):
            raise InvalidInputError(f"TokenPruner: curve_step must be in [0, 1), got {curve_step}")
        self.lm = lm
        self.unit = unit
        self.prompt = prompt
        self.connector = connector
        self.baselines = bool(baselines)
        self.curve_step = curve_step
        self.seed = check_int(seed, caller="TokenPruner", name="seed", low=0)
        self.batch_tokens = check_int(batch_tokens, caller="TokenPruner", name="batch_tokens", low=16)

    def config(self) -> dict[str, Any]:
        """Every setting that changes the results (written into the run manifest)."""
        config = {
            "model": self.lm.name, "objective": self.objective.kind,
            "joint_weight": self.objective.weight if self.objective.kind == "joint" else None,
            "keep": list(self.keep), "unit": self.unit, "search": self.search,
            "per_step": self.per_step if self.search == "approx" else None,
            "rescore": self.rescore if self.search == "approx" else None,
            "prerank": self.prerank if self.search == "approx" else None,
            "prompt": self.prompt, "connector": self.connector, "baselines": self.baselines,
            "curve_step": self.curve_step, "seed": self.seed, "dtype": str(self.lm.dtype),
            "format": RESULT_FORMAT,
        }
        if self.search == "approx" and self.prerank == "stale":  # only where it applies, so that
            config["refresh"] = self.refresh  # runs from before the setting existed still resume
        return config

    def _decode(self, ids: Sequence[int]) -> str:
        return self.lm.tokenizer.decode(list(ids), skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)

    def prune(self, record: ChainRecord | dict[str, Any]) -> ChainResult:
        """Prune one chain; returns its :class:`~selfprune.tokens.results.ChainResult`."""
        rec = record if isinstance(record, ChainRecord) else as_records([record])[0]
        layout = build_layout(self.lm.tokenizer, rec.question, rec.chain, rec.answer,
                              prompt=self.prompt, connector=self.connector, unit=self.unit)
        n_units = len(layout.units)
        if n_units < 2:
            raise InvalidInputError(
                f"TokenPruner.prune: chain {rec.id!r} has {n_units} {self.unit}; need at least 2")
        counts = {r: resolve_keep(r, n_units, caller="TokenPruner") for r in self.keep}
        n_steps = n_units - min(counts.values())
        t0 = time.perf_counter()
        scorer = ChainScorer(self.lm.model, layout, self.objective, batch_tokens=self.batch_tokens)
        full_state = scorer.current(list(range(n_units)))
        result = greedy_prune(scorer, n_steps, search=self.search, per_step=self.per_step,
                              rescore=self.rescore, prerank=self.prerank, refresh=self.refresh,
                              state=full_state)
        search_seconds = time.perf_counter() - t0
        # self-information of each chain token in the full chain (the surprisal baseline)
        token_surprisal = -full_state.token_lp[: len(layout.chain)]
        orders: dict[str, list[int]] = {"greedy": result.order}
        if self.baselines:
            rng_seed = [self.seed, zlib.crc32(rec.id.encode("utf-8"))]
            orders.update(baseline_orders(token_surprisal, layout.units,
                                          seed=np.random.default_rng(rng_seed)))
        steps = {name: _unit_steps(order, n_units, n_steps) for name, order in orders.items()}

        # answer log-likelihood of every method at every curve point (uncached, same evaluator)
        ratios = _curve_ratios(self.keep, self.curve_step)
        curve_counts = {r: resolve_keep(r, n_units, caller="TokenPruner") if r < 1 else n_units
                        for r in ratios}
        # one row per distinct kept chain: the same chain (every method at keep 1, methods that keep
        # the same units) gets one value, whatever else shares its batch
        seqs: list[list[int]] = [layout.sequence([])]
        row_of: dict[tuple[int, ...], int] = {tuple(seqs[0]): 0}
        index: dict[tuple[str, float], int] = {}
        for name, order in orders.items():
            for r, k in curve_counts.items():
                kept_units = sorted(set(range(n_units)) - set(order[: n_units - k]))
                seq = layout.sequence(layout.unit_tokens(kept_units))
                index[(name, r)] = row_of.setdefault(tuple(seq), len(seqs))
                if index[(name, r)] == len(seqs):
                    seqs.append(seq)
        ans_lp, _ = score_sequences(self.lm.model, seqs, n_prefix=len(layout.prefix),
                                    n_tail=len(layout.tail), n_answer=layout.n_answer,
                                    batch_tokens=max(self.batch_tokens, 2 * max(map(len, seqs))))
        retention = {name: {keep_key(r): float(ans_lp[index[(name, r)]]) for r in ratios}
                     for name in orders}

        cats = tag_tokens(layout.chain_text, layout.spans, question=rec.question)
        unit_of = np.zeros(len(layout.chain), dtype=np.int64)
        for u, (s, e) in enumerate(layout.units):
            unit_of[s:e] = u
        tokens = []
        for t, tid in enumerate(layout.chain):
            s, e = layout.spans[t]
            tokens.append(TokenRow(
                position=t, text=layout.chain_text[s:e], token_id=int(tid), unit=int(unit_of[t]),
                category=cats[t], deleted_step=int(steps["greedy"][unit_of[t]]),
                surprisal=round(float(token_surprisal[t]), 6),
                baseline_steps={name: int(steps[name][unit_of[t]]) for name in BASELINES} if self.baselines else {},
            ))
        pruned = {}
        for r, k in counts.items():
            kept_units = sorted(set(range(n_units)) - set(result.order[: n_units - k]))
            ids = [layout.chain[t] for t in layout.unit_tokens(kept_units)]
            pruned[keep_key(r)] = PrunedText(text=self._decode(ids), units=k, tokens=len(ids))
        return ChainResult(
            id=rec.id, question=rec.question, chain=rec.chain, answer=rec.answer, n_tokens=len(layout.chain),
            n_units=n_units, unit=self.unit, steps_run=n_steps, tokens=tokens, pruned=pruned,
            objective=ObjectiveTrace(kind=self.objective.kind, full=result.initial,
                                     after_step=[None if math.isnan(v) else v for v in result.values]),
            empty_logp=float(ans_lp[0]), retention=retention,
            search=SearchStats(**result.meta, seconds=round(search_seconds, 3), forward_tokens=result.forward_tokens),
            extra=dict(rec.extra),
        )


def _unit_steps(order: Sequence[int], n_units: int, n_steps: int) -> np.ndarray:
    """deleted_step per unit: 1-based position in ``order`` if within ``n_steps``, else 0."""
    steps = np.zeros(n_units, dtype=np.int64)
    for i, u in enumerate(order[:n_steps]):
        steps[u] = i + 1
    return steps


# ---------------------------------------------------------------------------------------------
# Whole runs with per-chain checkpoints


def _record_digest(record: ChainRecord) -> str:
    row = json.dumps(record.to_row(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(row.encode("utf-8")).hexdigest()


def prune_chains(records: Iterable[ChainRecord | dict[str, Any]], pruner: TokenPruner,
                 out: str | os.PathLike, *, restart: bool = False,
                 on_chain: Callable[[int, int, ChainResult, bool], None] | None = None,
                 ) -> list[ChainResult]:
    """Prune every record into ``out/chains/NNNNNN.json`` (atomic, one file per chain).

    ``out/run.json`` records the settings. Rerunning into the same folder with the same settings
    reuses every finished chain whose input row is unchanged (a killed run resumes, a longer
    ``--limit`` extends, an edited row is redone); the results are identical because every chain
    is deterministic, and the files are written with the same key order. Other settings raise
    unless ``restart``, which discards the old checkpoints. ``on_chain(i, n, result, reused)``
    reports progress. Returns the per-chain results in input order.
    """
    recs = as_records(records)
    out = Path(out)
    chains_dir = out / "chains"
    open_run(out, pruner.config(), restart=restart, caller="prune_chains", checkpoints=chains_dir)
    results: list[ChainResult] = []
    for i, rec in enumerate(recs):
        path = chains_dir / f"{i:06d}.json"
        digest = _record_digest(rec)
        res = None
        if path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                if saved.get("record_sha256") == digest:
                    res = ChainResult.from_dict(saved["result"])
            except (OSError, ValueError, AttributeError, KeyError, TypeError):
                res = None
        reused = res is not None
        if res is None:
            res = pruner.prune(rec)
            # key order kept (not sorted), so a resumed run writes byte-identical outputs
            write_text_atomic(path, json.dumps({"record_sha256": digest, "result": res.to_dict()}, ensure_ascii=False))
        results.append(res)
        if on_chain is not None:
            on_chain(i, len(recs), res, reused)
    return results


def open_run(out: Path, config: dict[str, Any], *, restart: bool, caller: str, checkpoints: Path) -> None:
    """Make ``out`` the folder of a checkpointed run with settings ``config`` (kept in ``out/run.json``).

    A folder that holds a run with other settings is refused (its checkpoints would be reused for
    the wrong run) unless ``restart``, which deletes the files in ``checkpoints`` first.
    """
    manifest_path = out / "run.json"
    manifest = {"config": config}
    if manifest_path.is_file() and not restart:
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != manifest:
            raise InvalidInputError(
                f"{caller}: {out} holds a run with other settings ({_manifest_diff(old, manifest)}); "
                "use another output folder or restart (CLI: --restart)")
    elif restart and checkpoints.is_dir():
        for f in checkpoints.iterdir():
            if f.is_file():
                f.unlink()
    write_json_atomic(manifest_path, manifest)
    checkpoints.mkdir(parents=True, exist_ok=True)


def _manifest_diff(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict) or not isinstance(old.get("config"), dict):
        return "unreadable run.json"
    parts = [k for k in new["config"] if old["config"].get(k) != new["config"][k]]
    return "differs in: " + ", ".join(parts) if parts else "differs"

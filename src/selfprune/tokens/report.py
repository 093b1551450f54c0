"""Summaries of pruned chains: retention table, category table, curves, and the output files.

All functions take the per-chain results of :meth:`TokenPruner.prune` (or :func:`prune_chains`)
and return typed values (:mod:`selfprune.tokens.results`); :func:`tokens_page` lays them out as the
report page; :func:`write_outputs` writes them all.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import InvalidInputError
from selfprune.io.atomic import write_json_atomic, write_text_atomic
from selfprune.report.figures import save_png
from selfprune.report.html import Gallery, Image, Page, Section, Table, Tile, Verdict, write_report
from selfprune.tokens.results import CategoryRow, ChainResult, MethodCurve, RetentionTable
from selfprune.tokens.tagger import CATEGORIES

METHOD_ORDER = ("greedy", "surprisal", "random", "uniform")


def _methods(results: Sequence[ChainResult]) -> list[str]:
    present = set(results[0].retention)
    return [m for m in METHOD_ORDER if m in present]


def retention_table(results: Sequence[ChainResult]) -> RetentionTable:
    """Answer log-likelihood per method and keep ratio, averaged over chains.

    Returns a :class:`~selfprune.tokens.results.RetentionTable`: the ratios (highest first), mean J
    at keep 1 (``full``) and with no chain (``empty``), and per method the mean, the mean of
    J - J_full (``delta``) and the share of chains where greedy >= the method (``greedy_at_least``).
    """
    if not results:
        raise InvalidInputError("retention_table: no results")
    methods = _methods(results)
    first = results[0].retention["greedy"]
    ratios = sorted({float(k) for k in first}, reverse=True)
    keys = {r: next(k for k in first if float(k) == r) for r in ratios}
    full = np.array([res.retention["greedy"][keys[1.0]] for res in results]) if 1.0 in keys \
        else np.full(len(results), np.nan)
    greedy = np.array([[res.retention["greedy"][keys[r]] for r in ratios] for res in results])
    curves = {}
    for m in methods:
        vals = np.array([[res.retention[m][keys[r]] for r in ratios] for res in results])
        curves[m] = MethodCurve(
            mean=vals.mean(axis=0).tolist(),
            delta=(vals - full[:, None]).mean(axis=0).tolist(),
            greedy_at_least=(greedy >= vals - 1e-9).mean(axis=0).tolist(),
        )
    return RetentionTable(ratios=ratios, n_chains=len(results), full=float(np.mean(full)),
                          empty=float(np.mean([res.empty_logp for res in results])), methods=curves)


def category_table(results: Sequence[ChainResult]) -> list[CategoryRow]:
    """Per category: token count, share deleted, mean deletion step (deleted tokens only), and
    mean relative step (step / chain units; never-deleted tokens count as 1.0), earliest first."""
    acc: dict[str, dict[str, list[float]]] = {c: {"step": [], "rel": []} for c in CATEGORIES}
    counts = dict.fromkeys(CATEGORIES, 0)
    for res in results:
        n = res.n_units
        for tok in res.tokens:
            c = tok.category
            counts[c] += 1
            step = tok.deleted_step
            if step:
                acc[c]["step"].append(step)
            acc[c]["rel"].append(step / n if step else 1.0)
    rows = []
    for c in CATEGORIES:
        if not counts[c]:
            continue
        rows.append(CategoryRow(category=c, tokens=counts[c], share_deleted=len(acc[c]["step"]) / counts[c],
                                mean_step=float(np.mean(acc[c]["step"])) if acc[c]["step"] else None,
                                mean_relative_step=float(np.mean(acc[c]["rel"]))))
    rows.sort(key=lambda r: r.mean_relative_step)
    return rows


def _fmt(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def retention_markdown(table: RetentionTable) -> str:
    ratios = table.ratios
    head = "| method | " + " | ".join(f"keep {r:g}" for r in ratios) + " |"
    sep = "|---|" + "---:|" * len(ratios)
    lines = [head, sep]
    for m, v in table.methods.items():
        lines.append(f"| {m} | " + " | ".join(_fmt(x) for x in v.mean) + " |")
    lines.append("")
    lines.append(f"Mean answer log-likelihood (nats) over {table.n_chains} chains; full chain "
                 f"{table.full:.3f}, no chain {table.empty:.3f}. Share of chains where greedy "
                 "retains at least as much:")
    lines.append("")
    lines.append(head)
    lines.append(sep)
    for m, v in table.methods.items():
        if m != "greedy":
            lines.append(f"| greedy >= {m} | " + " | ".join(f"{x:.2f}" for x in v.greedy_at_least) + " |")
    return "\n".join(lines) + "\n"


def category_markdown(rows: Sequence[CategoryRow]) -> str:
    lines = ["| category | tokens | share deleted | mean deletion step | mean relative step |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.category} | {r.tokens} | {r.share_deleted:.2f} | "
                     f"{_fmt(r.mean_step, 1)} | {r.mean_relative_step:.3f} |")
    return "\n".join(lines) + "\n"


def curves_figure(table: RetentionTable, *, title: str | None = None):
    """A Figure of answer log-likelihood vs keep ratio per method, with full-chain and no-chain levels."""
    from selfprune.report.figures import new_figure, wrap_title

    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    styles = {"greedy": ("C0", "o"), "surprisal": ("C1", "s"), "random": ("C2", "^"),
              "uniform": ("C3", "v")}
    for m, v in table.methods.items():
        color, marker = styles.get(m, ("C4", "x"))
        ax.plot(table.ratios, v.mean, marker=marker, color=color, label=m, lw=1.6, ms=4)
    ax.axhline(table.full, color="0.3", ls="--", lw=1, label="full chain (dashed)")
    ax.axhline(table.empty, color="0.6", ls=":", lw=1, label="no chain (dotted)")
    ax.set_xlabel("keep ratio (fraction of chain units kept)")
    ax.set_ylabel("mean log p(answer | question, pruned chain)")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(wrap_title(title or f"Answer likelihood retained ({table.n_chains} chains)"), fontsize=10)
    return fig


def plot_curves(table: RetentionTable, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Write :func:`curves_figure` to ``path`` as PNG; returns the path."""
    return save_png(curves_figure(table, title=title), path)


def tokens_page(results: Sequence[ChainResult], config: dict[str, Any], table: RetentionTable,
                cats: Sequence[CategoryRow], *, figure=None, provenance: Mapping[str, str] | None = None,
                examples: int = 3) -> Page:  # fmt: skip
    """The token report as a :class:`~selfprune.report.html.Page`: greedy against the best baseline at the
    middle keep ratio first, then the curves, tables, and the chains that lost least and most."""
    keys = list(results[0].pruned)
    key = keys[len(keys) // 2]
    r = float(key)
    col = min(range(len(table.ratios)), key=lambda i: abs(table.ratios[i] - r))
    greedy = table.methods["greedy"]
    others = {m: v.mean[col] for m, v in table.methods.items() if m != "greedy"}
    reasons = [f"greedy keeps {greedy.mean[col]:.3f} nats of log p(answer) at keep {r:g} (full chain "
               f"{table.full:.3f}, no chain {table.empty:.3f}) over {table.n_chains} chains"]
    if others:
        best = max(others, key=lambda m: others[m])
        gap = greedy.mean[col] - others[best]
        share = table.methods[best].greedy_at_least[col]
        reasons.append(f"greedy >= {best} on {100 * share:.0f} % of chains")
        verdict = Verdict(f"greedy vs the best baseline ({best}) at keep {r:g}", "good" if gap > 0 else "bad",
                          f"{gap:+.3f} nats", reasons)  # fmt: skip
    else:
        verdict = Verdict(f"greedy at keep {r:g}: {greedy.delta[col]:+.3f} nats vs the full chain", "neutral",
                          None, reasons)  # fmt: skip
    rows = [[m, *[f"{x:.3f}" for x in v.mean]] for m, v in table.methods.items()]
    cat_rows = [[c.category, c.tokens, f"{c.share_deleted:.2f}", _fmt(c.mean_step, 1), f"{c.mean_relative_step:.3f}"]
                for c in cats]  # fmt: skip
    drop = np.array([res.retention["greedy"][key] for res in results])
    order = np.argsort(-drop, kind="stable")

    def tiles(pos) -> list[Tile]:
        out = []
        for i in pos:
            res = results[int(i)]
            out.append(Tile(f"{res.id}: log p(answer) {drop[int(i)]:.3f} at keep {r:g}",
                            text=f"Q: {res.question}\nchain: {res.chain}\npruned: {res.pruned[key].text}"))
        return out

    sections = [
        Section("Answer likelihood retained", [
            Image(figure if figure is not None else curves_figure(table), "Mean log p(answer | question, pruned "
                  "chain) per method against the keep ratio; dashed: the full chain, dotted: no chain.", alt="curves"),
            Table(["method", *[f"keep {x:g}" for x in table.ratios]], rows),
        ]),
        Section("Mean deletion step per category", [
            "Relative step = deletion step / chain units, never-deleted tokens counted as 1.0 (lower = pruned "
            "earlier).",
            Table(["category", "tokens", "share deleted", "mean deletion step", "mean relative step"], cat_rows),
        ]),
        Section(f"Chains pruned to keep {r:g}", [
            Gallery("answer best kept (easiest)", tiles(order[:examples])),
            Gallery("answer least kept (hardest)", tiles(order[::-1][:examples])),
        ]),
    ]  # fmt: skip
    title = (f"Token pruning: {config.get('model')}, objective {config.get('objective')}, unit {config.get('unit')}, "
             f"search {config.get('search')}")  # fmt: skip
    return Page(title, verdict, sections, dict(provenance or {}))


def curves_csv(table: RetentionTable) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "keep", "mean_answer_logp", "mean_delta_vs_full", "greedy_at_least"])
    for m, v in table.methods.items():
        for r, mean, d, g in zip(table.ratios, v.mean, v.delta, v.greedy_at_least,
                                 strict=True):
            w.writerow([m, f"{r:g}", f"{mean:.6f}", f"{d:.6f}", f"{g:.4f}"])
    return buf.getvalue()


def training_rows(results: Sequence[ChainResult], keep: str,
                  connector: str = "\nThe answer is") -> list[dict[str, Any]]:
    """Rows for fine-tuning a student on the greedy-pruned chains at keep ratio ``keep``.

    Each row keeps the input's extra fields and has ``question``, ``chain`` (pruned), ``answer``,
    ``keep``, ``kept_tokens``/``original_tokens`` and ``messages`` (user: question; assistant:
    pruned chain, connector, answer) for chat-style trainers.
    """
    skip = {"tokens", "pruned", "objective", "retention", "search", "n_tokens", "n_units", "unit",
            "steps_run", "chain"}
    sep = "" if (not connector or connector[-1].isspace()) else " "
    rows = []
    for res in results:
        p = res.pruned[keep]
        extra = {k: v for k, v in res.to_dict().items() if k not in skip}
        rows.append({**extra, "chain": p.text, "keep": float(keep), "kept_tokens": p.tokens,
                     "original_tokens": res.n_tokens, "method": "greedy",
                     "messages": [{"role": "user", "content": res.question},
                                  {"role": "assistant",
                                   "content": f"{p.text}{connector}{sep}{res.answer}"}]})
    return rows


def summary_markdown(config: dict[str, Any], table: RetentionTable, cats: list[CategoryRow],
                     results: Sequence[ChainResult]) -> str:
    secs = [r.search.seconds for r in results]
    toks = [r.n_tokens for r in results]
    return "\n".join([
        "# Token pruning summary", "",
        f"Model `{config['model']}`, objective `{config['objective']}`, unit `{config['unit']}`, "
        f"search `{config['search']}`, {len(results)} chains of {min(toks)} to {max(toks)} tokens "
        f"(mean {np.mean(toks):.1f}); search time {np.mean(secs):.1f} s per chain on average.", "",
        "## Answer log-likelihood retained", "", retention_markdown(table),
        "## Mean deletion step per category", "",
        "Relative step = deletion step / chain units, never-deleted tokens counted as 1.0 "
        "(lower = pruned earlier).", "", category_markdown(cats),
    ])


def write_outputs(results: Sequence[ChainResult], out: str | os.PathLike,
                  config: dict[str, Any], *, provenance: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write tokens.jsonl, pruned_keep*.jsonl, summary.{json,md}, curves.{csv,png} and report.html into ``out``."""
    out = Path(out)
    paths: dict[str, Path] = {}
    lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results)
    write_text_atomic(out / "tokens.jsonl", lines)
    paths["tokens"] = out / "tokens.jsonl"
    for keep in results[0].pruned:
        rows = training_rows(results, keep, config.get("connector", "\nThe answer is"))
        p = out / f"pruned_keep{keep}.jsonl"
        write_text_atomic(p, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        paths[f"pruned_{keep}"] = p
    table = retention_table(results)
    cats = category_table(results)
    write_json_atomic(out / "summary.json", {"config": config, "retention": table.to_dict(),
                                             "categories": [c.to_dict() for c in cats]})
    write_text_atomic(out / "summary.md", summary_markdown(config, table, cats, results))
    write_text_atomic(out / "curves.csv", curves_csv(table))
    figure = curves_figure(table)
    save_png(figure, out / "curves.png")
    paths["report"] = write_report(tokens_page(results, config, table, cats, figure=figure, provenance=provenance),
                                   out)
    paths.update(summary=out / "summary.md", summary_json=out / "summary.json",
                 curves_csv=out / "curves.csv", curves_png=out / "curves.png")
    return paths

"""The audit report: ``audit.md`` with two PNG plots, and the self-contained ``report.html``, written atomically.

Plots: ``audit-stability.png`` (kept-set excess overlap for each stability check and null control,
0 = chance, 1 = identical, with the 0.5 line the rules use) and ``audit-health.png`` (cluster sizes,
and the class or cluster retention at the budget, 1 = mix unchanged).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selfprune.report.html import Image, Page, Section, Table, Verdict

STATUS_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def _bars(report: dict[str, Any]) -> list[tuple[str, float]]:
    fig = report["figures"]
    bars = []
    if "seed_stability" in fig:
        bars.append(("k-means seeds", fig["seed_stability"]["median_excess_overlap"]))
    if "k_stability" in fig:
        bars.append(("k/4, 4k", fig["k_stability"]["median_excess_overlap"]))
    if "perturbation" in fig:
        bars.append(("1% noise", fig["perturbation"]["excess_overlap"]))
    for name, v in fig.get("cross_encoder", {}).items():
        bars.append((f"vs {name}", v["excess_overlap"]))
    for name, v in fig.get("nulls", {}).items():
        bars.append((f"null: {name}", v["excess_overlap"]))
    return bars


def audit_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The two audit plots as matplotlib Figures, keyed by their PNG names."""
    from selfprune.report.figures import new_figure, wrap_title

    bars = _bars(report)
    fig = new_figure(7, 0.45 * max(len(bars), 2) + 1.6)
    ax = fig.add_subplot()
    if bars:
        names, vals = zip(*bars, strict=True)
        colors = ["#888888" if n.startswith("null") else "#2a6fb0" for n in names]
        ax.barh(range(len(vals)), vals, color=colors)
        ax.set_yticks(range(len(vals)), names)
        ax.invert_yaxis()
    ax.axvline(0.5, color="black", lw=1, ls="--", label="0.5: the rules' threshold")
    ax.axvline(0.0, color="black", lw=0.8, label="0: chance")
    ax.set_xlim(-0.2, 1.05)
    ax.set_xlabel("kept-set excess overlap with the audited score (0 = chance, 1 = identical)")
    ax.set_title(wrap_title("Stability (blue: should be high) and null controls (grey: should be low)"), fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    out = {"audit-stability.png": fig}

    f = report["figures"]
    fig = new_figure(10, 3.6)
    a1, a2 = fig.subplots(1, 2)
    sizes = sorted(f.get("clusters", {}).get("sizes", []), reverse=True)
    a1.bar(range(len(sizes)), sizes, color="#2a6fb0")
    a1.set_xlabel("cluster (largest first)")
    a1.set_ylabel("examples")
    a1.set_title(f"cluster sizes (k = {f.get('k')})", fontsize=10)
    mix = f.get("class_mix") or f.get("cluster_mix") or {"retention": {}}
    which = "class" if f.get("class_mix") else "cluster"
    ret = mix["retention"]
    a2.bar(range(len(ret)), list(ret.values()), color="#c0504d")
    a2.axhline(1.0, color="black", lw=1, label="1: mix unchanged")
    a2.axhline(0.5, color="black", lw=1, ls="--", label="0.5: half its fair share (warn)")
    if len(ret) <= 20:
        a2.set_xticks(range(len(ret)), list(ret.keys()))
    a2.set_xlabel(which)
    a2.set_ylabel("kept share / full share")
    a2.set_title(f"{which} mix at keep {f.get('keep', 0):.2f}", fontsize=10)
    a2.legend(fontsize=7)
    out["audit-health.png"] = fig
    return out


def _summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    f = report["figures"]
    rows = [("examples", str(f.get("n"))), ("embedding dim", str(f.get("dim"))),
            ("budget", f"keep {f.get('kept')} ({f.get('keep', 0):.2f})"), ("k", str(f.get("k"))),
            ("effective rank", _fmt(f.get("effective_rank"))), ("uniformity", _fmt(f.get("uniformity"))),
            ("alignment", _fmt((f.get("alignment") or {}).get("value")))]  # fmt: skip
    if "agreement" in f:
        a = f["agreement"]
        rows.append(
            (
                "agreement (Spearman)",
                f"{_fmt(a['spearman'])} [{_fmt(a['ci95'][0])}, {_fmt(a['ci95'][1])}], {a['proxy']}",
            )
        )
    for name, v in f.get("nulls", {}).items():
        rows.append((f"null: {name} (Spearman)", _fmt(v["spearman"])))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "n/a" if v is None else str(v)


def render_markdown(report: dict[str, Any], title: str = "Score audit") -> str:
    lines = [f"# {title}", "", f"**Verdict: {report['verdict']}**", ""]
    lines += [f"- {r}" for r in report["reasons"]] + [
        "",
        "## Checks",
        "",
        "| check | status | value | rule |",
        "|---|---|---|---|",
    ]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | {STATUS_MARK[c['status']]} | {_fmt(c['value'])} | {c['rule']} |")
    lines += ["", "## Figures", "", "| figure | value |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in _summary_rows(report)]
    lines += ["", "![stability](audit-stability.png)", "", "![health](audit-health.png)", ""]
    return "\n".join(lines)


def audit_page(
    report: dict[str, Any],
    *,
    title: str = "Score audit",
    provenance: dict[str, str] | None = None,
    figures: dict[str, Any] | None = None,
    scores=None,
    take=None,
    modality: str = "features",
    labels=None,
) -> Page:
    """The audit as a :class:`~selfprune.report.html.Page`: the verdict and its reasons first, the checks,
    the figures, and, given the audited ``scores`` (a Scores), their histogram and example galleries."""
    from selfprune.report.blocks import score_galleries, score_histogram

    tone = {"trust": "good", "caution": "warn", "do not trust": "bad"}[report["verdict"]]
    figs = figures if figures is not None else audit_figures(report)
    checks = Table(["check", "status", "value", "rule", "detail"],
                   [[c["name"], STATUS_MARK[c["status"]], _fmt(c["value"]), c["rule"], c["detail"]]
                    for c in report["checks"]])  # fmt: skip
    sections = [
        Section("Checks", [checks]),
        Section("Figures", [
            Table(["figure", "value"], _summary_rows(report)),
            Image(figs["audit-stability.png"], "Kept-set excess overlap of each stability check (blue) and null "
                  "control (grey) with the audited score: 0 = chance, 1 = identical; the dashed line is the 0.5 "
                  "the rules use.", alt="stability"),
            Image(figs["audit-health.png"], "Left: k-means cluster sizes. Right: each class's (or cluster's) share "
                  "of the kept set over its share of all the data at the budget; 1 = mix unchanged.", alt="health"),
        ]),
    ]  # fmt: skip
    if scores is not None:
        keep = report["figures"].get("keep")
        blocks: list[Any] = [Image(score_histogram({scores.name: scores.values}, keep=keep),
                                   "Histogram of the audited score; the dashed line is the hard policy's cut at "
                                   "the budget.", alt="score histogram")]  # fmt: skip
        if take is not None:
            blocks += score_galleries(scores.values, scores.ids, take, modality, name=scores.name, labels=labels)
        sections.append(Section(f"The audited score: {scores.name}", blocks))
    verdict = Verdict(f"Verdict: {report['verdict']}", tone, None, list(report["reasons"]))
    return Page(title, verdict, sections, provenance or {})


def write_audit_report(report: dict[str, Any], folder: str | os.PathLike, *, title: str = "Score audit",
                       **page: Any) -> list[Path]:  # fmt: skip
    """Write ``audit.md`` with its PNGs and the self-contained ``report.html`` into ``folder``; returns the
    paths written. ``page`` goes to :func:`audit_page` (provenance, scores, take, modality, labels)."""
    from selfprune.io.atomic import write_text_atomic
    from selfprune.report.figures import save_png
    from selfprune.report.html import write_report

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figs = audit_figures(report)
    paths = [save_png(fig, folder / name, dpi=110) for name, fig in figs.items()]
    write_text_atomic(folder / "audit.md", render_markdown(report, title))
    html_path = write_report(audit_page(report, title=title, figures=figs, **page), folder)
    return [folder / "audit.md", html_path, *paths]

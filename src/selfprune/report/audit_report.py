"""The audit report: ``audit.md`` and ``audit.html`` with two PNG plots, written atomically.

Plots: ``audit-stability.png`` (kept-set excess overlap for each stability check and null control,
0 = chance, 1 = identical, with the 0.5 line the rules use) and ``audit-health.png`` (cluster sizes,
and the class or cluster retention at the budget, 1 = mix unchanged).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

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


def plot_audit(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write the two PNGs into ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from selfprune.report.figures import save_png

    paths = []
    bars = _bars(report)
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(bars), 2) + 1.2))
    if bars:
        names, vals = zip(*bars, strict=True)
        colors = ["#888888" if n.startswith("null") else "#2a6fb0" for n in names]
        ax.barh(range(len(vals)), vals, color=colors)
        ax.set_yticks(range(len(vals)), names)
        ax.invert_yaxis()
    ax.axvline(0.5, color="black", lw=1, ls="--")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlim(-0.2, 1.05)
    ax.set_xlabel("kept-set excess overlap with the audited score (0 = chance, 1 = identical)")
    ax.set_title("Stability (blue: should be high) and null controls (grey: should be low)")
    fig.tight_layout()
    p = folder / "audit-stability.png"
    save_png(fig, p, dpi=110)
    plt.close(fig)
    paths.append(p)

    f = report["figures"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    sizes = sorted(f.get("clusters", {}).get("sizes", []), reverse=True)
    a1.bar(range(len(sizes)), sizes, color="#2a6fb0")
    a1.set_xlabel("cluster (largest first)")
    a1.set_ylabel("examples")
    a1.set_title(f"cluster sizes (k = {f.get('k')})")
    mix = f.get("class_mix") or f.get("cluster_mix") or {"retention": {}}
    which = "class" if f.get("class_mix") else "cluster"
    ret = mix["retention"]
    a2.bar(range(len(ret)), list(ret.values()), color="#c0504d")
    a2.axhline(1.0, color="black", lw=1)
    a2.axhline(0.5, color="black", lw=1, ls="--")
    if len(ret) <= 20:
        a2.set_xticks(range(len(ret)), list(ret.keys()))
    a2.set_xlabel(which)
    a2.set_ylabel("kept share / full share")
    a2.set_title(f"{which} mix at keep {f.get('keep', 0):.2f}")
    fig.tight_layout()
    p = folder / "audit-health.png"
    save_png(fig, p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


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


def render_html(report: dict[str, Any], title: str = "Score audit") -> str:
    e = html.escape
    color = {"trust": "#2e7d32", "caution": "#b26a00", "do not trust": "#c62828"}[report["verdict"]]
    checks = "".join(
        f"<tr><td>{e(c['name'])}</td><td>{STATUS_MARK[c['status']]}</td><td>{e(_fmt(c['value']))}</td>"
        f"<td>{e(c['rule'])}</td><td>{e(c['detail'])}</td></tr>"
        for c in report["checks"]
    )
    figs = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in _summary_rows(report))
    reasons = "".join(f"<li>{e(r)}</li>" for r in report["reasons"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>{e(title)}</h1><h2 style='color:{color}'>Verdict: {e(report['verdict'])}</h2><ul>{reasons}</ul>"
        f"<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>value</th><th>rule</th><th>detail</th></tr>{checks}</table>"
        f"<h2>Figures</h2><table>{figs}</table>"
        "<img src='audit-stability.png' alt='stability'><img src='audit-health.png' alt='health'>"
        "</body></html>\n"
    )


def write_audit_report(report: dict[str, Any], folder: str | os.PathLike, *, title: str = "Score audit") -> list[Path]:
    """Write ``audit.md``, ``audit.html`` and the PNGs into ``folder``; returns the paths written."""
    from selfprune.io.atomic import write_text_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = plot_audit(report, folder)
    write_text_atomic(folder / "audit.md", render_markdown(report, title))
    write_text_atomic(folder / "audit.html", render_html(report, title))
    return [folder / "audit.md", folder / "audit.html", *paths]

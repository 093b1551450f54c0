"""The report pages of ``demo``, ``curve``, ``dedup`` and ``prune``: results in, a :class:`Page` out.

Each function takes the values a command already holds (no file is read) and returns a
:class:`~selfprune.report.html.Page` for :func:`~selfprune.report.html.write_report`; the audit's
page is in :mod:`selfprune.report.audit_report`, the token report's in :mod:`selfprune.tokens.report`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from selfprune.report.blocks import kept_share, kept_share_figure, score_galleries, score_histogram
from selfprune.report.html import Block, Gallery, Image, Page, Section, Table, Tile, Verdict

MAX_GROUP_ROWS = 30


def spread_word(delta: float, spread: float, beats: bool) -> str:
    """How a paired difference to random (``delta`` ± ``spread`` over seeds) reads in words."""
    if beats:
        return "beats random beyond the seed spread"
    if delta + spread < 0:
        return "loses to random beyond the seed spread"
    return "is within the seed spread of random (no claim)"


def _tone(word: str) -> str:
    return "good" if word.startswith("beats") else "bad" if word.startswith("loses") else "neutral"


def hard_kept(values: np.ndarray, keep: float) -> np.ndarray:
    """Boolean mask of the examples the hard policy keeps at ``keep`` (highest scores, ties by position)."""
    from selfprune._checks import resolve_keep

    v = np.asarray(values, dtype=np.float64)
    mask = np.zeros(len(v), dtype=bool)
    mask[np.argsort(-v, kind="stable")[: resolve_keep(keep, len(v), caller="report")]] = True
    return mask


def score_section(
    scores: Mapping[str, np.ndarray],
    *,
    ids: np.ndarray,
    take: Callable[[np.ndarray], Any] | None,
    modality: str,
    keep: float,
    labels: np.ndarray | None = None,
    word: str = "class",
) -> list[Section]:
    """Histograms of every score, then per score the galleries and the kept share per class at ``keep``."""
    out = [
        Section(
            "Score distributions",
            [Image(score_histogram(scores, keep=keep), "Histogram of each score over the examples; the dashed "
                   f"line is where the hard policy cuts at keep {keep:g} (examples to its right are kept).",
                   alt="score histograms")],  # fmt: skip
        )
    ]
    for name, values in scores.items():
        blocks: list[Block] = []
        if take is not None:
            blocks += score_galleries(values, ids, take, modality, name=name, labels=labels)
        if labels is not None:
            kept = hard_kept(values, keep)
            blocks += [
                Image(kept_share_figure(labels, kept, word=word, title=f"{name}, hard policy, keep {keep:g}"),
                      f"Share of each {word} the hard policy keeps by {name} at keep {keep:g}; the dashed line is "
                      "the overall share.", alt=f"kept share per {word}"),
                kept_share(labels, kept, word=word),
            ]  # fmt: skip
        if blocks:
            out.append(Section(f"Examples and kept share by {name}", blocks))
    return out


# ----------------------------------------------------------------------------- demo


def demo_page(
    *,
    title: str,
    summary: Sequence[Mapping[str, Any]],
    seeds: int,
    setup: str,
    scores: Mapping[str, np.ndarray],
    ids: np.ndarray,
    labels: np.ndarray | None,
    take: Callable[[np.ndarray], Any] | None,
    modality: str,
    accuracy_figure,
    data_map_png: bytes | None,
    labelfree: str,
    provenance: Mapping[str, str],
) -> Page:
    """The demo's page: the label-free score against random first, then the table, curves and examples."""
    lf = [r for r in summary if r["policy"].startswith(labelfree) and "delta_vs_random" in r]
    lines = []
    for r in lf:
        d, sd = 100 * r["delta_vs_random"], 100 * r["delta_spread"]
        lines.append(f"keep {r['keep']:.1f}: {d:+.2f} ± {sd:.2f} points: "
                     f"{spread_word(d, sd, bool(r.get('beats_random')))}")  # fmt: skip
    if seeds < 3:
        lines.append(f"{seeds} seeds make a weak sample: a spread from so few runs is itself uncertain.")
    if lf:
        head = min(lf, key=lambda r: abs(r["keep"] - 0.5))
        d, sd = 100 * head["delta_vs_random"], 100 * head["delta_spread"]
        word = spread_word(d, sd, bool(head.get("beats_random")))
        verdict = Verdict(f"label-free dynamics at keep {head['keep']:.1f} {word}", _tone(word),
                          f"{d:+.2f} points", lines)  # fmt: skip
    else:
        verdict = Verdict("no label-free score in this run", "neutral", None, lines)
    table = Table(
        ["keep", "policy", "n_train", "test accuracy % (mean ± std)", "vs random, points (paired mean ± std)"],
        [[f"{r['keep']:.1f}", r["policy"], r["n_train"], f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}",
          "" if "delta_vs_random" not in r else f"{100 * r['delta_vs_random']:+.2f} ± {100 * r['delta_spread']:.2f}"]
         for r in summary],
    )  # fmt: skip
    results: list[Block] = [
        setup,
        table,
        Image(accuracy_figure, "Test accuracy against the fraction kept, mean over seeds with std error bars; "
              "random pruning is dashed, the grey line is all the data.", alt="accuracy vs keep"),
    ]  # fmt: skip
    sections = [Section("Pruned vs random", results)]
    if data_map_png is not None:
        sections.append(Section("Data map of the label-free proxy", [Image(
            data_map_png, "Confidence against variability of the proxy trained on pseudo-labels (no label read), "
            "coloured by how often it was right.", alt="data map")]))  # fmt: skip
    sections += score_section(scores, ids=ids, take=take, modality=modality, keep=0.5, labels=labels)
    return Page(title, verdict, sections, provenance)


# ----------------------------------------------------------------------------- curve


def curve_page(
    *,
    title: str,
    summary: Sequence[Mapping[str, Any]],
    statements: Mapping[str, str],
    decisions: Sequence[Mapping[str, Any]],
    figure,
    table=None,
    metrics: Sequence[str] | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    modality: str = "features",
    keep: float = 0.5,
    provenance: Mapping[str, str],
) -> Page:
    """The curve's page: the best pruned arm against random at the smallest keep first, then the curves,
    and, given the score ``table`` and the training data (``x``, ``y``, ``ids``), score histograms,
    galleries and the kept share per class at ``keep``."""
    from selfprune._checks import align_ids

    compared = [r for r in summary if r["vs_random"] is not None]
    if compared:
        low = min(r["keep"] for r in compared)
        best = max((r for r in compared if r["keep"] == low), key=lambda r: r["vs_random"])
        tone = {"above": "good", "below": "bad"}.get(best["verdict"], "neutral")
        verdict = Verdict(
            f"{best['metric']}/{best['policy']} at keep {low:g} vs random: {best['verdict']}",
            tone, f"{best['vs_random']:+.2f} points",
            ["above: every seed beats every random seed; below: the reverse; overlap or one seed: no claim",
             *statements.values()],
        )  # fmt: skip
    else:
        verdict = Verdict("random pruning only: nothing to compare", "neutral", None, list(statements.values()))
    rows = [[r["metric"], r["policy"] if r["policy"] != "auto" else f"auto→{','.join(r['chosen'])}", f"{r['keep']:g}",
             r["n_train"], r["n_seeds"], f"{r['mean']:.2f}", f"{r['std']:.2f}", f"{r['min']:.2f}–{r['max']:.2f}",
             "" if r["vs_random"] is None else f"{r['vs_random']:+.2f} ({r['verdict']})"] for r in summary]  # fmt: skip
    blocks: list[Block] = [
        Image(figure, "Test error against kept examples (log-log), mean over seeds; shaded bands span the lowest to "
              "the highest seed, random is black and dashed, thin dotted lines are power-law fits.", alt="curve"),
        Table(["metric", "policy", "keep", "n", "seeds", "accuracy %", "± std", "min–max", "vs random"], rows),
    ]  # fmt: skip
    blocks += [f"auto for {d['metric']} at keep {d['keep']:g}: {d['reason']}" for d in decisions]
    sections = [Section("Scaling curves vs random", blocks)]
    if table is not None and ids is not None:
        pos = align_ids(ids, table.ids, caller="curve report", what="training data", allow_missing=True)
        found = pos >= 0
        names = [m for m in (metrics or list(table)) if m in table]
        scores = {m: np.asarray(table[m].values)[found] for m in names}
        at = pos[found]
        take = None if x is None else (lambda p: x[at[np.asarray(p)]])
        sections += score_section(scores, ids=np.asarray(table.ids)[found], take=take, modality=modality, keep=keep,
                                  labels=None if y is None else np.asarray(y)[at])  # fmt: skip
    return Page(title, verdict, sections, provenance)


# ----------------------------------------------------------------------------- dedup


def dedup_page(
    result,
    *,
    ids: np.ndarray,
    eps: float,
    take: Callable[[np.ndarray], Any] | None,
    modality: str,
    provenance: Mapping[str, str],
    groups: int = 8,
) -> Page:
    """The dedup page: the share removed first, then duplicate groups and the kept share per cluster."""
    n = result.n_examples
    verdict = Verdict(
        f"removed {len(result.removed):,} of {n:,} examples as near-duplicates (cosine > {1 - eps:g})",
        "neutral", f"{100 * result.fraction_removed:.2f} %",
        [f"{result.meta.get('n_exact_duplicates', 0):,} exact copies", f"{result.meta.get('k_fitted')} clusters, "
         f"the largest holds {result.meta.get('largest_cluster', 0):,}"],
    )  # fmt: skip
    pos_of = {v: i for i, v in enumerate(np.asarray(ids).tolist())}
    blocks: list[Block] = []
    if len(result.removed):
        by_kept: dict[Any, list[int]] = {}
        for i, k in enumerate(result.duplicate_of.tolist()):
            by_kept.setdefault(k, []).append(i)
        biggest = sorted(by_kept.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))[:groups]
        for k, members in biggest:
            tiles = _id_tiles([k, *[result.removed[i] for i in members]], pos_of, take, modality,
                              ["kept"] + [f"removed, similarity {result.similarity[i]:.4f}" for i in members])
            blocks.append(Gallery(f"duplicate group of id {k} ({len(members)} removed)", tiles))
        least = np.argsort(result.similarity, kind="stable")[:groups]
        blocks.append(Table(["id", "duplicate_of", "similarity"],
                            [[str(result.removed[i]), str(result.duplicate_of[i]), f"{result.similarity[i]:.5f}"]
                             for i in least], caption="least similar removed pairs: check eps here"))  # fmt: skip
    else:
        blocks.append("No example was removed at this eps.")
    kept = np.isin(np.asarray(ids), result.kept)
    cluster = np.asarray(result.cluster)
    table = kept_share(cluster, kept, word="cluster")
    worst = sorted(table.rows, key=lambda r: r[3])[:MAX_GROUP_ROWS]
    sections = [
        Section("Duplicate groups", blocks),
        Section("Kept share per cluster", [
            Image(kept_share_figure(cluster, kept, word="cluster"), "Share of each k-means cluster that survives "
                  "dedup; the dashed line is the overall share.", alt="kept share per cluster"),
            Table(table.columns, worst, caption=f"the {len(worst)} clusters that lose the most; " + table.caption),
        ]),
    ]  # fmt: skip
    return Page(f"Semantic dedup, eps {eps:g}", verdict, sections, provenance)


def _id_tiles(members: Sequence[Any], pos_of: Mapping[Any, int], take, modality: str,
              labels: Sequence[str]) -> list[Tile]:  # fmt: skip
    if take is not None and modality in ("image", "text"):
        from selfprune.report.blocks import example_tiles

        pos = np.array([pos_of[m] for m in members])
        text = {int(p): f"id {m}: {lab}" for p, m, lab in zip(pos, members, labels, strict=True)}
        return example_tiles(pos, take, modality, lambda p: text[p])
    return [Tile(f"id {m}", text=lab) for m, lab in zip(members, labels, strict=True)]


def sweep_page(sweep, *, k: int, figure, provenance: Mapping[str, str]) -> Page:
    """The eps sweep's page: how much each eps removes."""
    rows = [[f"{e:g}", f"{1 - e:g}", int(r), f"{100 * f:.2f}"]
            for e, r, f in zip(sweep.eps, sweep.n_removed, sweep.fraction_removed, strict=True)]  # fmt: skip
    mid = len(sweep.eps) // 2
    verdict = Verdict(f"eps {sweep.eps[mid]:g} removes {100 * sweep.fraction_removed[mid]:.2f} % of "
                      f"{sweep.n_examples:,} examples", "neutral", None,
                      [f"eps {e:g}: {100 * f:.2f} % removed" for e, f in zip(sweep.eps, sweep.fraction_removed,
                                                                           strict=True)])  # fmt: skip
    return Page("Semantic dedup eps sweep", verdict, [Section("Share removed per eps", [
        Image(figure, "Share of examples removed at each eps (same clustering for every eps).", alt="eps sweep"),
        Table(["eps", "cosine >", "removed", "removed %"], rows)])], provenance)  # fmt: skip


# ----------------------------------------------------------------------------- prune


def prune_page(
    result,
    *,
    source_name: str,
    pseudo,
    take: Callable[[np.ndarray], Any] | None,
    modality: str,
    provenance: Mapping[str, str],
) -> Page:
    """The prune page: how much was kept and why first, then the kept share per cluster and examples."""
    verdict = Verdict(f"kept {len(result.kept_ids):,} of {result.n_total:,} examples of {source_name}",
                      "warn", f"{100 * len(result.kept_ids) / result.n_total:.1f} %", list(result.reasons))  # fmt: skip
    ids = np.asarray(pseudo.ids)
    kept = np.isin(ids, result.kept_ids)
    labels = np.asarray(pseudo.labels)
    table = kept_share(labels, kept, word="cluster")
    sections = [Section("Kept share per pseudo-label cluster", [
        Image(kept_share_figure(labels, kept, word="cluster"), "Share of each pseudo-label cluster kept; the "
              "dashed line is the overall share (balanced keeps every bar near it).", alt="kept share per cluster"),
        Table(table.columns, table.rows[:MAX_GROUP_ROWS] if len(table.rows) > MAX_GROUP_ROWS else table.rows,
              caption=table.caption),
    ])]  # fmt: skip
    if take is not None:
        conf = np.asarray(pseudo.confidence, dtype=np.float64)
        galleries = score_galleries(-conf, ids, take, modality, name="cluster confidence (negated)", labels=labels)
        if galleries:
            sections.append(Section("Examples by pseudo-label confidence", [
                "Hardest = least confident cluster members, easiest = most confident; labels are pseudo-labels.",
                *galleries]))  # fmt: skip
    return Page(f"selfprune prune: {source_name}", verdict, sections, provenance)

"""Report blocks shared by every page: score histograms, example galleries, kept share per class.

Pure functions of arrays (no file is read or written): each returns a matplotlib Figure, a
:class:`~selfprune.report.html.Table` or :class:`~selfprune.report.html.Gallery` s for
:mod:`selfprune.report.html`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from selfprune.report.html import Gallery, Table, Tile

SNIPPET = 240  # characters of a text example shown in a gallery


def score_histogram(scores: Mapping[str, np.ndarray], *, keep: float | None = None, title: str = ""):
    """A Figure with one histogram per score (higher = harder); with ``keep``, a dashed line marks
    the hard policy's cut (examples right of it are kept)."""
    from selfprune.report.figures import new_figure, wrap_title

    n = max(len(scores), 1)
    fig = new_figure(min(4.2 * n, 12.0), 3.2)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, values) in zip(axes, scores.items(), strict=False):
        v = np.asarray(values, dtype=np.float64)
        ax.hist(v, bins=min(50, max(5, int(np.sqrt(len(v))))), color="#2a6fb0", alpha=0.85, label="examples")
        if keep is not None and len(v):
            m = max(1, int(round(keep * len(v)))) if keep <= 1 else int(keep)
            cut = float(np.sort(v)[::-1][min(m, len(v)) - 1])
            ax.axvline(cut, color="black", ls="--", lw=1, label=f"hard cut at keep {keep:g}")
        ax.set_title(wrap_title(name, 40), fontsize=9)
        ax.set_xlabel("score (higher = harder)")
        ax.set_ylabel("examples")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(wrap_title(title, 90), fontsize=10)
    return fig


def _snippet(text: Any) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= SNIPPET else s[: SNIPPET - 1] + "…"


def example_tiles(
    positions: Sequence[int],
    take: Callable[[np.ndarray], Any],
    modality: str,
    label: Callable[[int], str],
) -> list[Tile]:
    """Tiles of the examples at ``positions``: thumbnails for images, snippets for text, none for vectors."""
    pos = np.asarray(positions, dtype=np.int64)
    if modality not in ("image", "text") or len(pos) == 0:
        return []
    items = take(pos)
    if modality == "image":
        return [Tile(label(int(p)), image=np.asarray(items[i])) for i, p in enumerate(pos)]
    return [Tile(label(int(p)), text=_snippet(items[i])) for i, p in enumerate(pos)]


def extremes(values: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Positions of the ``n`` hardest (highest), easiest (lowest) and most typical (nearest the median)
    values, each in that order."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-v, kind="stable")
    n = min(n, len(v))
    typical = np.argsort(np.abs(v - np.median(v)), kind="stable")[:n]
    return {"hardest": order[:n], "easiest": order[::-1][:n], "most typical": typical}


def score_galleries(
    values: np.ndarray,
    ids: np.ndarray,
    take: Callable[[np.ndarray], Any],
    modality: str,
    *,
    name: str,
    labels: np.ndarray | None = None,
    n: int = 12,
) -> list[Gallery]:
    """Galleries of the hardest, easiest and most typical examples by the score ``values`` (aligned to
    ``ids``; ``take(positions)`` returns the examples). Empty for vector data (nothing to picture)."""
    v = np.asarray(values, dtype=np.float64)

    def label(p: int) -> str:
        cls = "" if labels is None else f", class {labels[p]}"
        return f"id {ids[p]}{cls}, {v[p]:.3g}"

    out = []
    for what, pos in extremes(v, n).items():
        tiles = example_tiles(pos, take, modality, label)
        if tiles:
            out.append(Gallery(f"{what} by {name}", tiles, note=f"label: id, class where known, {name} score"))
    return out


def kept_share(groups: np.ndarray, kept: np.ndarray, *, word: str = "class") -> Table:
    """Per group (class or cluster): examples, kept, kept share, and the share relative to the overall one."""
    g = np.asarray(groups)
    k = np.asarray(kept, dtype=bool)
    overall = k.mean() if len(k) else 0.0
    rows = []
    for c in np.unique(g):
        mask = g == c
        share = float(k[mask].mean())
        rows.append([str(c), int(mask.sum()), int(k[mask].sum()), share, share / overall if overall else float("nan")])
    return Table(
        [word, "examples", "kept", "kept share", "vs overall"],
        rows,
        caption=f"overall kept share {overall:.3f}; 'vs overall' 1 = the {word} keeps its share, 0 = all removed",
    )


def kept_share_figure(groups: np.ndarray, kept: np.ndarray, *, word: str = "class", title: str = ""):
    """A bar Figure of the kept share per group, with the overall share as a dashed line."""
    from selfprune.report.figures import new_figure, wrap_title

    g = np.asarray(groups)
    k = np.asarray(kept, dtype=bool)
    names = np.unique(g)
    shares = [float(k[g == c].mean()) for c in names]
    fig = new_figure(min(max(4.0, 0.25 * len(names) + 2), 10.0), 3.0)
    ax = fig.add_subplot()
    ax.bar(range(len(names)), shares, color="#2a6fb0", label=f"kept share of the {word}")
    ax.axhline(float(k.mean()), color="black", ls="--", lw=1, label="overall kept share")
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), [str(c) for c in names], fontsize=7)
    ax.set_xlabel(word)
    ax.set_ylabel("kept share")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(wrap_title(title or f"kept share per {word}"), fontsize=10)
    return fig

"""Redundancy commands: ``selfprune dedup`` (semantic dedup, eps sweep), ``selfprune density``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from selfprune.errors import InvalidInputError

DEFAULT_GRID = "0,0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2"


EmbOpt = Annotated[
    Path, typer.Option("--embeddings", help="Embedding store folder, .npy, .npz or Parquet file.")
]
ColumnOpt = Annotated[
    str | None, typer.Option("--column", help="Embedding column of a Parquet file.")
]


def register(app: typer.Typer) -> None:
    @app.command("dedup")
    def dedup(
        embeddings: EmbOpt,
        out: Annotated[Path, typer.Option("--out", help="Output folder.")],
        eps: Annotated[
            float, typer.Option(help="Remove when cosine similarity to a kept example > 1 - eps.")
        ] = 0.05,
        k: Annotated[int, typer.Option(help="Number of spherical k-means clusters.")] = 100,
        order: Annotated[
            str, typer.Option(help="Walk order in a cluster: farthest, nearest or random.")
        ] = "farthest",
        seed: Annotated[int, typer.Option(help="Seed of the k-means sample and start.")] = 0,
        tile: Annotated[
            int, typer.Option(help="Rows compared at a time (memory only, not the result).")
        ] = 1024,
        cross_check: Annotated[
            bool,
            typer.Option(
                "--cross-check/--no-cross-check",
                help="Also compare with the kept examples of the second-nearest cluster.",
            ),
        ] = True,
        column: ColumnOpt = None,
        eps_sweep: Annotated[
            bool, typer.Option("--eps-sweep", help="Report the fraction removed per eps instead.")
        ] = False,
        eps_grid: Annotated[
            str, typer.Option("--eps-grid", help="Comma-separated eps values for --eps-sweep.")
        ] = DEFAULT_GRID,
    ) -> None:
        """Semantic dedup (SemDeDup): write OUT/kept.parquet and OUT/removed.parquet."""
        from selfprune.io.store import load_embeddings

        ids, x = load_embeddings(embeddings, column=column)
        opts = {"k": k, "order": order, "seed": seed, "tile": tile, "cross_check": cross_check}
        if eps_sweep:
            _sweep(x, ids, out, _parse_grid(eps_grid), **opts)
        else:
            _dedup(x, ids, out, eps=eps, source=embeddings, **opts)

    @app.command("density")
    def density(
        embeddings: EmbOpt,
        out: Annotated[Path, typer.Option("--out", help="Score Parquet file to write.")],
        k: Annotated[int, typer.Option(help="Neighbours per example.")] = 10,
        metric: Annotated[str, typer.Option(help="cosine or l2.")] = "cosine",
        index: Annotated[
            str, typer.Option(help="auto, flat (exact) or ivf (approximate).")
        ] = "auto",
        seed: Annotated[int, typer.Option(help="Seed of the IVF sample (ivf only).")] = 0,
        name: Annotated[str, typer.Option(help="Score column name.")] = "density",
        column: ColumnOpt = None,
    ) -> None:
        """kNN density score (mean distance to the k nearest; sparse = hard) as a score file."""
        import numpy as np
        from rich.table import Table

        from selfprune.cli import out as stdout
        from selfprune.io.store import load_embeddings
        from selfprune.io.tables import write_scores
        from selfprune.metrics.density import knn_density

        ids, x = load_embeddings(embeddings, column=column)
        with _status(f"kNN density over {len(x):,} examples (k={k})"):
            scores = knn_density(x, k=k, ids=ids, metric=metric, index=index, seed=seed, name=name)
        write_scores(out, scores)
        v = scores.values
        table = Table(title=f"{name}: mean {metric} distance to {k} nearest (higher = sparser)")
        for col in ("examples", "min", "median", "mean", "max", "file"):
            table.add_column(col)
        table.add_row(
            f"{len(v):,}", f"{v.min():.4g}", f"{float(np.median(v)):.4g}",
            f"{v.mean():.4g}", f"{v.max():.4g}", str(out),
        )
        stdout.print(table)


def _parse_grid(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise InvalidInputError(
            f"dedup: --eps-grid must be comma-separated numbers, got {text!r}"
        ) from None
    if not values:
        raise InvalidInputError("dedup: --eps-grid is empty; give e.g. 0,0.01,0.05")
    return sorted(set(values))


class _status:
    """A rich spinner on stderr for a step without a known length."""

    def __init__(self, text: str) -> None:
        from selfprune.cli import console

        self._status = console.status(text)

    def __enter__(self):
        self._status.__enter__()
        return self

    def __exit__(self, *exc):
        return self._status.__exit__(*exc)


def _progress_bar(total_text: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from selfprune.cli import console

    return Progress(
        TextColumn(total_text), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )


def _dedup(x, ids, out: Path, *, eps, k, order, seed, tile, cross_check, source) -> None:
    import numpy as np
    import pyarrow as pa
    from rich.table import Table

    from selfprune.cli import out as stdout
    from selfprune.io.tables import write_ids, write_parquet
    from selfprune.metrics.semdedup import semdedup

    with _progress_bar("dedup: clusters") as bar:
        task = bar.add_task("clusters", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = semdedup(
            x, eps=eps, k=k, ids=ids, order=order, seed=seed, tile=tile,
            cross_check=cross_check, progress=tick,
        )

    meta = {**result.meta, "embeddings": str(source)}
    write_ids(out / "kept.parquet", result.kept, meta=meta)
    removed = pa.table(
        {
            "id": pa.array(result.removed),
            "duplicate_of": pa.array(result.duplicate_of),
            "similarity": pa.array(result.similarity, type=pa.float64()),
        }
    )
    write_parquet(out / "removed.parquet", removed, meta)

    table = Table(title=f"semantic dedup, eps={eps:g} (cosine > {1 - eps:g} to a kept example)")
    for col in ("examples", "kept", "removed", "removed %", "exact copies", "clusters", "largest"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{result.n_examples:,}", f"{len(result.kept):,}", f"{len(result.removed):,}",
        f"{100 * result.fraction_removed:.2f}", f"{result.meta['n_exact_duplicates']:,}",
        f"{result.meta['k_fitted']}", f"{result.meta['largest_cluster']:,}",
    )
    stdout.print(table)
    if len(result.removed):
        show = np.argsort(result.similarity, kind="stable")[:5]
        pairs = Table(title="least similar removed pairs (check eps here)")
        for col in ("id", "duplicate_of", "similarity"):
            pairs.add_column(col)
        for i in show:
            pairs.add_row(
                str(result.removed[i]), str(result.duplicate_of[i]), f"{result.similarity[i]:.5f}"
            )
        stdout.print(pairs)
    stdout.print(f"wrote {out / 'kept.parquet'} and {out / 'removed.parquet'}")


def _sweep(x, ids, out: Path, grid: list[float], *, k, order, seed, tile, cross_check) -> None:
    from rich.table import Table

    from selfprune.cli import out as stdout
    from selfprune.io.atomic import write_json_atomic
    from selfprune.metrics.semdedup import semdedup_sweep
    from selfprune.report.figures import save_png

    with _progress_bar("eps sweep: clusters") as bar:
        task = bar.add_task("clusters", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        sweep = semdedup_sweep(
            x, grid, k=k, ids=ids, order=order, seed=seed, tile=tile,
            cross_check=cross_check, progress=tick,
        )

    table = Table(title=f"semantic dedup eps sweep over {sweep.n_examples:,} examples (k={k})")
    for col in ("eps", "cosine >", "removed", "removed %"):
        table.add_column(col, justify="right")
    for e, r, f in zip(sweep.eps, sweep.n_removed, sweep.fraction_removed, strict=True):
        table.add_row(f"{e:g}", f"{1 - e:g}", f"{int(r):,}", f"{100 * f:.2f}")
    stdout.print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    ax.plot(sweep.eps, 100 * sweep.fraction_removed, marker="o")
    ax.set_xlabel("eps (remove when cosine similarity > 1 - eps)")
    ax.set_ylabel("examples removed (%)")
    ax.set_title(f"SemDeDup eps sweep, N={sweep.n_examples:,}, k={k}")
    if len(sweep.eps) > 1 and sweep.eps.min() >= 0 and sweep.eps[sweep.eps > 0].size:
        ax.set_xscale("symlog", linthresh=float(sweep.eps[sweep.eps > 0].min()))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    png = out / "eps_sweep.png"
    save_png(fig, png)
    plt.close(fig)
    write_json_atomic(
        out / "eps_sweep.json",
        {
            "eps": sweep.eps,
            "n_removed": sweep.n_removed,
            "fraction_removed": sweep.fraction_removed,
            "n_examples": sweep.n_examples,
            "meta": sweep.meta,
        },
    )
    stdout.print(f"wrote {png} and {out / 'eps_sweep.json'}")

"""Redundancy commands: ``selfprune dedup`` (semantic dedup, eps sweep, report.html), ``selfprune density``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from selfprune.commands._options import AddressOption, EngineOption, WorkersOption, engine_for, progress_bar, stats_row
from selfprune.errors import InvalidInputError

DEFAULT_GRID = "0,0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2"


EmbOpt = Annotated[
    Path, typer.Option("--embeddings", help="Embedding store folder, .npy, .npz or Parquet file.")
]
VectorColumnOpt = Annotated[
    str | None, typer.Option("--vector-column", help="Embedding column of a Parquet file.")
]


def register(app: typer.Typer) -> None:
    @app.command(
        "dedup", epilog="Example: selfprune dedup --embeddings runs/fm/emb --eps 0.05 --k 100 --out runs/fm/dedup"
    )
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
        vector_column: VectorColumnOpt = None,
        engine: EngineOption = "local",
        address: AddressOption = None,
        workers: WorkersOption = None,
        eps_sweep: Annotated[
            bool, typer.Option("--eps-sweep", help="Report the fraction removed per eps instead.")
        ] = False,
        eps_grid: Annotated[
            str, typer.Option("--eps-grid", help="Comma-separated eps values for --eps-sweep.")
        ] = DEFAULT_GRID,
        data: Annotated[
            str | None,
            typer.Option("--data", help="The embedded data (built-in name or path): duplicate groups in report.html "
                         "show the examples themselves."),
        ] = None,
    ) -> None:
        """Semantic dedup (SemDeDup): write OUT/kept.parquet, OUT/removed.parquet and OUT/report.html."""
        from selfprune.io.store import open_embeddings
        from selfprune.report.html import provenance

        started = time.time()
        x, ids, _, _ = open_embeddings(embeddings, column=vector_column)
        take, modality = _data_take(data, ids)
        opts = {"k": k, "order": order, "seed": seed, "tile": tile, "cross_check": cross_check}
        with engine_for(out, engine, address, workers):
            if eps_sweep:
                sweep = _sweep(x, ids, out, _parse_grid(eps_grid), **opts)
            else:
                result = _dedup(x, ids, out, eps=eps, source=embeddings, **opts)
        prov = provenance(inputs={"--embeddings": embeddings, "--data": data}, seed=seed, started=started)
        if eps_sweep:
            _sweep_report(sweep, out, k=k, provenance=prov)
        else:
            _dedup_report(result, ids, out, eps=eps, take=take, modality=modality, provenance=prov)

    @app.command(
        "density",
        epilog="Example: selfprune density --embeddings runs/fm/emb --neighbours 10 --out runs/fm/density.parquet",
    )
    def density(
        embeddings: EmbOpt,
        out: Annotated[Path, typer.Option("--out", help="Score Parquet file to write.")],
        neighbours: Annotated[int, typer.Option(help="Neighbours per example (kNN degree).")] = 10,
        metric: Annotated[str, typer.Option(help="cosine or l2.")] = "cosine",
        index: Annotated[
            str, typer.Option(help="auto, flat (exact) or ivf (approximate).")
        ] = "auto",
        seed: Annotated[int, typer.Option(help="Seed of the IVF sample (ivf only).")] = 0,
        name: Annotated[str, typer.Option(help="Score column name.")] = "density",
        reference: Annotated[
            int | None,
            typer.Option(help="Rows held in the neighbour index (default: all up to 250,000, else a sample)."),
        ] = None,
        vector_column: VectorColumnOpt = None,
        engine: EngineOption = "local",
        address: AddressOption = None,
        workers: WorkersOption = None,
    ) -> None:
        """kNN density score (mean distance to the nearest neighbours; sparse = hard) as a score file."""
        from rich.table import Table

        from selfprune.cli import out as stdout
        from selfprune.io.store import open_embeddings
        from selfprune.io.tables import write_scores
        from selfprune.metrics.density import knn_density
        from selfprune.report.summary import describe

        x, ids, _, _ = open_embeddings(embeddings, column=vector_column)
        with engine_for(out, engine, address, workers), progress_bar(transient=True) as bar:
            task = bar.add_task(f"kNN density over {len(x):,} examples ({neighbours} neighbours)", total=len(x))
            scores = knn_density(
                x, k=neighbours, ids=ids, metric=metric, index=index, seed=seed, name=name, reference=reference,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
            write_scores(out, scores)
        d = describe(scores.values)
        table = Table(title=f"{name}: mean {metric} distance to {neighbours} nearest (higher = sparser)")
        for col in ("examples", "min", "median", "mean", "max", "file"):
            table.add_column(col)
        table.add_row(f"{d['n']:,}", *stats_row(d), str(out))
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


def _data_take(data: str | None, ids):
    """``(take, modality)`` of the examples behind the embeddings' ids, ``(None, "features")`` without data."""
    if data is None:
        return None, "features"
    from selfprune._checks import align_ids
    from selfprune.io.sources import load_source

    ds = load_source(data)
    at = align_ids(ds.ids, ids, caller="dedup", what=f"--data {data}")
    return (lambda pos: ds.take(at[pos])), ds.modality


def _dedup_report(result, ids, out: Path, *, eps: float, take, modality: str, provenance: dict) -> None:
    from selfprune.cli import out as stdout
    from selfprune.report.html import write_report
    from selfprune.report.pages import dedup_page

    path = write_report(dedup_page(result, ids=ids, eps=eps, take=take, modality=modality, provenance=provenance),
                        out)  # fmt: skip
    stdout.print(f"report: {path}")


def _sweep_report(sweep, out: Path, *, k: int, provenance: dict) -> None:
    from selfprune.cli import out as stdout
    from selfprune.report.html import write_report
    from selfprune.report.pages import sweep_page
    from selfprune.report.redundancy import eps_sweep_figure

    path = write_report(sweep_page(sweep, k=k, figure=eps_sweep_figure(sweep, k=k), provenance=provenance), out)
    stdout.print(f"report: {path}")


def _dedup(x, ids, out: Path, *, eps, k, order, seed, tile, cross_check, source):
    import numpy as np
    from rich.table import Table

    from selfprune.cli import out as stdout
    from selfprune.io.dedup import write_dedup
    from selfprune.metrics.semdedup import semdedup

    with progress_bar(transient=True) as bar:
        task = bar.add_task("dedup: cluster pass", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = semdedup(
            x, eps=eps, k=k, ids=ids, order=order, seed=seed, tile=tile,
            cross_check=cross_check, progress=tick,
        )

    write_dedup(out, result, meta={"embeddings": str(source)})

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
    return result


def _sweep(x, ids, out: Path, grid: list[float], *, k, order, seed, tile, cross_check):
    from rich.table import Table

    from selfprune.cli import out as stdout
    from selfprune.io.dedup import write_eps_sweep
    from selfprune.metrics.semdedup import semdedup_sweep
    from selfprune.report.redundancy import plot_eps_sweep

    with progress_bar(transient=True) as bar:
        task = bar.add_task("eps sweep: cluster pass", total=None)

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
    png = plot_eps_sweep(sweep, out / "eps_sweep.png", k=k)
    write_eps_sweep(out / "eps_sweep.json", sweep)
    stdout.print(f"wrote {png} and {out / 'eps_sweep.json'}")
    return sweep

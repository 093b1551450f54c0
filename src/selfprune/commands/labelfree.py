"""Label-free commands: ``pseudo-labels`` (clusters of the embeddings for proxy training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from selfprune.commands._options import AddressOption, EngineOption, WorkersOption, engine_for


def register(app: typer.Typer) -> None:
    @app.command(
        "pseudo-labels",
        epilog="Example: selfprune pseudo-labels --embeddings runs/fm/emb --out runs/fm/pseudo.parquet",
    )
    def pseudo_labels_cmd(
        embeddings: Annotated[Path, typer.Option(help="store folder, .npy, .npz or Parquet with a vector column")],
        out: Annotated[Path, typer.Option(help="Parquet to write: id, pseudo_label, confidence")],
        k: Annotated[
            int | None, typer.Option(help="clusters (default: chosen from the number of rows, printed)")
        ] = None,
        refine: Annotated[
            str, typer.Option(help="neighbours (head trained to agree with each row's neighbours) or none")
        ] = "neighbours",
        neighbours: Annotated[int, typer.Option(help="nearest neighbours per row for --refine neighbours")] = 20,
        epochs: Annotated[int, typer.Option(help="passes of the neighbour head over its sample")] = 30,
        fit_rows: Annotated[int, typer.Option(help="rows the neighbour head trains on (a sample)")] = 100_000,
        seed: Annotated[int, typer.Option(help="seed of k-means and the head")] = 0,
        restarts: Annotated[
            int, typer.Option(help="cluster this many times (seeds drawn from --seed); see --combine")
        ] = 1,
        combine: Annotated[
            str,
            typer.Option(
                help="with --restarts: vote (one consensus labelling) or heads (keep every restart: "
                "dynamics trains one proxy with a head per restart)"
            ),
        ] = "vote",
        vector_column: Annotated[str | None, typer.Option(help="embedding column of a Parquet file")] = None,
        engine: EngineOption = "local",
        address: AddressOption = None,
        workers: WorkersOption = None,
    ) -> None:
        """Cluster embeddings into pseudo-classes for label-free training dynamics."""
        from selfprune.cli import out as stdout
        from selfprune.io.store import open_embeddings
        from selfprune.io.tables import write_pseudo_labels
        from selfprune.metrics.pseudo import pseudo_labels

        source, ids, labels, meta = open_embeddings(embeddings, column=vector_column)
        with engine_for(out, engine, address, workers):
            pl = pseudo_labels(
                source, k=k, refine=refine, seed=seed, ids=ids, neighbours=neighbours, epochs=epochs,
                fit_rows=fit_rows, restarts=restarts, combine=combine, encoder=meta.get("encoder"),
            )  # fmt: skip
            write_pseudo_labels(out, pl)
        counts = pl.counts()
        used = counts[counts > 0]
        how = "given" if k is not None else f"chosen for {len(pl):,} rows ({pl.meta['k_rule']})"
        stdout.print(f"k = {pl.k} clusters, {how}; refine = {refine}")
        if pl.heads > 1:
            stdout.print(f"{restarts} restarts kept for {pl.heads} proxy heads (pseudo_label is restart 0)")
        elif restarts > 1:
            stdout.print(f"vote of {restarts} restarts: on average {pl.meta['mean_agreement']:.1%} of them agree")
        stdout.print(
            f"cluster sizes: min {used.min():,}, median {int(np.median(used)):,}, max {used.max():,}; "
            f"{pl.meta['empty_clusters']} empty; mean confidence {pl.meta['mean_confidence']:.3f}"
        )
        if labels is not None:
            stdout.print(f"purity against the stored labels (for reference, not used): {pl.purity(labels):.3f}")
        stdout.print(f"wrote pseudo-labels for {len(pl):,} examples to {out}")

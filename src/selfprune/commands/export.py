"""``export`` (the kept examples themselves) and ``prune`` (label-free, from data to pruned data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        epilog="Example: selfprune export --data fashion-mnist --kept runs/fm/kept.parquet "
        "--format imagefolder --out runs/fm/pruned"
    )
    def export(
        data: Annotated[str, typer.Option(help="the data the ids came from: built-in name or a path")],
        kept: Annotated[Path, typer.Option(help="kept ids: select's Parquet (or its .txt)")],
        out: Annotated[Path, typer.Option(help="file (parquet, jsonl) or new folder (imagefolder) to write")],
        format: Annotated[
            str | None, typer.Option("--format", help="parquet, jsonl, imagefolder or hf (default: from --out)")
        ] = None,
        split: Annotated[str, typer.Option(help="train or test (built-ins)")] = "train",
        text_field: Annotated[str, typer.Option(help="JSONL field holding the text")] = "text",
    ) -> None:
        """Write the kept examples (ids, labels and the data itself), with the selection's settings."""
        from selfprune.cli import out as stdout
        from selfprune.io.export import export as run_export
        from selfprune.io.sources import load_source
        from selfprune.io.tables import read_selection

        ids, meta = read_selection(kept)
        source = load_source(data, split=split, text_field=text_field)
        path = run_export(source, ids, out, format=format, meta={"selection": meta, "kept_file": str(kept)})
        stdout.print(f"wrote {len(ids):,} of {len(source):,} examples of {source.name} to {path}", highlight=False)

    @app.command(epilog="Example: selfprune prune --data fashion-mnist --keep 0.5 --out runs/fm-pruned")
    def prune(
        data: Annotated[str, typer.Option(help="built-in name (fashion-mnist, digits) or a path")],
        keep: Annotated[str, typer.Option(help="a fraction in (0, 1] or a count")],
        out: Annotated[Path, typer.Option(help="folder to write into (embeddings, pseudo-labels, kept ids, data)")],
        format: Annotated[str, typer.Option("--format", help="parquet, jsonl, imagefolder or hf")] = "parquet",
        encoder: Annotated[str | None, typer.Option(help="default: pixels for images, wordllama for text")] = None,
        seed: Annotated[int, typer.Option(help="the master seed")] = 0,
        route: Annotated[str, typer.Option(
            help="dynamics (the hardest by label-free EL2N within each pseudo-label cluster) or "
                 "balanced-random (random within each pseudo-label cluster, no proxy)")] = "dynamics",
    ) -> None:
        """Label-free, end to end: embed, pseudo-label, rank by the proxy's training dynamics, export."""
        from selfprune.cli import console
        from selfprune.cli import out as stdout
        from selfprune.commands._options import parse_keep
        from selfprune.pipeline import prune as run_prune

        result = run_prune(data, parse_keep(keep, caller="prune"), out, seed=seed, encoder=encoder, format=format,
                           route=route, progress=lambda msg: console.print(msg, highlight=False))  # fmt: skip
        stdout.print(f"kept {len(result.kept_ids):,} of {result.n_total:,}; pruned data: {result.pruned_path}",
                     highlight=False)  # fmt: skip
        for reason in result.reasons:
            stdout.print(f"- {reason}", highlight=False)

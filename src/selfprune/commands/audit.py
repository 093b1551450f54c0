"""``selfprune audit``: can a label-free score be trusted? Writes OUT/audit.json, audit.md, PNGs, report.html."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from selfprune._checks import align_ids
from selfprune.commands._options import LABELS_HELP, parse_keep
from selfprune.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    @app.command(
        "audit",
        epilog="Example: selfprune audit --embeddings runs/fm/emb --scores runs/fm/scores.parquet "
        "--score-column prototypes --data fashion-mnist --keep 0.5 --out runs/fm/audit",
    )
    def audit_cmd(
        embeddings: Annotated[
            Path,
            typer.Option("--embeddings", help="Embedding store folder, .npy, .npz or Parquet."),
        ],
        scores: Annotated[Path, typer.Option("--scores", help="Score Parquet file.")],
        out: Annotated[
            Path,
            typer.Option("--out", help="Output folder (audit.json, audit.md, PNGs, report.html)."),
        ],
        score_column: Annotated[str, typer.Option("--score-column", help="Score column to audit.")] = "prototypes",
        labels: Annotated[
            str,
            typer.Option("--labels", help=LABELS_HELP + "; auto: the store's, else the score file's; -1 = unlabelled"),
        ] = "auto",
        data: Annotated[
            str | None,
            typer.Option(
                "--data",
                help="Raw data (built-in name or path) for the input-norm and untrained-network nulls.",
            ),
        ] = None,
        split: Annotated[str, typer.Option("--split", help="Split of a built-in --data.")] = "train",
        keep: Annotated[
            str,
            typer.Option("--keep", help="Budget kept by the hard policy: a fraction in (0, 1] or an integer count > 1"),
        ] = "0.5",
        k: Annotated[
            int | None, typer.Option("--k", help="k-means clusters (default: the score file's, else the library's).")
        ] = None,
        compare: Annotated[
            list[Path] | None,
            typer.Option(
                "--compare",
                help="Embeddings of another encoder (repeatable): cross-encoder stability.",
            ),
        ] = None,
        proxy: Annotated[
            str | None,
            typer.Option(
                "--proxy",
                help="Score column to use as the supervised difficulty proxy (e.g. el2n).",
            ),
        ] = None,
        pilot: Annotated[
            bool,
            typer.Option(
                "--pilot",
                help="Train a small pilot (keep 0.3/0.5, 2 seeds) vs random; needs a built-in --data.",
            ),
        ] = False,
        seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    ) -> None:
        """Audit a label-free score: stability, null controls, agreement, health, and a verdict."""
        started = time.time()
        from rich.table import Table

        from selfprune.cli import console
        from selfprune.cli import out as stdout
        from selfprune.evaluate.audit import audit, pilot_curve
        from selfprune.evaluate.audit_inputs import (
            aligned_scores,
            cross_encoder_scores,
            labelfree_recheck,
            score_file_labels,
        )
        from selfprune.io.atomic import write_json_atomic
        from selfprune.io.labels import load_labels
        from selfprune.io.store import open_embeddings
        from selfprune.io.tables import read_scores
        from selfprune.report.audit_report import write_audit_report

        column = score_column
        budget = parse_keep(keep, caller="audit")
        src, ids, store_labels, emb_meta = open_embeddings(embeddings)
        x = np.asarray(src.to_array() if hasattr(src, "to_array") else src)
        table = read_scores(scores)
        if column not in table:
            raise InvalidInputError(
                f"audit: --score-column {column!r} is not in {scores}; columns are {sorted(table)}"
            )
        target = aligned_scores(table[column], ids, what=f"score file {scores.name}")
        auto = store_labels if store_labels is not None else score_file_labels(table, ids)
        y = load_labels(labels, ids, caller="audit", auto=auto)
        prox = None
        if proxy is not None:
            if proxy not in table:
                raise InvalidInputError(f"audit: --proxy {proxy!r} is not in {scores}; columns are {sorted(table)}")
            prox = aligned_scores(table[proxy], ids, what="proxy column").values
        inputs, pilot_fn, modality = None, None, "features"
        if data is not None:
            from selfprune.io.sources import load_source

            ds = load_source(data, split=split)
            inputs = np.asarray(ds.take(align_ids(ds.ids, ids, caller="audit", what=f"data {data!r}")))
            modality = ds.modality
            if pilot:
                if ds.labels is None or y is None:
                    raise InvalidInputError("audit: --pilot needs labels")
                from selfprune.evaluate.trainers import get_trainer

                test = load_source(data, split="test")
                if test.labels is None:
                    raise InvalidInputError(f"audit: --pilot needs a labelled test split of {data!r}")
                pilot_fn = pilot_curve(inputs, y, np.asarray(test.items), test.labels, trainer=get_trainer("linear"))
        elif pilot:
            raise InvalidInputError("audit: --pilot needs --data (a built-in with a test split)")
        others = {}
        for path in compare or []:
            o_src, o_ids, _, o_meta = open_embeddings(path)
            ox = np.asarray(o_src.to_array() if hasattr(o_src, "to_array") else o_src)
            label = str(o_meta.get("encoder", path.name))
            others[label if label not in others else str(path)] = (o_ids, ox)
        other_scores = cross_encoder_scores(others, ids, target_meta=target.meta, k=k, seed=seed)
        score_fn, kk = labelfree_recheck(target, inputs, metric=column, k=k)
        if target.meta.get("label_free") and inputs is None:
            console.print("label-free score without --data: its stability across clustering seeds is not rechecked")
        with console.status("auditing") as status:

            def step(name: str) -> None:
                status.update(f"auditing: {name}")
                if not console.is_terminal:
                    console.print(f"audit: {name}", highlight=False)

            report = audit(x, target, keep=budget, k=kk, labels=y, inputs=inputs, proxy=prox,
                           other_scores=other_scores or None, seed=seed, pilot=pilot_fn, score_fn=score_fn,
                           progress=step)  # fmt: skip
        doc = {**report.to_dict(), "inputs": {"embeddings": str(embeddings), "encoder": emb_meta.get("encoder"),
                                              "scores": str(scores), "column": column, "keep": budget,
                                              "seed": seed}}  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "audit.json", doc)
        from selfprune.report.html import provenance

        prov = provenance(inputs={"--embeddings": embeddings, "--scores": scores, "--data": data}, seed=seed,
                          started=started)  # fmt: skip
        write_audit_report(doc, out, title=f"Audit of {column!r} ({emb_meta.get('encoder')})", provenance=prov,
                           scores=target, take=None if inputs is None else inputs.__getitem__, modality=modality,
                           labels=y)  # fmt: skip
        t = Table(title=f"audit of {column!r}")
        for col in ("check", "status", "detail"):
            t.add_column(col)
        style = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for c in report.checks:
            t.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail)
        stdout.print(t)
        stdout.print(f"verdict: [bold]{report.verdict}[/]  ->  {out / 'audit.json'}, {out / 'report.html'}")

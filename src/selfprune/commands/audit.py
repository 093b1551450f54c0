"""``selfprune audit``: can a label-free score be trusted? Writes OUT/audit.json, .md, .html, PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from selfprune._checks import align_ids
from selfprune.errors import DataSourceError, InvalidInputError


def _read_labels(spec: str, ids: np.ndarray, store_labels, table) -> np.ndarray | None:
    if spec == "none":
        return None
    if spec == "auto":
        if store_labels is not None:
            return np.asarray(store_labels, dtype=np.int64)
        if table.labels is not None:
            at = align_ids(table.ids, ids, caller="audit", what="score file")
            return np.asarray(table.labels, dtype=np.int64)[at]
        return None
    path = Path(spec)
    if not path.is_file():
        raise DataSourceError(f"audit: --labels must be auto, none, a .npy or a Parquet file (id, label); got {spec!r}")
    if path.suffix == ".npy":
        lab = np.load(path, allow_pickle=False)
        if lab.shape != (len(ids),):
            raise DataSourceError(f"audit: {path} holds {lab.shape} labels for {len(ids)} embeddings")
        return lab.astype(np.int64)
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    if not {"id", "label"} <= set(t.column_names):
        raise DataSourceError(f"audit: {path} needs columns id and label, has {t.column_names}")
    lid, lab = t.column("id").to_numpy(), t.column("label").to_numpy()
    out = np.full(len(ids), -1, dtype=np.int64)  # ids without a label stay unlabelled
    at = align_ids(ids, lid, caller="audit", what="embeddings", allow_missing=True)
    out[at[at >= 0]] = lab[at >= 0].astype(np.int64)
    return out


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def audit_cmd(
        embeddings: Annotated[
            Path,
            typer.Option("--embeddings", help="Embedding store folder, .npy, .npz or Parquet."),
        ],
        scores: Annotated[Path, typer.Option("--scores", help="Score Parquet file.")],
        out: Annotated[
            Path,
            typer.Option("--out", help="Output folder (audit.json, audit.md, audit.html, PNGs)."),
        ],
        column: Annotated[str, typer.Option("--column", help="Score column to audit.")] = "prototypes",
        labels: Annotated[
            str,
            typer.Option(
                "--labels",
                help="auto (from the store or score file), none, or a .npy / Parquet (id, label) file; "
                "-1 = unlabelled.",
            ),
        ] = "auto",
        source: Annotated[
            str | None,
            typer.Option(
                "--source",
                help="Raw data (built-in name or path) for the input-norm and untrained-network nulls.",
            ),
        ] = None,
        split: Annotated[str, typer.Option("--split", help="Split of a built-in --source.")] = "train",
        keep: Annotated[
            float,
            typer.Option("--keep", help="Budget: fraction (or count) kept by the hard policy."),
        ] = 0.5,
        k: Annotated[int | None, typer.Option("--k", help="Prototypes' k (default: from the score file).")] = None,
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
                help="Train a small pilot (keep 0.3/0.5, 2 seeds) vs random; needs a built-in --source.",
            ),
        ] = False,
        seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    ) -> None:
        """Audit a label-free score: stability, null controls, agreement, health, and a verdict."""
        from rich.table import Table

        from selfprune.cli import console
        from selfprune.cli import out as stdout
        from selfprune.evaluate.audit import audit, pilot_curve
        from selfprune.io.atomic import write_json_atomic
        from selfprune.io.store import open_embeddings
        from selfprune.io.tables import read_scores
        from selfprune.metrics import prototypes
        from selfprune.report.audit_report import write_audit_report
        from selfprune.scores import Scores

        src, ids, store_labels, emb_meta = open_embeddings(embeddings)
        x = np.asarray(src.to_array() if hasattr(src, "to_array") else src)
        table = read_scores(scores)
        if column not in table:
            raise InvalidInputError(f"audit: --column {column!r} is not in {scores}; columns are {sorted(table)}")
        s = table[column]
        pos = align_ids(s.ids, ids, caller="audit", what=f"score file {scores.name}")
        target = Scores(ids, s.values[pos], s.name, s.meta)
        y = _read_labels(labels, ids, store_labels, table)
        prox = None
        if proxy is not None:
            if proxy not in table:
                raise InvalidInputError(f"audit: --proxy {proxy!r} is not in {scores}; columns are {sorted(table)}")
            prox = table[proxy].values[align_ids(table[proxy].ids, ids, caller="audit", what="proxy column")]
        inputs, pilot_fn = None, None
        if source is not None:
            from selfprune.io.sources import load_source

            ds = load_source(source, split=split)
            inputs = np.asarray(ds.take(align_ids(ds.ids, ids, caller="audit", what=f"source {source!r}")))
            if pilot:
                if ds.labels is None or y is None:
                    raise InvalidInputError("audit: --pilot needs labels")
                from selfprune.evaluate.trainers import get_trainer

                test = load_source(source, split="test")
                if test.labels is None:
                    raise InvalidInputError(f"audit: --pilot needs a labelled test split of {source!r}")
                pilot_fn = pilot_curve(inputs, y, np.asarray(test.items), test.labels, trainer=get_trainer("linear"))
        elif pilot:
            raise InvalidInputError("audit: --pilot needs --source (a built-in with a test split)")
        kk = k if k is not None else target.meta.get("k")
        others = {}
        for path in compare or []:
            o_src, o_ids, _, o_meta = open_embeddings(path)
            ox = np.asarray(o_src.to_array() if hasattr(o_src, "to_array") else o_src)
            ox = ox[align_ids(o_ids, ids, caller="audit", what=f"embeddings {path}")]
            label = str(o_meta.get("encoder", path.name))
            others[label if label not in others else str(path)] = prototypes(
                ox, k=int(kk or min(100, len(ox) // 4)), seeds=seed
            )
        score_fn = None
        if target.meta.get("label_free"):
            if inputs is None:
                console.print(
                    "label-free score without --source: its stability across clustering seeds is not rechecked"
                )
            else:
                from selfprune.dynamics.train import labelfree_score_fn

                settings = {"model": target.meta.get("model", "auto"), "epochs": int(target.meta.get("epochs", 2))}
                score_fn = labelfree_score_fn(inputs, metric=column, **settings)
                kk = kk if kk is not None else target.meta.get("pseudo_labels", {}).get("k")
        with console.status("auditing (k-means restarts, null controls, bootstrap)..."):
            report = audit(x, target, keep=keep, k=kk, labels=y, inputs=inputs, proxy=prox,
                           other_scores=others or None, seed=seed, pilot=pilot_fn, score_fn=score_fn)  # fmt: skip
        doc = {**report.to_dict(), "inputs": {"embeddings": str(embeddings), "encoder": emb_meta.get("encoder"),
                                              "scores": str(scores), "column": column, "keep": keep,
                                              "seed": seed}}  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "audit.json", doc)
        write_audit_report(doc, out, title=f"Audit of {column!r} ({emb_meta.get('encoder')})")
        t = Table(title=f"audit of {column!r}")
        for col in ("check", "status", "detail"):
            t.add_column(col)
        style = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for c in report.checks:
            t.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail)
        stdout.print(t)
        stdout.print(f"verdict: [bold]{report.verdict}[/]  ->  {out / 'audit.json'}")

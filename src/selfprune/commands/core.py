"""Core commands: ``embed``, ``score``, ``select``, ``combine``, ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from selfprune.commands._options import (
    LABELS_HELP,
    AddressOption,
    EngineOption,
    WorkersOption,
    engine_for,
    parse_ints,
    parse_keep,
    progress_bar,
)
from selfprune.errors import InvalidInputError


def _encoder_settings(pairs: list[str] | None) -> dict:
    """``--set key=value`` pairs -> encoder settings (ints and floats parsed)."""
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InvalidInputError(f"--set takes key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        for cast in (int, float):
            try:
                out[key.replace("-", "_")] = cast(raw)
                break
            except ValueError:
                continue
        else:
            out[key.replace("-", "_")] = raw
    return out


def register(app: typer.Typer) -> None:
    @app.command(epilog="Example: selfprune embed --data fashion-mnist --encoder pixels --out runs/fm/emb")
    def embed(
        data: Annotated[str, typer.Option(help="built-in name (fashion-mnist, digits) or a path")],
        out: Annotated[Path, typer.Option(help="store folder to write (resumed if it holds this run)")],
        encoder: Annotated[
            str, typer.Option(help="pixels, efficientnet-lite0, contrastive, wordllama, minilm")
        ] = "pixels",
        split: Annotated[str, typer.Option(help="train or test (built-ins)")] = "train",
        setting: Annotated[
            list[str] | None, typer.Option("--set", help="encoder setting key=value, repeatable")
        ] = None,
        chunk_rows: Annotated[int, typer.Option(help="rows per stored chunk")] = 8192,
        dtype: Annotated[str, typer.Option(help="float32 or float16 (half the disk; rows read back as float32)")] = (
            "float32"
        ),
        batch_size: Annotated[int, typer.Option(help="rows per encoder call")] = 512,
        seed: Annotated[int, typer.Option(help="seed for encoders that learn")] = 0,
        fit_rows: Annotated[int, typer.Option(help="sample size that learning encoders fit on")] = 20_000,
        text_field: Annotated[str, typer.Option(help="JSONL field holding the text")] = "text",
        skip_corrupt: Annotated[bool, typer.Option(help="skip corrupt images with a warning")] = False,
    ) -> None:
        """Embed a data set into a chunked, resumable embedding store."""
        from selfprune.cli import out as stdout
        from selfprune.embed import get_encoder
        from selfprune.embed.run import embed as run_embed
        from selfprune.io.sources import load_source

        dataset = load_source(data, split=split, text_field=text_field, skip_corrupt=skip_corrupt)
        enc = get_encoder(encoder, **_encoder_settings(setting))
        with progress_bar() as bar:
            task = bar.add_task(f"embed {dataset.name} with {encoder}", total=len(dataset))
            store = run_embed(
                dataset,
                enc,
                out,
                chunk_rows=chunk_rows,
                batch_size=batch_size,
                seed=seed,
                fit_rows=fit_rows,
                dtype=dtype,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        stdout.print(f"wrote {len(store)} x {store.dim} embeddings ({encoder}) to {out}")

    @app.command(
        epilog="Example: selfprune score --embeddings runs/fm/emb --metric prototypes --k 100 --seeds 0,1,2 "
        "--out runs/fm/scores.parquet"
    )
    def score(
        embeddings: Annotated[Path, typer.Option(help="store folder, .npy, .npz or Parquet with a vector column")],
        out: Annotated[Path, typer.Option(help="score Parquet to write")],
        metric: Annotated[str, typer.Option(help="prototypes, class-prototypes or random")] = "prototypes",
        k: Annotated[int | None, typer.Option(help="k-means clusters (prototypes; default 100)")] = None,
        seeds: Annotated[
            str, typer.Option(help="k-means seeds, comma-separated (0,1,2): the score is averaged over them")
        ] = "0",
        labels: Annotated[str, typer.Option(help=LABELS_HELP)] = "auto",
        vector_column: Annotated[str | None, typer.Option(help="embedding column of a Parquet file")] = None,
        add_to: Annotated[bool, typer.Option(help="add the column to an existing score file at --out")] = False,
        engine: EngineOption = "local",
        address: AddressOption = None,
        workers: WorkersOption = None,
    ) -> None:
        """Score every example (higher = harder) and write the score Parquet."""
        from selfprune.cli import out as stdout
        from selfprune.io.labels import load_labels
        from selfprune.io.store import open_embeddings
        from selfprune.io.tables import read_scores, write_scores
        from selfprune.metrics import DEFAULT_K, class_prototypes, prototypes, random_scores
        from selfprune.report.summary import describe
        from selfprune.scores import ScoreTable

        seed_list = parse_ints(seeds, caller="score", option="--seeds")
        source, ids, store_labels, meta = open_embeddings(embeddings, column=vector_column)
        lab = load_labels(labels, ids, caller="score", auto=store_labels)
        encoder = meta.get("encoder")
        if metric not in ("prototypes", "class-prototypes", "random"):
            raise InvalidInputError(f"score: unknown metric {metric!r}; choose prototypes, class-prototypes, random")
        if metric == "class-prototypes" and lab is None:
            raise InvalidInputError("score: class-prototypes needs labels (--labels, or a store with labels)")
        with engine_for(out, engine, address, workers):
            if metric == "prototypes":
                with progress_bar(transient=True) as bar:
                    task = bar.add_task(f"prototypes over {len(ids):,} rows", total=None)
                    s = prototypes(
                        source, k=DEFAULT_K if k is None else k, seeds=seed_list, ids=ids, encoder=encoder,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )  # fmt: skip
            elif metric == "class-prototypes":
                s = class_prototypes(source, lab, ids=ids, encoder=encoder)
            else:
                s = random_scores(ids, seed=seed_list[0])
            table = ScoreTable.from_scores([s], labels=lab)
            if add_to and out.is_file():
                table = read_scores(out).with_scores(s)
            write_scores(out, table)
        d = describe(s.values)
        stdout.print(
            f"wrote {s.name} for {len(s)} examples to {out} (min {d['min']:.4f}, median "
            f"{d['median']:.4f}, max {d['max']:.4f})"
        )

    @app.command(
        "select",
        epilog="Example: selfprune select --scores runs/fm/scores.parquet --score-column prototypes --keep 0.5 "
        "--policy hard --out runs/fm/kept.parquet",
    )
    def select_cmd(
        scores: Annotated[Path, typer.Option(help="score Parquet")],
        out: Annotated[Path, typer.Option(help="kept ids Parquet (a .txt twin is written beside it)")],
        keep: Annotated[str, typer.Option(help="fraction in (0, 1] or an integer count > 1")],
        score_column: Annotated[str | None, typer.Option(help="score column (default: the only one)")] = None,
        policy: Annotated[
            str,
            typer.Option(
                help="hard, easy, random, stratified, auto (pilot runs; needs --data) or d2 (needs --embeddings)"
            ),
        ] = "hard",
        balance_classes: Annotated[
            bool, typer.Option(help="each class keeps its share (labels, else the file's pseudo-labels)")
        ] = False,
        cutoff: Annotated[
            str,
            typer.Option(
                help="first drop the hardest fraction (double-end); auto: the share flagged by AUM "
                "threshold runs (needs an aum_flagged column: dynamics --aum-threshold)"
            ),
        ] = "0",
        strata: Annotated[int, typer.Option(help="strata for the stratified policy")] = 50,
        labels: Annotated[str, typer.Option(help=LABELS_HELP)] = "auto",
        seed: Annotated[int, typer.Option(help="seed for random and stratified")] = 0,
        data: Annotated[
            str | None, typer.Option(help="labelled data for --policy auto pilots (built-in or path)")
        ] = None,
        pilot_model: Annotated[str, typer.Option(help="network of the --policy auto pilots")] = "linear",
        pilot_n_seeds: Annotated[int, typer.Option(help="pilot runs per policy for --policy auto (seeds 0..n-1)")] = 2,
        embeddings: Annotated[Path | None, typer.Option(help="embeddings for --policy d2")] = None,
        neighbours: Annotated[int, typer.Option(help="kNN graph degree for --policy d2")] = 10,
    ) -> None:
        """Keep a fraction or count of examples by one score column; write the kept ids."""
        from selfprune.cli import out as stdout
        from selfprune.io.labels import load_labels
        from selfprune.io.tables import read_scores, write_ids
        from selfprune.select import select, summarize

        table = read_scores(scores)
        column = score_column
        if column is None:
            if len(table) != 1:
                raise InvalidInputError(f"select: {scores} has several columns {list(table)}; pass --score-column")
            column = next(iter(table))
        if column not in table:
            raise InvalidInputError(f"select: no column {column!r} in {scores}; columns are {list(table)}")
        s = table[column]
        lab = load_labels(labels, table.ids, caller="select", auto=table.labels)
        classes_from = "labels"
        if lab is None and table.pseudo_labels is not None:
            lab, classes_from = table.pseudo_labels, "pseudo-labels"
        if balance_classes and lab is None:
            raise InvalidInputError(
                f"select: --balance-classes needs labels (or pseudo-labels); {scores} has no label or "
                "pseudo_label column and --labels gave none"
            )
        cutoff, cut_reason = _resolve_cutoff(cutoff, table, scores)
        if cut_reason:
            stdout.print(cut_reason)
        keep_value = parse_keep(keep, caller="select")
        decision = None
        if policy == "auto":
            decision = _decide_auto(
                s, keep_value, data, pilot_model, pilot_n_seeds, seed, cutoff, balance_classes, strata
            )
            stdout.print(f"auto policy, {decision.reason}")
            policy = decision.policy
        if policy == "d2":
            sel = _select_d2(s, keep_value, embeddings, neighbours, seed)
        else:
            sel = select(
                s,
                keep_value,
                policy=policy,
                labels=lab,
                balance_classes=balance_classes,
                cutoff=cutoff,
                strata=strata,
                seed=seed,
            )
        summary = summarize(s, sel, lab, classes_from=classes_from)
        if decision is not None:
            summary["auto"] = decision.to_dict()
        write_ids(out, sel.ids, meta={"summary": summary, "source": str(scores), "column": column})
        t = Table(title=f"kept {summary['kept']} of {summary['total']} by {column} ({policy})")
        t.add_column("")
        t.add_column("all", justify="right")
        t.add_column("kept", justify="right")
        t.add_row("score min", f"{summary['score_range_all'][0]:.4f}", f"{summary['score_range_kept'][0]:.4f}")
        t.add_row("score mean", f"{summary['score_mean_all']:.4f}", f"{summary['score_mean_kept']:.4f}")
        t.add_row("score max", f"{summary['score_range_all'][1]:.4f}", f"{summary['score_range_kept'][1]:.4f}")
        word = "class" if classes_from == "labels" else "cluster"
        for c, n_kept in summary.get("kept_per_class", {}).items():
            t.add_row(f"{word} {c}", str(summary["total_per_class"][c]), str(n_kept))
        stdout.print(t)
        if balance_classes:
            stdout.print(f"classes balanced over {classes_from}")
        stdout.print(f"wrote {out} and {out.with_suffix('.txt')}")

    @app.command(
        "combine",
        epilog="Example: selfprune combine --scores runs/fm/labelfree-pixels.parquet "
        "--scores runs/fm/labelfree-contrastive.parquet --score-column el2n --out runs/fm/combined.parquet",
    )
    def combine_cmd(
        scores: Annotated[list[Path], typer.Option(help="score Parquet (repeat; one file may give several columns)")],
        out: Annotated[Path, typer.Option(help="score Parquet to write: id, the combined column (and label)")],
        score_column: Annotated[
            list[str] | None, typer.Option(help="column to take from each file (repeat; default: the only one)")
        ] = None,
        name: Annotated[str, typer.Option(help="name of the combined column")] = "mean-rank",
    ) -> None:
        """Combine score columns into one: the mean of their normalised ranks (higher = harder)."""
        from selfprune._checks import align_ids
        from selfprune.cli import out as stdout
        from selfprune.io.tables import read_scores, write_scores
        from selfprune.scores import mean_rank

        parts, labels = [], None
        for path in scores:
            table = read_scores(path)
            columns = score_column or list(table)
            if not score_column and len(columns) != 1:
                raise InvalidInputError(f"combine: {path} has several columns {columns}; pass --score-column")
            missing = [c for c in columns if c not in table]
            if missing:
                raise InvalidInputError(f"combine: no column {missing[0]!r} in {path}; columns are {list(table)}")
            parts += [table[c] for c in columns]
            if labels is None and table.labels is not None:
                labels = (table.ids, table.labels)
        combined = mean_rank(parts, name=name)
        if labels is not None:  # carried from the first file that has them, aligned by id
            labels = labels[1][align_ids(labels[0], combined.ids, caller="combine", what="score file")]
        write_scores(out, combined.to_table(labels=labels))
        stdout.print(f"combined {len(parts)} columns ({', '.join(combined.meta['of'])}) of "
                     f"{len(combined)} examples into {name!r}")
        stdout.print(f"wrote {out}")

    def _resolve_cutoff(text: str, table, scores: Path) -> tuple[float, str]:
        from selfprune.select import auto_cutoff

        if text == "auto":
            if "aum_flagged" not in table:
                raise InvalidInputError(
                    f"select: --cutoff auto needs an aum_flagged column, which {scores} lacks; "
                    "write it with dynamics --aum-threshold"
                )
            choice = auto_cutoff(table["aum_flagged"])
            return choice.beta, choice.reason
        try:
            return float(text), ""
        except ValueError:
            raise InvalidInputError(f"select: --cutoff must be a fraction in [0, 1) or auto, got {text!r}") from None

    def _decide_auto(s, keep_value, data, trainer, n_seeds, seed, cutoff, balance_classes, strata):
        from selfprune.evaluate.auto import decide_policy
        from selfprune.io.sources import load_source

        if data is None:
            raise InvalidInputError("select: --policy auto needs --data (labelled examples for the pilot runs)")
        ds = load_source(data)
        if ds.labels is None:
            raise InvalidInputError(f"select: --policy auto needs labels; {data} has none")
        items = ds.items if isinstance(ds.items, np.ndarray) else ds.take(np.arange(len(ds)))
        return decide_policy(
            s,
            keep_value,
            x=items,
            y=ds.labels,
            x_ids=ds.ids,
            trainer=trainer,
            seeds=tuple(range(n_seeds)),
            seed=seed,
            cutoff=cutoff,
            balance_classes=balance_classes,
            strata=strata,
        )

    def _select_d2(s, keep_value, embeddings, neighbours, seed):
        from selfprune.d2 import d2_select
        from selfprune.io.store import load_embeddings

        if embeddings is None:
            raise InvalidInputError("select: --policy d2 needs --embeddings")
        x, ids, _, _ = load_embeddings(embeddings)
        return d2_select(s, x, keep_value, k=neighbours, ids=ids, seed=seed)

    @app.command(epilog="Example: selfprune demo --quick --out runs/demo")
    def demo(
        out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/demo"),
        quick: Annotated[bool, typer.Option(help="a small version that finishes in about 2 minutes")] = False,
        encoder: Annotated[
            str | None, typer.Option(help="encoder (default pixels)")
        ] = None,
        model: Annotated[
            str | None, typer.Option(help="fixed classifier (default small-cnn, 3 epochs; mlp with --quick)")
        ] = None,
        n_seeds: Annotated[int, typer.Option(help="training runs per subset (seeds 0..n-1)")] = 2,
        data: Annotated[
            str, typer.Option(help="labelled images or vectors: built-in name (fashion-mnist, digits) or a path")
        ] = "fashion-mnist",
        test_data: Annotated[
            str | None, typer.Option(help="test set for a path --data (default: hold out --test-share of it)")
        ] = None,
        test_share: Annotated[float, typer.Option(help="share of a path --data held out as test set")] = 0.2,
    ) -> None:
        """End to end on labelled data: label-free dynamics and prototypes vs random; table, plot, report."""
        from selfprune.cli import out as stdout
        from selfprune.demo import DemoConfig, run_demo

        cfg = DemoConfig.quick() if quick else DemoConfig()
        cfg = cfg.replace(encoder=encoder, trainer=model, n_seeds=n_seeds, data=data, test_data=test_data,
                          test_share=test_share)  # fmt: skip
        with progress_bar() as bar:
            task = bar.add_task("demo", total=None)

            def report(msg: str, done: int | None = None, total: int | None = None) -> None:
                bar.update(task, description=msg, completed=done or 0, total=total)

            result = run_demo(cfg, out, progress=report)
        stdout.print(result.table_rich())
        stdout.print(f"report: {result.report_path}")
        stdout.print(json.dumps(result.headline(), indent=None))

"""Training-dynamics commands: ``dynamics`` (proxy training + recorder scores) and
``memorization`` (Feldman-Zhang estimate from runs on random subsets)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from selfprune.commands._options import progress_bar
from selfprune.errors import InvalidInputError


def _load_labelled(data: str, split: str, limit: int | None, caller: str, *, need_labels: bool = True):
    from selfprune.io.sources import load_source

    ds = load_source(data, split=split)
    if ds.labels is None and need_labels:
        raise InvalidInputError(
            f"{caller}: {data} has no labels; pass --pseudo-labels (label-free) or use labelled data"
        )
    if ds.modality == "text":
        raise InvalidInputError(
            f"{caller}: {data} is text; use embeddings or images with a label column"
        )
    n = len(ds) if limit is None else min(limit, len(ds))
    if limit is not None and limit < 2:
        raise InvalidInputError(f"{caller}: --limit must be >= 2, got {limit}")
    x = ds.take(slice(0, n))
    return np.asarray(x), None if ds.labels is None else ds.labels[:n], ds.ids[:n], ds.name


def _summary(table, title: str) -> Table:
    from selfprune.report.summary import describe_table

    t = Table(title=title)
    for col in ("score", "mean", "min", "median", "max"):
        t.add_column(col, justify="right" if col != "score" else "left")
    for name, d in describe_table(table).items():
        t.add_row(name, *(f"{d[key]:.4g}" for key in ("mean", "min", "median", "max")))
    return t


def register(app: typer.Typer) -> None:
    @app.command(
        epilog="Example: selfprune dynamics --data fashion-mnist --model small-cnn --epochs 10 --n-seeds 3 "
        "--out runs/fm/dyn.parquet"
    )
    def dynamics(
        data: Annotated[
            str, typer.Option(help="data: built-in name (fashion-mnist, digits) or a path")
        ],
        out: Annotated[Path, typer.Option(help="score Parquet file to write")],
        pseudo_labels: Annotated[
            Path | None,
            typer.Option(help="train on these pseudo-labels (pseudo-labels command): label-free, no labels read"),
        ] = None,
        metrics: Annotated[
            str | None,
            typer.Option(help="comma-separated recorder metrics (default: all; label-free: el2n,aum,forgetting)"),
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                help="proxy network: linear, mlp, small-cnn (default small-cnn; label-free: small-cnn on "
                "images, mlp on vectors)"
            ),
        ] = None,
        epochs: Annotated[
            int | None, typer.Option(help="training epochs per seed (default 10; label-free 2)")
        ] = None,
        n_seeds: Annotated[
            int | None,
            typer.Option(help="number of independent runs, scores averaged (default 3; label-free 1)"),
        ] = None,
        batch_size: Annotated[int, typer.Option(help="mini-batch size")] = 128,
        lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
        seed: Annotated[int, typer.Option(help="master seed")] = 0,
        split: Annotated[str, typer.Option(help="train or test (built-ins)")] = "train",
        limit: Annotated[int | None, typer.Option(help="use only the first N examples")] = None,
        el2n_epoch: Annotated[
            int | None, typer.Option(help="0-based epoch for EL2N (default: last)")
        ] = None,
        grand: Annotated[
            str, typer.Option(help="GraNd: both, full (every parameter), last (last layer), none")
        ] = "both",
        grand_epoch: Annotated[
            int, typer.Option(help="epochs trained before GraNd (0 = at init)")
        ] = 1,
        aum_threshold: Annotated[
            bool, typer.Option(help="two extra threshold-sample runs: aum_flagged column")
        ] = False,
        record_dir: Annotated[
            Path | None, typer.Option(help="keep the memory-mapped recordings here")
        ] = None,
        plot: Annotated[Path | None, typer.Option(help="write the data map PNG here")] = None,
    ) -> None:
        """Train proxy networks and write EL2N, GraNd, forgetting, AUM and cartography scores.

        Label-free: --pseudo-labels runs/fm/pseudo.parquet (from selfprune pseudo-labels) trains on
        those instead of labels.
        """
        from selfprune.cli import out as stdout
        from selfprune.dynamics.scores import DYNAMICS_METRICS
        from selfprune.dynamics.train import LABELFREE_DEFAULTS, labelfree_dynamics, proxy_dynamics
        from selfprune.io.tables import read_pseudo_labels, write_scores

        label_free = pseudo_labels is not None
        x, y, ids, name = _load_labelled(data, split, limit, "dynamics", need_labels=not label_free)
        defaults = LABELFREE_DEFAULTS if label_free else {"model": "small-cnn", "epochs": 10, "n_seeds": 3}
        model = defaults["model"] if model is None else model
        epochs = defaults["epochs"] if epochs is None else epochs
        seeds = defaults["n_seeds"] if n_seeds is None else n_seeds
        chosen = (
            tuple(m.strip() for m in metrics.split(",") if m.strip())
            if metrics is not None
            else (LABELFREE_DEFAULTS["metrics"] if label_free else DYNAMICS_METRICS)
        )
        pseudo = read_pseudo_labels(pseudo_labels) if label_free else None
        with progress_bar() as bar:
            tasks: dict[str, int] = {}

            def progress(label: str, done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = bar.add_task(f"{label} epochs", total=total)
                bar.update(tasks[label], completed=done)

            if label_free:
                res = labelfree_dynamics(
                    x, pseudo, ids=ids, labels=y, model=model, epochs=epochs, n_seeds=seeds,
                    batch_size=batch_size, lr=lr, seed=seed, metrics=chosen,
                    aum_threshold_runs=aum_threshold, path=record_dir, progress=progress,
                )  # fmt: skip
            else:
                res = proxy_dynamics(
                    x, y, ids=ids, model=model, epochs=epochs, n_seeds=seeds, batch_size=batch_size,
                    lr=lr, metrics=chosen,
                    seed=seed, grand=grand, grand_epoch=grand_epoch, el2n_epoch=el2n_epoch,
                    aum_threshold_runs=aum_threshold, path=record_dir, progress=progress,
                )  # fmt: skip
        if label_free:
            heads = f" ({pseudo.heads} heads, one per restart; scores are mean ranks over them)"
            stdout.print(
                f"label-free: proxies trained on {pseudo.k} pseudo-labels from {pseudo_labels}"
                + (heads if pseudo.heads > 1 else "")
                + "; no label used"
                + (" (the data's labels travel in the label column only)" if y is not None else "")
            )
        write_scores(out, res.table)
        stdout.print(
            _summary(
                res.table, f"{name}: {len(ids):,} examples, {seeds} x {epochs} epochs of {model}"
            )
        )
        stdout.print(
            "training accuracy in the last epoch, per seed: " + ", ".join(f"{a:.3f}" for a in res.train_accuracy)
        )
        for t in res.threshold:
            stdout.print(
                f"AUM threshold {t.threshold:.3f} ({t.n_threshold_samples} threshold samples): "
                f"{int(t.flagged.sum())} flagged as likely mislabelled"
            )
        if plot is not None:
            from selfprune.dynamics.datamap import recorder_cartography
            from selfprune.dynamics.plot import data_map

            data_map(recorder_cartography(res.recorders), plot, title=f"{name} data map", seed=seed)
            stdout.print(f"wrote data map to {plot}")
        stdout.print(f"wrote {len(res.table)} scores for {len(ids):,} examples to {out}")

    @app.command(
        epilog="Example: selfprune memorization --data fashion-mnist --runs 20 --subset 0.7 --epochs 5 "
        "--out runs/fm/mem.parquet"
    )
    def memorization(
        data: Annotated[
            str, typer.Option(help="labelled data: built-in name (fashion-mnist, digits) or a path")
        ],
        out: Annotated[Path, typer.Option(help="score Parquet file to write")],
        runs: Annotated[int, typer.Option(help="training runs, each on a random subset")] = 20,
        subset: Annotated[
            float, typer.Option(help="fraction of examples in each run's training subset")
        ] = 0.7,
        model: Annotated[
            str, typer.Option(help="proxy network: linear, mlp, small-cnn")
        ] = "small-cnn",
        epochs: Annotated[int, typer.Option(help="epochs per run")] = 5,
        batch_size: Annotated[int, typer.Option(help="mini-batch size")] = 128,
        lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
        seed: Annotated[int, typer.Option(help="master seed")] = 0,
        split: Annotated[str, typer.Option(help="train or test (built-ins)")] = "train",
        limit: Annotated[int | None, typer.Option(help="use only the first N examples")] = None,
    ) -> None:
        """Feldman-Zhang memorization: P(correct | trained on it) - P(correct | held out)."""
        from selfprune.cli import out as stdout
        from selfprune.dynamics.train import proxy_memorization
        from selfprune.io.tables import write_scores

        x, y, ids, name = _load_labelled(data, split, limit, "memorization")
        with progress_bar() as bar:
            task = bar.add_task(f"memorization runs on {name}", total=runs)
            scores = proxy_memorization(
                x, y, ids=ids, model=model, runs=runs, subset=subset, epochs=epochs,
                batch_size=batch_size, lr=lr, seed=seed,
                progress=lambda _label, done, total: bar.update(task, completed=done),
            )  # fmt: skip
        write_scores(out, scores.to_table(labels=y))
        stdout.print(
            _summary(
                scores.to_table(),
                f"{name}: {len(ids):,} examples, {runs} runs on {subset:.0%} subsets",
            )
        )
        stdout.print(
            f"{scores.meta['undetermined']} examples were in every run or in none (score 0)"
        )
        stdout.print(f"wrote memorization scores to {out}")

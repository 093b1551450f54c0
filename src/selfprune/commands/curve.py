"""``selfprune curve``: scaling curves of pruning scores against random pruning, with fits and a plot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from selfprune.commands._options import parse_keeps, progress_bar, split_list
from selfprune.errors import InvalidInputError

TORCH_TRAINERS = ("mlp", "small-cnn")


def _arrays(dataset, caller: str):
    if dataset.modality == "text":
        raise InvalidInputError(
            f"{caller}: {dataset.name} is text; embed it first and pass the embeddings (.npz/.parquet)"
        )
    if dataset.labels is None:
        raise InvalidInputError(f"{caller}: {dataset.name} has no labels; a curve needs labelled data")
    x = (
        dataset.items
        if isinstance(dataset.items, np.ndarray) and dataset.reader is None
        else dataset.take(np.arange(len(dataset)))
    )
    return np.asarray(x), dataset.labels, dataset.ids


def _trainer_settings(trainer: str, epochs: int | None, steps: int | None, threads: int | None) -> dict:
    """The model's settings from the options that apply to it (torch models only take epochs etc.)."""
    if trainer in TORCH_TRAINERS:
        out: dict = {"steps": steps} if steps is not None else {"epochs": epochs if epochs is not None else 10}
        if threads is not None:
            out["threads"] = threads
        return out
    if threads is not None:
        raise InvalidInputError(f"curve: --threads applies to {TORCH_TRAINERS}, not to model {trainer!r}")
    if epochs is not None:
        raise InvalidInputError(f"curve: --epochs applies to {TORCH_TRAINERS}, not to model {trainer!r}")
    if steps is not None:
        raise InvalidInputError(f"curve: --steps applies to {TORCH_TRAINERS}, not to model {trainer!r}")
    return {}


def register(app: typer.Typer) -> None:
    @app.command(
        epilog="Example: selfprune curve --data fashion-mnist --scores runs/fm/scores.parquet --policies hard,easy "
        "--keep 0.1,0.3,0.5,1.0 --n-seeds 3 --model linear --out runs/fm/curve"
    )
    def curve(
        data: Annotated[
            str,
            typer.Option(help="built-in (fashion-mnist, digits) or a labelled .npz/.parquet/folder"),
        ],
        out: Annotated[
            Path,
            typer.Option(help="folder for curve.parquet, curve.json, curve.png, fit.json, report.html, cache/"),
        ],
        scores: Annotated[Path | None, typer.Option(help="score Parquet; without it only random is run")] = None,
        test_data: Annotated[
            str | None, typer.Option(help="held-out labelled set (built-ins use their test split)")
        ] = None,
        metrics: Annotated[str | None, typer.Option(help="comma-separated score columns (default: all)")] = None,
        policies: Annotated[str, typer.Option(help="comma-separated: hard, easy, stratified, auto")] = "hard,easy",
        keep: Annotated[
            str, typer.Option(help="comma-separated fractions (or counts) to keep")
        ] = "0.1,0.2,0.3,0.5,0.7,1.0",
        n_seeds: Annotated[int, typer.Option(help="training runs per point (seeds 0..n-1)")] = 3,
        model: Annotated[str, typer.Option(help="network trained: linear, mlp or small-cnn")] = "linear",
        epochs: Annotated[int | None, typer.Option(help="epochs per run (mlp, small-cnn; default 10)")] = None,
        steps: Annotated[int | None, typer.Option(help="equal optimisation steps per run instead of epochs")] = None,
        cutoff: Annotated[float, typer.Option(help="drop the hardest fraction first (label noise)")] = 0.0,
        balance_classes: Annotated[bool, typer.Option(help="give every class its share of the budget")] = False,
        strata: Annotated[int, typer.Option(help="strata for the stratified policy")] = 50,
        pilot_model: Annotated[str, typer.Option(help="cheap network for the auto policy's pilots")] = "linear",
        pilot_n_seeds: Annotated[int, typer.Option(help="pilot runs per policy for auto (seeds 0..n-1)")] = 2,
        threads: Annotated[int | None, typer.Option(help="torch threads per training run (mlp, small-cnn)")] = None,
        bootstrap: Annotated[int, typer.Option(help="bootstrap resamples over seeds for the fit's uncertainty")] = 200,
    ) -> None:
        """Train a fixed recipe on pruned subsets and on random subsets of equal size; fit power laws."""
        started = time.time()
        from selfprune.cli import out as stdout
        from selfprune.evaluate.curve import scaling_curve, write_curve
        from selfprune.evaluate.curve_summary import curve_summary
        from selfprune.evaluate.powerlaw import analyze_curve
        from selfprune.io.atomic import write_json_atomic
        from selfprune.io.sources import BUILTINS, load_source
        from selfprune.io.tables import read_scores
        from selfprune.report.curve_plot import curve_figure
        from selfprune.report.figures import save_png
        from selfprune.report.html import provenance, write_report
        from selfprune.report.pages import curve_page

        train = load_source(data)
        if test_data is None:
            if data not in BUILTINS:
                raise InvalidInputError(
                    "curve: --test-data is required unless --data is a built-in (it brings a test split)"
                )
            test = load_source(data, split="test")
        else:
            test = load_source(test_data)
        x, y, ids = _arrays(train, "curve --data")
        xt, yt, _ = _arrays(test, "curve --test-data")
        table = read_scores(scores) if scores is not None else None
        metric_list = split_list(metrics, caller="curve", option="--metrics") if metrics is not None else None
        trainer = model
        settings = _trainer_settings(trainer, epochs, steps, threads)
        if pilot_n_seeds < 1:
            raise InvalidInputError(f"curve: --pilot-n-seeds must be >= 1, got {pilot_n_seeds}")
        pols = split_list(policies, caller="curve", option="--policies")
        keeps = parse_keeps(keep, caller="curve")
        with progress_bar() as bar:
            task = bar.add_task(f"curve on {train.name} ({trainer})", total=None)

            def progress(done: int, total: int, row: dict) -> None:
                bar.update(
                    task,
                    completed=done,
                    total=total,
                    description=f"{row['metric']}/{row['policy']} keep {row['keep']:g} seed {row['seed']}",
                )

            result = scaling_curve(
                table,
                x_train=x,
                y_train=y,
                x_test=xt,
                y_test=yt,
                train_ids=ids,
                metrics=metric_list,
                policies=pols,
                keep=keeps,
                n_seeds=n_seeds,
                trainer=trainer,
                trainer_settings=settings,
                cutoff=cutoff,
                balance_classes=balance_classes,
                strata=strata,
                pilot_trainer=pilot_model,
                pilot_seeds=tuple(range(pilot_n_seeds)),
                cache_dir=out / "cache",
                progress=progress,
            )
        analysis = analyze_curve(result, bootstrap=bootstrap)
        write_curve(out / "curve.parquet", result)
        write_json_atomic(
            out / "curve.json",
            {
                **result.to_dict(),
                "data": data,
                "test_data": test_data or f"{data} (test split)",
                "scores": None if scores is None else str(scores),
            },
        )
        write_json_atomic(out / "fit.json", analysis.to_dict())
        figure = curve_figure(result, fits=analysis.fits, title=f"{train.name}: test error vs kept examples")
        save_png(figure, out / "curve.png")
        summary = curve_summary(result, analysis)
        page = curve_page(
            title=f"selfprune curve: {train.name} ({trainer})", summary=summary, statements=analysis.statements,
            decisions=result.meta["decisions"], figure=figure, table=table, metrics=metric_list, x=x, y=y, ids=ids,
            modality=train.modality, keep=min(keeps),
            provenance=provenance(inputs={"--data": data, "--test-data": test_data, "--scores": scores},
                                  seed=f"training seeds 0..{n_seeds - 1}",
                                  started=started),
        )  # fmt: skip
        write_report(page, out)

        t = Table(title=f"{train.name}: test accuracy (%) over {n_seeds} seed(s), {trainer} {settings or ''}".strip())
        for col in ("metric", "policy", "keep", "n", "mean", "± std", "min–max", "vs random"):
            t.add_column(col, justify="left" if col in ("metric", "policy") else "right")
        for row in summary:
            pol = row["policy"] if row["policy"] != "auto" else f"auto→{','.join(row['chosen'])}"
            vs = "" if row["vs_random"] is None else f"{row['vs_random']:+.2f} ({row['verdict']})"
            t.add_row(
                row["metric"],
                pol,
                f"{row['keep']:g}",
                str(row["n_train"]),
                f"{row['mean']:.2f}",
                f"{row['std']:.2f}",
                f"{row['min']:.2f}–{row['max']:.2f}",
                vs,
            )
        stdout.print(t)
        for s in analysis.statements.values():
            stdout.print(s, highlight=False, soft_wrap=True)
        for d in result.meta["decisions"]:
            stdout.print(
                f"auto for {d['metric']} at keep {d['keep']:g}: {d['reason']}",
                highlight=False,
                soft_wrap=True,
            )
        stdout.print(
            f"trained {result.trained} run(s), reused {result.reused} from the cache; wrote "
            f"{out / 'curve.parquet'}, curve.json, curve.png, fit.json, report.html"
        )

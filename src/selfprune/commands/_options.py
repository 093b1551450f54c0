"""What every command parses the same way: ``--keep``, comma lists, and the progress display.

The option vocabulary itself (which name means what, which commands take it) is in docs/cli.md;
renamed options are refused by :data:`RENAMED`, checked once in :func:`selfprune.cli.main`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from selfprune.errors import InvalidInputError

LABELS_HELP = "auto (the input's own), none, a .npy (one per row) or a Parquet file with id and label columns"

# (command, old option) -> (new option, what it is now). Old spellings are refused with this hint,
# never reinterpreted.
RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("curve", "--seeds"): ("--n-seeds", "a count"),
    ("dynamics", "--seeds"): ("--n-seeds", "a count"),
    ("demo", "--seeds"): ("--n-seeds", "a count"),
    ("select", "--pilot-seeds"): ("--pilot-n-seeds", "a count"),
    ("curve", "--pilot-seeds"): ("--pilot-n-seeds", "a count"),
    ("density", "--k"): ("--neighbours", "the kNN degree; --k means clusters"),
    ("score", "--column"): ("--vector-column", "the embedding column of a Parquet file"),
    ("dedup", "--column"): ("--vector-column", "the embedding column of a Parquet file"),
    ("density", "--column"): ("--vector-column", "the embedding column of a Parquet file"),
    ("pseudo-labels", "--column"): ("--vector-column", "the embedding column of a Parquet file"),
    ("select", "--column"): ("--score-column", "the score column"),
    ("audit", "--column"): ("--score-column", "the score column"),
    ("audit", "--source"): ("--data", "the raw data"),
    ("curve", "--trainer"): ("--model", "the network trained"),
    ("demo", "--trainer"): ("--model", "the network trained"),
    ("curve", "--pilot-trainer"): ("--pilot-model", "the pilots' network"),
    ("select", "--pilot-trainer"): ("--pilot-model", "the pilots' network"),
}


def renamed_option(argv: list[str]) -> str | None:
    """The refusal message for the first renamed option in ``argv``, or None when there is none.

    ``argv`` is the command line after the program name: the command, then its options.
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is None:
        return None
    rest = argv[argv.index(command) + 1 :]
    for i, arg in enumerate(rest):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        hit = RENAMED.get((command, name))
        if hit is None:
            continue
        new, what = hit
        if not eq:
            value = rest[i + 1] if i + 1 < len(rest) and not rest[i + 1].startswith("--") else ""
        use = f"{new} {value}".strip()
        return f"{command}: {name} is now {new} ({what}); use {use}"
    return None


def parse_keep(text: str, *, caller: str, option: str = "--keep") -> float | int:
    """One budget: a fraction in (0, 1] or an integer count > 1 (``"0.3"`` -> 0.3, ``"500"`` -> 500)."""
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        value = float("nan")
    if value > 1 and value.is_integer():
        return int(value)
    if 0 < value <= 1:
        return value
    raise InvalidInputError(
        f"{caller}: {option} takes a fraction in (0, 1] or an integer count > 1, got {t!r}"
    )


def parse_keeps(text: str, *, caller: str, option: str = "--keep") -> list[float | int]:
    """Several budgets, comma-separated, each as :func:`parse_keep`."""
    return [parse_keep(t, caller=caller, option=option) for t in split_list(text, caller=caller, option=option)]


def split_list(text: str, *, caller: str, option: str) -> list[str]:
    """The non-empty items of a comma-separated option value (at least one)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InvalidInputError(f"{caller}: {option} is empty")
    return items


def parse_ints(text: str, *, caller: str, option: str) -> list[int]:
    """A comma-separated list of integers (``"0,1,2"``)."""
    try:
        return [int(t) for t in split_list(text, caller=caller, option=option)]
    except ValueError:
        raise InvalidInputError(f"{caller}: {option} takes comma-separated integers, got {text!r}") from None


def progress_bar(*, transient: bool = False):
    """A rich progress bar on stderr: description, bar, done/total, time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from selfprune.cli import console

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def stats_row(d: dict) -> tuple[str, ...]:
    """min, median, mean, max of :func:`selfprune.report.summary.describe`, formatted for a table."""
    return tuple(f"{d[key]:.4g}" for key in ("min", "median", "mean", "max"))


EngineOption = Annotated[
    str, typer.Option(help="local (this process, streamed) or ray (Ray Data; see --address)")
]
AddressOption = Annotated[
    str | None, typer.Option(help="Ray cluster to join (host:port, or auto); default: start a local one")
]
WorkersOption = Annotated[int | None, typer.Option(help="Ray workers of a local cluster (default: all cores)")]


@contextlib.contextmanager
def engine_for(out: Path, engine: str, address: str | None = None, workers: int | None = None) -> Iterator[None]:
    """Run the block's metrics on ``engine``, checkpointing chunk results beside ``out``.

    Finished chunks go to ``.<out name>.parts/`` next to ``out``; a run killed at any point and rerun
    with the same command reuses them (the result is identical). The folder is removed once the
    block ends without an error, i.e. once the output is written.
    """
    from selfprune.engine import make_engine, use_engine

    if engine != "ray" and (address is not None or workers is not None):
        raise InvalidInputError("--address and --workers need --engine ray")
    options = {"address": address, "workers": workers} if engine == "ray" else {}
    eng = make_engine(engine, workdir=Path(out).parent / f".{Path(out).name}.parts", **options)
    try:
        with use_engine(eng):
            yield
        eng.clear()
    finally:
        eng.close()

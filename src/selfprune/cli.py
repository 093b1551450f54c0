"""The ``selfprune`` command line: parse, call io and the library, print with rich. No math here.

Every :class:`~selfprune.errors.SelfpruneError` becomes one line on stderr and exit code 2, and so
does an option under its old name (``selfprune.commands._options.RENAMED``: refused with the new
name, never reinterpreted). stderr carries selfprune's own messages only: other libraries' Python
warnings are dropped, selfprune's own are printed as one ``warning:`` line each.
Command groups from other areas register themselves through ``register(app)`` functions listed
in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from typer._click.exceptions import ClickException

from selfprune.errors import InvalidInputError, SelfpruneError
from selfprune.io.atomic import protect_inputs, refuse_overwrite

app = typer.Typer(
    name="selfprune",
    help="Prune training data by the model's own signal, and prove it worked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"selfprune {version('selfprune')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_version
    ),
) -> None:
    """Prune training data by the model's own signal, and prove it worked.

    Options mean the same in every command: see docs/cli.md.
    """

# modules with a ``register(app)`` function adding their commands
_COMMAND_MODULES: list[str] = [
    "selfprune.commands.core",
    "selfprune.commands.dynamics",
    "selfprune.commands.labelfree",
    "selfprune.commands.redundancy",
    "selfprune.commands.curve",
    "selfprune.commands.audit",
    "selfprune.commands.tokens",
    "selfprune.commands.export",
]


_registered: list[str] = []

# Options that name what a command writes. Every other option whose value names an existing file
# or folder is an input: no output may be an input or lie inside one, checked before the command
# runs and again at every atomic write while it runs (an output folder's files, twin files).
OUTPUT_OPTIONS = ("out", "plot", "record_dir")
# commands whose --out is a folder; every other command's --out is one file
FOLDER_OUTPUTS = frozenset({"embed", "demo", "dedup", "curve", "audit", "tokens", "tokens-distill", "prune"})
# commands whose --out is a file or a folder by another option (export --format); the library checks
EITHER_OUTPUTS = frozenset({"export"})


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def _check_outputs(command: str, params: dict) -> list[Path]:
    """Refuse outputs that would replace an input or are of the wrong kind; return the inputs."""
    inputs: list[Path] = []
    for key, value in params.items():
        if key in OUTPUT_OPTIONS:
            continue
        for v in value if isinstance(value, list | tuple) else [value]:
            if isinstance(v, str | Path) and v and Path(v).exists():
                inputs.append(Path(v))
    for key in OUTPUT_OPTIONS:
        target = params.get(key)
        if target is None:
            continue
        flag = "--" + key.replace("_", "-")
        refuse_overwrite(target, *inputs, caller=command, flag=flag)
        if key == "out" and command in EITHER_OUTPUTS:
            continue
        folder = key == "record_dir" or (key == "out" and command in FOLDER_OUTPUTS)
        if folder and Path(target).is_file():
            raise InvalidInputError(f"{command}: {flag} {target} is a file; name a folder to write into")
        if not folder and Path(target).is_dir():
            raise InvalidInputError(f"{command}: {flag} {target} is a folder; name a file to write")
    return inputs


def _guarded(command: str, callback):
    """``callback`` with its outputs checked against its inputs, and the inputs protected."""

    @functools.wraps(callback)
    def run(**params):
        with protect_inputs(_check_outputs(command, params)):
            return callback(**params)

    return run


def _register_all() -> None:
    """Add every command group to ``app`` once (idempotent: ``main`` may be called many times)."""
    for name in _COMMAND_MODULES:
        if name not in _registered:
            before = len(app.registered_commands)
            importlib.import_module(name).register(app)
            for info in app.registered_commands[before:]:
                info.callback = _guarded(_command_name(info), info.callback)
            _registered.append(name)


_PACKAGE_DIR = str(Path(__file__).resolve().parent) + "/"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """selfprune's own warnings as one line on stderr; every other library's are dropped."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``selfprune`` script; returns the exit code."""
    from selfprune.commands._options import renamed_option

    args = sys.argv[1:] if argv is None else list(argv)
    hint = renamed_option(args)
    if hint is not None:
        console.print(f"[bold red]error:[/] {hint}", highlight=False, soft_wrap=True)
        return 2
    _register_all()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        return _run(args)


def _run(argv: list[str]) -> int:
    try:
        code = app(args=argv, standalone_mode=False)
    except SelfpruneError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console.print("aborted")
        return 130
    except ClickException as exc:  # usage errors: unknown option, missing value
        exc.show()
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``selfprune`` command line: parse, call io and the library, print with rich. No math here.

Every :class:`~selfprune.errors.SelfpruneError` becomes one line on stderr and exit code 2.
Command groups from other areas register themselves through ``register(app)`` functions listed
in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from typer._click.exceptions import ClickException

from selfprune.errors import SelfpruneError

app = typer.Typer(
    name="selfprune",
    help="Prune training data by the model's own signal, and prove it worked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

# modules with a ``register(app)`` function adding their commands
_COMMAND_MODULES: list[str] = [
    "selfprune.commands.core",
    "selfprune.commands.dynamics",
    "selfprune.commands.labelfree",
    "selfprune.commands.redundancy",
    "selfprune.commands.curve",
    "selfprune.commands.audit",
    "selfprune.commands.tokens",
]


_registered: list[str] = []


def _register_all() -> None:
    """Add every command group to ``app`` once (idempotent: ``main`` may be called many times)."""
    for name in _COMMAND_MODULES:
        if name not in _registered:
            importlib.import_module(name).register(app)
            _registered.append(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``selfprune`` script; returns the exit code."""
    _register_all()
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

"""The one seed convention of the library, checked in one place.

- ``seed: int`` is the master seed of a call: it drives every random choice made once;
- ``n_seeds: int`` counts independent runs, which use seeds ``0 .. n_seeds - 1``;
- ``seeds: Sequence[int]`` lists the runs' seeds explicitly.

A function that repeats its work over runs takes ``n_seeds`` and ``seeds`` (at most one of them);
an ``int`` given to ``seeds`` is refused, never read as a count or as one seed.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from selfprune.errors import InvalidInputError


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def seed_list(
    seeds: Sequence[int] | None,
    n_seeds: int | None,
    *,
    caller: str,
    default: int | None = None,
    least: int = 1,
    name: str = "seeds",
) -> tuple[int, ...]:
    """The runs' seeds from ``seeds`` (a list) or ``n_seeds`` (a count), else ``range(default)``.

    Raises a one-line InvalidInputError naming ``caller`` for an int given as ``seeds``, both given,
    negative, repeated or non-integer seeds, and fewer than ``least`` runs. ``name`` is how the list
    parameter is spelled (``pilot_seeds`` has ``pilot_n_seeds`` as its count).
    """
    count = name.replace("seeds", "n_seeds", 1) if name.endswith("seeds") else f"n_{name}"
    if seeds is not None and _is_int(seeds):
        raise InvalidInputError(
            f"{caller}: {name} must be a list of seeds, got the int {seeds!r}; "
            f"for {seeds} runs pass {count}={seeds}, for one run with seed {seeds} pass {name}=[{seeds}]"
        )
    if seeds is not None and n_seeds is not None:
        raise InvalidInputError(f"{caller}: give {name}= (a list) or {count}= (a count), not both")
    if seeds is None:
        if n_seeds is None:
            if default is None:
                raise InvalidInputError(f"{caller}: give {name}= (a list) or {count}= (a count)")
            n_seeds = default
        if not _is_int(n_seeds) or n_seeds < least:
            raise InvalidInputError(f"{caller}: {count} must be an int >= {least}, got {n_seeds!r}")
        return tuple(range(int(n_seeds)))
    if isinstance(seeds, str | bytes):
        raise InvalidInputError(f"{caller}: {name} must be a list of non-negative ints, got {seeds!r}")
    try:
        out = tuple(seeds)
    except TypeError:
        raise InvalidInputError(f"{caller}: {name} must be a list of non-negative ints, got {seeds!r}") from None
    if any(not _is_int(s) or s < 0 for s in out):
        raise InvalidInputError(f"{caller}: {name} must be non-negative ints, got {list(out)!r}")
    if len(set(out)) != len(out):
        raise InvalidInputError(f"{caller}: {name} repeat, got {list(out)!r}")
    if len(out) < least:
        raise InvalidInputError(f"{caller}: {name} must name at least {least} seed(s), got {list(out)!r}")
    return tuple(int(s) for s in out)


def refuse_seeds(seeds: object, *, caller: str, hint: str) -> None:
    """For functions whose runs are counted by ``n_seeds`` only: any ``seeds=`` is refused."""
    if seeds is not None:
        raise InvalidInputError(f"{caller}: seeds= is not taken, got {seeds!r}; {hint}")

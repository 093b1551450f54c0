"""The one exception tree of selfprune.

::

    SelfpruneError                 base of everything selfprune raises on purpose
    ├── InvalidInputError          bad arrays, ids, labels, fractions, parameters (also a ValueError)
    ├── DataSourceError            a file or folder that cannot be read: missing, corrupt, wrong format
    ├── StoreError                 an embedding store whose manifest or chunks do not fit together
    └── MissingExtraError          an optional dependency is not installed (also an ImportError)

The CLI turns any ``SelfpruneError`` into a one-line message and exit code 2.
"""

from __future__ import annotations


class SelfpruneError(Exception):
    """Base class for every error selfprune raises on purpose."""


class InvalidInputError(SelfpruneError, ValueError):
    """An argument is outside what the function accepts (shape, range, NaN, duplicates...)."""


class DataSourceError(SelfpruneError):
    """A file or folder could not be read as the data it claims to be."""


class StoreError(SelfpruneError):
    """An embedding store is inconsistent, or does not match the run that tries to resume it."""


class MissingExtraError(SelfpruneError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming ``selfprune[extra]``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is required for this feature: pip install 'selfprune[{extra}]'"
        ) from exc

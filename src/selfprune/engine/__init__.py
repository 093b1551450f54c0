"""How chunked work runs: the engine seam (:mod:`selfprune.engine.base`).

``use_engine("ray", address=...)`` (or ``engine=`` on a metric) picks the engine; the local one
streams chunks in this process, the Ray one (``selfprune.engine.ray``, the ``ray`` extra) runs the
same chunk functions as Ray Data ``map_batches``. Importing this package never imports Ray.
"""

from selfprune.engine.base import (
    ENGINES,
    ArraySource,
    ChunkError,
    Engine,
    GroupedSource,
    LocalEngine,
    StoreSource,
    as_source,
    get_engine,
    make_engine,
    sample_rows,
    use_engine,
)

__all__ = [
    "ENGINES",
    "ArraySource",
    "ChunkError",
    "Engine",
    "GroupedSource",
    "LocalEngine",
    "StoreSource",
    "as_source",
    "get_engine",
    "make_engine",
    "sample_rows",
    "use_engine",
]

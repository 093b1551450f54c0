"""Module-level chunk functions for the engine tests (Ray workers import them by name).

The test modules put this folder on ``sys.path`` (and on the workers' ``PYTHONPATH``), so a worker
resolves ``engine_chunkfns:<name>`` exactly as the driver does.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from selfprune.errors import InvalidInputError


def toy_data(n: int = 230, d: int = 6, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


def row_stats(chunk, lo, state):
    """Per-row values (a projection on the state's direction, the row position) and a per-chunk sum."""
    proj = chunk.astype(np.float64) @ state["direction"]
    return {"proj": proj, "row": np.arange(lo, lo + len(chunk)), "total": chunk.sum(0, dtype=np.float64)[None]}


def fails_at_row(chunk, lo, state):
    """Raises a plain ValueError on the chunk holding row ``state['row']``."""
    if lo <= int(state["row"]) < lo + len(chunk):
        raise ValueError(f"planted failure near row {int(state['row'])}")
    return row_stats(chunk, lo, state)


def refuses_at_row(chunk, lo, state):
    """Raises a selfprune InvalidInputError on the chunk holding row ``state['row']``."""
    if lo <= int(state["row"]) < lo + len(chunk):
        raise InvalidInputError("planted refusal")
    return row_stats(chunk, lo, state)


def kills_worker_once(chunk, lo, state):
    """SIGKILLs its own worker process the first time it sees row ``state['row']`` (recorded in a marker file)."""
    marker = Path(str(state["marker"]))
    if lo <= int(state["row"]) < lo + len(chunk) and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return row_stats(chunk, lo, state)


def kills_worker_always(chunk, lo, state):
    """SIGKILLs its worker every time it sees row ``state['row']``, counting the deaths in a folder."""
    if lo <= int(state["row"]) < lo + len(chunk):
        deaths = Path(str(state["deaths"]))
        deaths.mkdir(exist_ok=True)
        (deaths / str(os.getpid())).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return row_stats(chunk, lo, state)


def slow_while_flagged(chunk, lo, state):
    """``row_stats``, taking a while per chunk while the file ``state['flag']`` exists."""
    if Path(str(state["flag"])).exists():
        time.sleep(0.4)
    return row_stats(chunk, lo, state)


def node_of(chunk, lo, state):
    """``row_stats``, plus the id of the Ray node that ran the chunk (a per-chunk value).

    Each chunk records its node in the folder ``state['nodes']`` and waits (up to a minute) until
    ``state['want']`` nodes have recorded one, so that an actor that starts first cannot run every
    chunk before the other node's actor is up."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    seen = Path(str(state["nodes"]))
    seen.mkdir(exist_ok=True)
    (seen / node).touch()
    deadline = time.monotonic() + 60
    while len(list(seen.iterdir())) < int(state["want"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {**row_stats(chunk, lo, state), "node": np.array([node])}

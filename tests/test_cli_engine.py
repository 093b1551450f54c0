"""The engine options on the CLI: bad settings get one line and exit 2; a scoring run killed with
SIGKILL midway and rerun reuses its finished chunks and writes what an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from selfprune.cli import main
from selfprune.io.store import EmbeddingStore


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A float16 store of many small chunks (so a run has many parts to checkpoint)."""
    path = tmp_path_factory.mktemp("engine") / "emb"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60_000, 16)).astype(np.float32)
    EmbeddingStore.from_array(path, x, chunk_rows=100, dtype="float16")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark"], "engine must be one of ('local', 'ray'), got 'spark'"),
        (["--address", "10.0.0.1:6379"], "--address and --workers need --engine ray"),
        (["--workers", "3"], "--address and --workers need --engine ray"),
    ],
)
def test_bad_engine_settings_get_one_line(store, tmp_path, capsys, args, message):
    out = tmp_path / "s.parquet"
    code = main(["score", "--embeddings", str(store), "--k", "5", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def _cli(command: str, *args: str) -> list[str]:
    code = "import sys; from selfprune.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, command, *args]


def _score_cmd(store: Path, out: Path) -> list[str]:
    return _cli("score", "--embeddings", str(store), "--metric", "prototypes", "--k", "20", "--seeds", "0,1,2",
                "--out", str(out))  # fmt: skip


def _dedup_cmd(store: Path, out: Path) -> list[str]:
    return _cli("dedup", "--embeddings", str(store), "--eps", "0.3", "--k", "30", "--out", str(out))


def _kill_after_parts(cmd: list[str], parts: Path, at_least: int = 50) -> int:
    """Start ``cmd``, SIGKILL it once ``at_least`` chunk parts exist; the parts it left."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("task-*/part-*.npz"))) < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return len(list(parts.glob("task-*/part-*.npz")))


def _same_table(a_path: Path, b_path: Path) -> None:
    a, b = pq.read_table(a_path), pq.read_table(b_path)
    assert a.column_names == b.column_names and len(a) == len(b), a_path.name
    for col in a.column_names:
        assert a.column(col).to_pylist() == b.column(col).to_pylist(), (a_path.name, col)


def test_score_killed_midway_resumes_to_the_uninterrupted_result(store, tmp_path):
    whole = tmp_path / "whole.parquet"
    assert subprocess.run(_score_cmd(store, whole), capture_output=True, check=False).returncode == 0
    assert not (tmp_path / ".whole.parquet.parts").exists()  # removed once the output is written

    out = tmp_path / "killed.parquet"
    parts = tmp_path / ".killed.parquet.parts"
    assert 50 <= _kill_after_parts(_score_cmd(store, out), parts) < 3 * 600
    assert not out.exists()
    assert subprocess.run(_score_cmd(store, out), capture_output=True, check=False).returncode == 0
    _same_table(whole, out)
    assert not parts.exists()  # reuse itself is checked part by part in tests/metrics/test_streaming.py


def test_dedup_killed_midway_resumes_to_the_uninterrupted_result(store, tmp_path):
    whole = tmp_path / "whole"
    assert subprocess.run(_dedup_cmd(store, whole), capture_output=True, check=False).returncode == 0
    out = tmp_path / "killed"
    parts = tmp_path / ".killed.parts"
    _kill_after_parts(_dedup_cmd(store, out), parts)
    assert not (out / "kept.parquet").exists()
    assert subprocess.run(_dedup_cmd(store, out), capture_output=True, check=False).returncode == 0
    for name in ("kept.parquet", "removed.parquet"):
        _same_table(whole / name, out / name)
    assert len(pq.read_table(whole / "removed.parquet")) > 0  # the run had duplicates to find
    assert not parts.exists()

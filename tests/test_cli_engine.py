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


def _score_cmd(store: Path, out: Path) -> list[str]:
    code = "import sys; from selfprune.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "score", "--embeddings", str(store), "--metric", "prototypes", "--k", "20",
            "--seeds", "0,1,2", "--out", str(out)]  # fmt: skip


def test_score_killed_midway_resumes_to_the_uninterrupted_result(store, tmp_path):
    whole = tmp_path / "whole.parquet"
    assert subprocess.run(_score_cmd(store, whole), capture_output=True, check=False).returncode == 0
    assert not (tmp_path / ".whole.parquet.parts").exists()  # removed once the output is written

    out = tmp_path / "killed.parquet"
    parts = tmp_path / ".killed.parquet.parts"
    proc = subprocess.Popen(_score_cmd(store, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("task-*/part-*.npz"))) < 50 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not out.exists()
    assert 50 <= len(list(parts.glob("task-*/part-*.npz"))) < 3 * 600

    assert subprocess.run(_score_cmd(store, out), capture_output=True, check=False).returncode == 0
    a, b = pq.read_table(whole), pq.read_table(out)
    assert a.column_names == b.column_names
    for name in a.column_names:
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
    assert not parts.exists()  # reuse itself is checked part by part in tests/metrics/test_streaming.py


def _dedup_cmd(store: Path, out: Path) -> list[str]:
    code = "import sys; from selfprune.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "dedup", "--embeddings", str(store), "--eps", "0.3", "--k", "30",
            "--out", str(out)]  # fmt: skip


def test_dedup_killed_midway_resumes_to_the_uninterrupted_result(store, tmp_path):
    whole = tmp_path / "whole"
    assert subprocess.run(_dedup_cmd(store, whole), capture_output=True, check=False).returncode == 0
    out = tmp_path / "killed"
    parts = tmp_path / ".killed.parts"
    proc = subprocess.Popen(_dedup_cmd(store, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("task-*/part-*.npz"))) < 50 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "kept.parquet").exists()
    assert subprocess.run(_dedup_cmd(store, out), capture_output=True, check=False).returncode == 0
    for name in ("kept.parquet", "removed.parquet"):
        a, b = pq.read_table(whole / name), pq.read_table(out / name)
        assert a.column_names == b.column_names and len(a) == len(b), name
        for col in a.column_names:
            assert a.column(col).to_pylist() == b.column(col).to_pylist(), (name, col)
    assert len(pq.read_table(whole / "removed.parquet")) > 0  # the run had duplicates to find
    assert not parts.exists()

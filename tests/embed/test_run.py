import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from selfprune import InvalidInputError, StoreError
from selfprune.embed import get_encoder
from selfprune.embed.run import embed
from selfprune.io.store import EmbeddingStore


class Crash(RuntimeError):
    pass


class CrashingPCA:
    """Wraps the pixels encoder and raises after ``after`` encode calls (a simulated kill)."""

    def __init__(self, after):
        self.inner, self.after, self.calls = get_encoder("pixels", dim=8), after, 0
        self.name, self.modality = self.inner.name, self.inner.modality

    def params(self):
        return self.inner.params()

    def fit(self, sample, *, seed=0):
        self.inner.fit(sample, seed=seed)
        return self

    def encode(self, batch):
        self.calls += 1
        if self.calls > self.after:
            raise Crash("killed")
        return self.inner.encode(batch)

    def save_state(self, folder):
        self.inner.save_state(folder)

    def load_state(self, folder):
        self.inner.load_state(folder)
        return self


def test_resume_after_crash_is_identical(tmp_path, digits):
    full = embed(digits, get_encoder("pixels", dim=8), tmp_path / "full", chunk_rows=100, batch_size=50)
    with pytest.raises(Crash):
        embed(digits, CrashingPCA(after=6), tmp_path / "part", chunk_rows=100, batch_size=50)
    part = EmbeddingStore(tmp_path / "part")
    assert not part.complete and 0 < len(part.manifest["chunks_done"]) < part.n_chunks
    resumed = embed(digits, CrashingPCA(after=10**9), tmp_path / "part", chunk_rows=100, batch_size=50)
    np.testing.assert_array_equal(resumed.to_array(), full.to_array())
    np.testing.assert_array_equal(resumed.ids, digits.ids)
    np.testing.assert_array_equal(resumed.labels, digits.labels)


def test_same_seed_same_store_and_mismatch_refused(tmp_path, digits):
    a = embed(digits, get_encoder("pixels", dim=8), tmp_path / "a", seed=3)
    b = embed(digits, get_encoder("pixels", dim=8), tmp_path / "b", seed=3)
    np.testing.assert_array_equal(a.to_array(), b.to_array())
    with pytest.raises(StoreError, match="different embedding run"):
        embed(digits, get_encoder("pixels", dim=9), tmp_path / "a", seed=3)


def test_modality_mismatch(tmp_path):
    from selfprune.io.sources import Dataset

    texts = Dataset(name="t", ids=np.arange(2), items=["a", "b"], modality="text")
    with pytest.raises(InvalidInputError, match="takes image data"):
        embed(texts, get_encoder("pixels"), tmp_path / "x")


SLOW_EMBED = textwrap.dedent(
    """
    import sys, time
    from selfprune.embed import get_encoder
    from selfprune.embed.run import embed
    from selfprune.io.sources import load_source

    class Slow:
        def __init__(self):
            self.inner = get_encoder("pixels", dim=8)
            self.name, self.modality = "pixels", "image"
        def params(self): return self.inner.params()
        def fit(self, s, *, seed=0): self.inner.fit(s, seed=seed); return self
        def encode(self, b):
            time.sleep(float(sys.argv[2]))
            return self.inner.encode(b)
        def save_state(self, f): self.inner.save_state(f)
        def load_state(self, f): self.inner.load_state(f); return self

    embed(load_source("digits"), Slow(), sys.argv[1], chunk_rows=100, batch_size=100)
    """
)


def test_kill_9_mid_run_then_resume(tmp_path, digits):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_EMBED)
    out = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(script), str(out), "0.3"])
    deadline = time.time() + 60
    while time.time() < deadline:
        m = out / "manifest.json"
        if m.is_file() and len(EmbeddingStore(out).manifest["chunks_done"]) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    part = EmbeddingStore(out)
    assert not part.complete
    subprocess.run([sys.executable, str(script), str(out), "0"], check=True)
    reference = embed(digits, get_encoder("pixels", dim=8), tmp_path / "ref", chunk_rows=100)
    np.testing.assert_array_equal(EmbeddingStore(out).to_array(), reference.to_array())

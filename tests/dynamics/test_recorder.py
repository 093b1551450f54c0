import subprocess
import sys
import textwrap

import numpy as np
import pytest

from selfprune.dynamics.recorder import FIELDS, Recorder, batch_stats
from selfprune.errors import InvalidInputError, StoreError

N, C = 40, 3


def _batches(seed, epochs=3, batch=7):
    """Shuffled epochs of (ids, logits, labels); the last batch of each epoch is partial."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    for _ in range(epochs):
        perm = rng.permutation(N)
        yield [(perm[lo : lo + batch], rng.normal(size=(len(perm[lo : lo + batch]), C)),
                labels[perm[lo : lo + batch]]) for lo in range(0, N, batch)]  # fmt: skip


def _record(rec, epochs):
    for batches in epochs:
        for ids, z, y in batches:
            rec.update(ids, z, y)
        rec.end_epoch()
    return rec


def test_batch_stats_hand_computed():
    z = np.array([[np.log(3.0), 0.0]])  # softmax (0.75, 0.25)
    s = batch_stats(z, np.array([1]))
    assert s["prob"][0] == pytest.approx(0.25)
    assert s["margin"][0] == pytest.approx(-np.log(3.0))
    assert s["el2n"][0] == pytest.approx(np.sqrt(2) * 0.75)
    assert s["loss"][0] == pytest.approx(-np.log(0.25))
    assert s["correct"][0] == 0.0


def test_shuffled_partial_batches_land_by_id():
    epochs = list(_batches(0))
    rec = _record(Recorder(N, C), epochs)
    assert rec.epochs == 3 and np.all(rec.counts() == 1)
    for e, batches in enumerate(epochs):
        for ids, z, y in batches:
            want = batch_stats(z, y)
            for f in FIELDS:
                np.testing.assert_allclose(rec.values(f)[ids, e], want[f], rtol=1e-6, atol=1e-6)


def test_unpresented_examples_are_nan():
    rec = Recorder(5, 2)
    rec.update([1, 3], np.zeros((2, 2)), [0, 1])
    rec.end_epoch()
    v = rec.values("prob")
    assert np.isnan(v[[0, 2, 4], 0]).all() and np.allclose(v[[1, 3], 0], 0.5)
    np.testing.assert_array_equal(rec.labels, [-1, 0, -1, 1, -1])


def test_repeated_ids_are_averaged():
    rec = Recorder(3, 2)
    rec.update([0, 0], np.array([[2.0, 0.0], [0.0, 2.0]]), [0, 0])  # repeat inside one batch
    rec.update([0], np.array([[0.0, 0.0]]), [0])  # and in a later batch
    rec.end_epoch()
    assert rec.counts()[0, 0] == 3
    margins = [2.0, -2.0, 0.0]
    assert rec.values("margin")[0, 0] == pytest.approx(np.mean(margins))
    assert rec.values("correct")[0, 0] == pytest.approx(2 / 3)  # ties -> first arg-max = label 0


def test_string_ids_and_unknown_id():
    rec = Recorder(3, 2, ids=["b", "a", "c"])
    rec.update(np.array(["c", "a"]), np.array([[0.0, 1.0], [1.0, 0.0]]), [1, 0])
    rec.end_epoch()
    np.testing.assert_array_equal(rec.values("correct")[:, 0], [np.nan, 1.0, 1.0])
    with pytest.raises(InvalidInputError, match="unknown id 'z'"):
        rec.update(np.array(["z"]), np.zeros((1, 2)), [0])


def test_bad_batches_rejected_and_nonfinite_rows_skipped():
    rec = Recorder(4, 3)
    with pytest.raises(InvalidInputError, match=r"\(B, 3\)"):
        rec.update([0], np.zeros((1, 2)), [0])
    with pytest.raises(InvalidInputError, match="labels must be integers"):
        rec.update([0], np.zeros((1, 3)), [3])
    with pytest.raises(InvalidInputError, match="outside"):
        rec.update([9], np.zeros((1, 3)), [0])
    rec.update([0, 1], np.array([[np.nan, 0, 0], [1.0, 0, 0]]), [0, 0])
    assert rec.counts(partial=True)[:, 0].tolist() == [0, 1, 0, 0]


def test_disk_equals_memory_and_grows_past_capacity(tmp_path):
    epochs = list(_batches(1, epochs=5))
    mem = _record(Recorder(N, C), epochs)
    disk = _record(Recorder(N, C, tmp_path / "rec", capacity=2), epochs)
    again = Recorder.open(tmp_path / "rec")
    for f in FIELDS:
        np.testing.assert_allclose(disk.values(f), mem.values(f), rtol=1e-6)
        np.testing.assert_allclose(again.values(f), mem.values(f), rtol=1e-6)
    assert again.epochs == 5


def test_survives_kill(tmp_path):
    path = tmp_path / "rec"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from selfprune.dynamics.recorder import Recorder
        rec = Recorder(10, 2, {str(path)!r})
        for e in range(2):
            rec.update(np.arange(10), np.tile([[1.0, 0.0]], (10, 1)), np.zeros(10, np.int64))
            rec.end_epoch()
        rec.update(np.arange(4), np.tile([[0.0, 1.0]], (4, 1)), np.zeros(4, np.int64))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    rec = Recorder.open(path)
    assert rec.epochs == 2
    np.testing.assert_array_equal(rec.values("correct"), np.ones((10, 2)))
    partial = rec.values("correct", partial=True)[:, 2]
    np.testing.assert_array_equal(partial[:4], 0.0)
    assert np.isnan(partial[4:]).all()
    # resuming for writing continues after the complete epochs; the interrupted one is redone
    resumed = Recorder(10, 2, path)
    assert resumed.epochs == 2 and resumed.counts(partial=True)[:, 2].sum() == 0
    with pytest.raises(StoreError, match="10 examples, not 11"):
        Recorder(11, 2, path)


def test_state_dict_roundtrip_discards_later_epochs(tmp_path):
    epochs = list(_batches(2, epochs=4))
    for path in (None, tmp_path / "rec"):
        rec = _record(Recorder(N, C, path), epochs[:2])
        state = rec.state_dict()
        _record(rec, epochs[2:])
        rec.load_state_dict(state)
        assert rec.epochs == 2
        _record(rec, epochs[2:])
        ref = _record(Recorder(N, C), epochs)
        np.testing.assert_allclose(rec.values("margin"), ref.values("margin"), rtol=1e-6)
    fresh = Recorder(N, C)
    fresh.load_state_dict(_record(Recorder(N, C), epochs[:3]).state_dict())
    assert fresh.epochs == 3


def test_load_state_dict_refuses_a_folder_without_the_epochs(tmp_path):
    epochs = list(_batches(4, epochs=3))
    state = _record(Recorder(N, C, tmp_path / "rec"), epochs).state_dict()
    # restoring into an empty folder would report three epochs of zeros
    with pytest.raises(StoreError, match="recorded in .*rec.*records in .*other"):
        Recorder(N, C, tmp_path / "other").load_state_dict(state)
    with pytest.raises(StoreError, match="recorded in .*records in memory"):
        Recorder(N, C).load_state_dict(state)
    # the same folder, opened after one epoch was rolled back, holds fewer epochs than the state
    rolled = Recorder(N, C, tmp_path / "rec")
    rolled.load_state_dict({**state, "epochs_done": 1})
    with pytest.raises(StoreError, match="3 complete epochs, the files in .* hold 1"):
        rolled.load_state_dict(state)
    with pytest.raises(StoreError, match="neither arrays nor a recording folder"):
        Recorder(N, C, tmp_path / "third").load_state_dict({**state, "path": None})


def test_rank_merge_equals_single_process(tmp_path):
    epochs = list(_batches(3, epochs=3))
    single = _record(Recorder(N, C), epochs)
    ranks = [Recorder(N, C, tmp_path / f"rank{r}") for r in range(2)]
    for batches in epochs:
        for ids, z, y in batches:  # each rank sees its own slice of every batch
            ranks[0].update(ids[::2], z[::2], y[::2])
            ranks[1].update(ids[1::2], z[1::2], y[1::2])
        for r in ranks:
            r.end_epoch()
    merged = Recorder.merge(ranks, tmp_path / "merged")
    for f in FIELDS:
        np.testing.assert_allclose(merged.values(f), single.values(f), rtol=1e-6)
    np.testing.assert_array_equal(merged.labels, single.labels)
    np.testing.assert_array_equal(Recorder.open(tmp_path / "merged").counts(), single.counts())


def test_merge_by_id_with_different_id_sets():
    a = Recorder(2, 2, ids=[10, 11])
    b = Recorder(2, 2, ids=[11, 12])
    a.update([11], np.array([[1.0, 0.0]]), [0])
    b.update([11, 12], np.array([[0.0, 1.0], [0.0, 1.0]]), [0, 1])
    a.end_epoch()
    b.end_epoch()
    m = Recorder.merge([a, b])
    np.testing.assert_array_equal(m.ids, [10, 11, 12])
    np.testing.assert_array_equal(m.counts()[:, 0], [0, 2, 1])
    np.testing.assert_allclose(m.values("correct")[1:, 0], [0.5, 1.0])
    b.end_epoch()
    with pytest.raises(InvalidInputError, match="differ in complete epochs"):
        Recorder.merge([a, b])

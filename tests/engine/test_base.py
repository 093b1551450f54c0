"""The engine seam without Ray: sources reopen from their spec, results come back in chunk order,
a failing chunk is named once, resume reuses planted parts, and the ray extra stays optional."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import engine_chunkfns as cf  # noqa: E402

from selfprune.engine.base import (  # noqa: E402
    ArraySource,
    ChunkError,
    Engine,
    GroupedSource,
    LocalEngine,
    StoreSource,
    as_source,
    fn_name,
    load_part,
    make_engine,
    open_source,
    part_path,
    run_chunk,
    sample_rows,
    save_part,
    task_dir,
)
from selfprune.errors import InvalidInputError, MissingExtraError  # noqa: E402

DIRECTION = np.linspace(-1.0, 1.0, 6)
STATE = {"direction": DIRECTION}


def _store(path: Path, x: np.ndarray, chunk_rows: int, dtype: str = "float32"):
    from selfprune.io.store import EmbeddingStore

    return EmbeddingStore.from_array(path, x, chunk_rows=chunk_rows, dtype=dtype)


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        p.keys() == q.keys() and all(np.array_equal(p[k], q[k]) for k in p) for p, q in zip(a, b, strict=True)
    )


def test_sample_rows_is_the_same_from_array_npy_and_store(tmp_path):
    x = cf.toy_data(n=230)
    np.save(tmp_path / "x.npy", x)
    want = sample_rows(x, 50, seed=4)
    assert want.shape == (50, 6) and want.dtype == np.float32
    for source in (
        ArraySource(x, chunk_rows=17),
        np.load(tmp_path / "x.npy", mmap_mode="r"),
        _store(tmp_path / "s", x, chunk_rows=40),
    ):
        np.testing.assert_array_equal(sample_rows(source, 50, seed=4), want)
    assert not np.array_equal(sample_rows(x, 50, seed=5), want)


def test_float16_npy_map_is_streamed_and_reopened_from_its_spec(tmp_path):
    x16 = cf.toy_data(n=100).astype(np.float16)
    np.save(tmp_path / "x16.npy", x16)
    src = as_source(np.load(tmp_path / "x16.npy", mmap_mode="r"), chunk_rows=30)
    assert src.dtype == np.float16 and src.spec() == {
        "kind": "npy",
        "path": str(tmp_path / "x16.npy"),
        "chunk_rows": 30,
    }
    again = open_source(src.spec())
    assert again.n_chunks == src.n_chunks == 4
    for i in range(src.n_chunks):
        np.testing.assert_array_equal(again.chunk(i), x16[slice(*src.bounds(i))].astype(np.float32))
    assert src.chunk(0).dtype == np.float32
    # a slice of a map is not the whole file: it has no spec a worker could reopen
    assert as_source(np.load(tmp_path / "x16.npy", mmap_mode="r")[10:]).spec() is None


def test_store_source_reopens_from_its_spec(tmp_path):
    x = cf.toy_data(n=90)
    src = StoreSource(_store(tmp_path / "s", x, chunk_rows=25))
    again = open_source(src.spec())
    assert [again.bounds(i) for i in range(again.n_chunks)] == [(0, 25), (25, 50), (50, 75), (75, 90)]
    for i in range(src.n_chunks):
        np.testing.assert_array_equal(again.chunk(i), src.chunk(i))


def test_grouped_source_chunks_are_the_groups_rows_and_map_like_any_source(tmp_path):
    x = cf.toy_data(n=90)
    order = np.array([5, 80, 3, 3, 61, 17, 0, 89], dtype=np.int64)  # a row may appear in two groups
    bounds = np.array([0, 3, 3, 6, 8])  # group 1 is empty
    for base in (ArraySource(x, chunk_rows=20), StoreSource(_store(tmp_path / "s", x, chunk_rows=25))):
        g = GroupedSource(base, order, bounds)
        assert g.n_chunks == 4 and len(g) == 8 and [g.bounds(i) for i in range(4)] == [(0, 3), (3, 3), (3, 6), (6, 8)]
        for i in range(4):
            np.testing.assert_array_equal(g.chunk(i), x[order[slice(*g.bounds(i))]])
        np.testing.assert_array_equal(g.rows_of_chunk(2, np.array([2, 0])), x[[17, 3]])
        got = LocalEngine().map(cf.row_stats, g, STATE)
        np.testing.assert_array_equal(np.concatenate([p["proj"] for p in got]), x[order].astype(np.float64) @ DIRECTION)
        assert [list(p["row"]) for p in got] == [[0, 1, 2], [], [3, 4, 5], [6, 7]]  # positions along the order
    # groups read ahead in batches of at most 2 rows (or 1 group), asked for in any order
    store = StoreSource(_store(tmp_path / "s2", x, chunk_rows=25))
    small = GroupedSource(store, order, bounds, prefetch_bytes=2 * 4 * x.shape[1])
    for i in (2, 0, 3, 1, 2, 3):
        np.testing.assert_array_equal(small.chunk(i), x[order[slice(*small.bounds(i))]])
    other = GroupedSource(ArraySource(x, chunk_rows=20), order[::-1].copy(), bounds)
    assert other.fingerprint() != GroupedSource(ArraySource(x, chunk_rows=20), order, bounds).fingerprint()
    for bad in ([1, 3, 8], [0, 5, 3, 8], [0, 3, 9]):
        with pytest.raises(InvalidInputError, match="group bounds"):
            GroupedSource(ArraySource(x), order, np.array(bad))


class _Backwards(Engine):
    """Yields the chunks last first, as a parallel engine may."""

    def _run(self, fn, src, state, todo, task):
        for i in reversed(todo):
            yield i, run_chunk(fn, src, i, state)


def test_results_are_in_chunk_order_whatever_order_chunks_finish():
    src = ArraySource(cf.toy_data(n=100), chunk_rows=15)
    got = _Backwards().map(cf.row_stats, src, STATE)
    assert np.array_equal(np.concatenate([p["row"] for p in got]), np.arange(100))
    assert _same(got, LocalEngine().map(cf.row_stats, src, STATE))


def test_a_failing_chunk_is_named_once():
    src = ArraySource(cf.toy_data(n=100), chunk_rows=15)
    with pytest.raises(ChunkError) as err:
        LocalEngine().map(cf.fails_at_row, src, {**STATE, "row": np.array(47)})
    assert str(err.value) == "chunk 3 (rows 45-59) failed: ValueError: planted failure near row 47"
    with pytest.raises(InvalidInputError, match=r"^chunk 6 \(rows 90-99\): planted refusal$"):
        LocalEngine().map(cf.refuses_at_row, src, {**STATE, "row": np.array(95)})


def test_local_resume_reuses_planted_parts_and_recomputes_the_rest(tmp_path):
    src = ArraySource(cf.toy_data(n=100), chunk_rows=15)
    want = LocalEngine().map(cf.row_stats, src, STATE)
    task = task_dir(tmp_path, cf.row_stats, STATE, src)
    # a planted part with marked values proves it is read back instead of recomputed
    planted = {k: v.copy() for k, v in want[2].items()}
    planted["proj"][:] = -7.0
    save_part(part_path(task, 2), planted, *src.bounds(2))
    save_part(part_path(task, 4), want[4], *src.bounds(4))
    stamp = part_path(task, 4).stat().st_mtime_ns
    progress = []
    got = LocalEngine(workdir=tmp_path).map(cf.row_stats, src, STATE, progress=lambda d, t: progress.append((d, t)))
    assert np.array_equal(got[2]["proj"], planted["proj"])
    assert _same([g for i, g in enumerate(got) if i != 2], [w for i, w in enumerate(want) if i != 2])
    assert part_path(task, 4).stat().st_mtime_ns == stamp
    assert progress == [(d, 100) for d in (45, 60, 75, 90, 100)]  # rows done: two reused chunks, then five
    assert all(load_part(part_path(task, i), *src.bounds(i)) is not None for i in range(src.n_chunks))


def test_chunk_functions_must_be_module_level():
    assert fn_name(cf.row_stats) == "engine_chunkfns:row_stats"

    def local(chunk, lo, state):
        return {}

    for fn in (local, lambda c, lo, s: {}):
        with pytest.raises(InvalidInputError, match="module-level"):
            fn_name(fn)


def test_ray_engine_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    monkeypatch.delitem(sys.modules, "selfprune.engine.ray", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'selfprune\[ray\]'"):
        make_engine("ray")


def test_selfprune_and_the_local_engine_never_import_ray():
    code = (
        "import sys, numpy as np, selfprune\n"
        "from selfprune.engine.base import LocalEngine\n"
        "from selfprune.metrics.prototypes import prototypes\n"
        "prototypes(np.random.default_rng(0).normal(size=(60, 4)).astype('float32'), k=3, engine='local')\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

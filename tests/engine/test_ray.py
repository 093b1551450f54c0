"""RayEngine against the local engine on one small local cluster (started once for the module)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data")

import ray  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import engine_chunkfns as cf  # noqa: E402

from selfprune.engine.base import ArraySource, ChunkError, LocalEngine, part_path, task_dir  # noqa: E402
from selfprune.engine.ray import RayEngine  # noqa: E402
from selfprune.errors import DataSourceError, InvalidInputError  # noqa: E402

pytestmark = pytest.mark.timeout(180)

DIRECTION = np.linspace(-1.0, 1.0, 6)


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU local cluster whose workers can import ``engine_chunkfns``; yields its address."""
    if ray.is_initialized():  # a session left by another module: ours needs its own workers' path
        ray.shutdown()
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), saved["PYTHONPATH"]) if p)
    os.environ["RAY_AUTH_MODE"] = "disabled"  # loopback only; drivers started below inherit it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        p.keys() == q.keys() and all(np.array_equal(p[k], q[k]) for k in p) for p, q in zip(a, b, strict=True)
    )


def _store(path: Path, x: np.ndarray, chunk_rows: int):
    from selfprune.io.store import EmbeddingStore

    return EmbeddingStore.from_array(path, x, chunk_rows=chunk_rows)


def test_same_results_as_local_for_array_npy_and_store(cluster, tmp_path):
    x = cf.toy_data()
    state = {"direction": DIRECTION}
    np.save(tmp_path / "x.npy", x)
    sources = {
        "array": ArraySource(x, chunk_rows=40),
        "npy": np.load(tmp_path / "x.npy", mmap_mode="r"),
        "store": _store(tmp_path / "store", x, chunk_rows=50),
    }
    seen = []
    for name, source in sources.items():
        want = LocalEngine().map(cf.row_stats, source, state)
        engine = RayEngine(workdir=tmp_path / f"parts-{name}")
        got = engine.map(cf.row_stats, source, state, progress=lambda d, t: seen.append((d, t)))
        assert _same(got, want), name
        assert np.array_equal(np.concatenate([p["row"] for p in got]), np.arange(len(x))), name
    assert seen[-1][0] == seen[-1][1]  # the store's progress ends at its chunk count
    engine.close()
    assert ray.is_initialized()  # an engine that joined a cluster leaves it running


def test_without_workdir_leaves_no_scratch_behind(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    src = ArraySource(cf.toy_data(n=90), chunk_rows=30)
    got = RayEngine().map(cf.row_stats, src, {"direction": DIRECTION})
    assert _same(got, LocalEngine().map(cf.row_stats, src, {"direction": DIRECTION}))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("selfprune-ray-")]


def test_failing_chunk_is_reported_once_naming_it(cluster, tmp_path):
    x = cf.toy_data(n=120)
    src = ArraySource(x, chunk_rows=25)
    with pytest.raises(ChunkError) as err:
        RayEngine(workdir=tmp_path).map(cf.fails_at_row, src, {"direction": DIRECTION, "row": np.array(60)})
    message = str(err.value)
    assert message == "chunk 2 (rows 50-74) failed: ValueError: planted failure near row 60"
    assert err.value.__cause__ is None and "\n" not in message

    with pytest.raises(InvalidInputError, match=r"^chunk 4 \(rows 100-119\): planted refusal$"):
        RayEngine().map(cf.refuses_at_row, src, {"direction": DIRECTION, "row": np.array(110)})


def test_killed_worker_is_survived_with_the_same_result(cluster, tmp_path):
    x = cf.toy_data(n=160)
    src = ArraySource(x, chunk_rows=20)
    marker = tmp_path / "killed"
    state = {"direction": DIRECTION, "row": np.array(70), "marker": np.array(str(marker))}
    got = RayEngine(workdir=tmp_path / "parts").map(cf.kills_worker_once, src, state)
    pid = int(marker.read_text())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker that ran chunk 3 really died
    assert _same(got, LocalEngine().map(cf.row_stats, src, {"direction": DIRECTION}))


def test_chunk_that_always_kills_its_worker_fails_after_the_retries(cluster, tmp_path):
    x = cf.toy_data(n=40)
    deaths = tmp_path / "deaths"
    state = {"direction": DIRECTION, "row": np.array(25), "deaths": np.array(str(deaths))}
    with pytest.raises(ChunkError, match=r"^chunk 1 \(rows 20-39\): its Ray worker died 2 times running it"):
        RayEngine(workdir=tmp_path / "parts", retries=1).map(cf.kills_worker_always, ArraySource(x, 20), state)
    assert len(list(deaths.iterdir())) == 2


DRIVER = """
import sys
import numpy as np
import engine_chunkfns as cf
from selfprune.engine.base import ArraySource
from selfprune.engine.ray import RayEngine

address, workdir, flag = sys.argv[1:]
state = {"direction": np.linspace(-1.0, 1.0, 6), "flag": np.array(flag)}
RayEngine(address=address, workdir=workdir, workers=1).map(
    cf.slow_while_flagged, ArraySource(cf.toy_data(n=240), chunk_rows=20), state
)
"""


def test_killed_driver_resumes_to_the_same_result_reusing_parts(cluster, tmp_path):
    flag = tmp_path / "slow"
    flag.touch()
    workdir = tmp_path / "parts"
    src = ArraySource(cf.toy_data(n=240), chunk_rows=20)
    state = {"direction": DIRECTION, "flag": np.array(str(flag))}
    task = task_dir(workdir, cf.slow_while_flagged, state, src)

    driver = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), cluster, str(workdir), str(flag)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(task.glob("part-*.npz"))) < 2:
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the driver wrote no parts"
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        driver.stderr.close()
    before = {p.name: p.stat().st_mtime_ns for p in task.glob("part-*.npz")}
    assert 2 <= len(before) < src.n_chunks

    flag.unlink()  # the rerun is fast; same function, state and source, so the same task folder
    progress = []
    got = RayEngine(workdir=workdir).map(cf.slow_while_flagged, src, state, progress=lambda d, t: progress.append(d))
    assert _same(got, LocalEngine().map(cf.row_stats, src, {"direction": DIRECTION}))
    after = {p.name: p.stat().st_mtime_ns for p in task.glob("part-*.npz")}
    assert {k: after[k] for k in before} == before  # finished parts were reused, not rewritten
    assert len(after) == src.n_chunks
    assert progress[0] >= 20 * (len(before) + 1)  # rows done count the reused parts (20 rows each) first
    assert all(part_path(task, i).name in after for i in range(src.n_chunks))


def test_unreachable_address_fails_in_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    engine = RayEngine(address=f"127.0.0.1:{port}", workdir=tmp_path)
    with pytest.raises(DataSourceError) as err:
        engine.map(cf.row_stats, cf.toy_data(n=10), {"direction": DIRECTION})
    assert f"127.0.0.1:{port}" in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [{"workers": 0}, {"workers": 1.5}, {"retries": -1}, {"address": "nowhere"}])
def test_bad_settings_are_refused(bad, tmp_path):
    with pytest.raises(InvalidInputError, match="RayEngine"):
        RayEngine(**bad).map(cf.row_stats, cf.toy_data(n=10), {"direction": DIRECTION})


def test_metrics_on_ray_equal_the_local_engine(cluster, tmp_path):
    from selfprune.engine import use_engine
    from selfprune.metrics.density import knn_density
    from selfprune.metrics.prototypes import class_prototypes, prototypes
    from selfprune.metrics.pseudo import pseudo_labels
    from selfprune.metrics.semdedup import semdedup

    rng = np.random.default_rng(7)
    y = rng.integers(0, 5, size=400)
    x = (rng.normal(size=(5, 12))[y] + 0.3 * rng.normal(size=(400, 12))).astype(np.float32)
    x[380:390] = x[100:110]  # exact duplicates for semdedup to find
    store = _store(tmp_path / "store", x, chunk_rows=96)

    def everything(engine):
        pl = pseudo_labels(store, k=5, refine="none", seed=1, engine=engine)
        head = pseudo_labels(store, k=5, refine="neighbours", neighbours=5, epochs=2, fit_rows=200, seed=1,
                             engine=engine)  # fmt: skip
        dd = semdedup(store, eps=0.01, k=5, seed=0, engine=engine)
        return {
            "head": head.labels,
            "head_confidence": head.confidence,
            "density_sample": knn_density(store, k=5, reference=150, seed=2, engine=engine).values,
            "prototypes": prototypes(store, k=5, seed=3, engine=engine).values,
            "class": class_prototypes(store, y, engine=engine).values,
            "density": knn_density(store, k=5, engine=engine).values,
            "pseudo": pl.labels,
            "confidence": pl.confidence,
            "kept": dd.kept,
            "duplicate_of": dd.duplicate_of,
        }

    want = everything("local")
    with use_engine(RayEngine(workdir=tmp_path / "parts")) as engine:
        got = everything(engine)
    assert len(want["kept"]) < len(x)  # the planted duplicates were found
    assert len(list((tmp_path / "parts").glob("task-*/part-*.npz"))) > store.n_chunks  # the maps ran on Ray
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


OWN_CLUSTER = """
import numpy as np, ray
import engine_chunkfns as cf
from selfprune.engine.base import ArraySource, LocalEngine
from selfprune.engine.ray import RayEngine

src = ArraySource(cf.toy_data(n=60), chunk_rows=20)
state = {"direction": np.linspace(-1.0, 1.0, 6)}
engine = RayEngine(workers=1)
got = engine.map(cf.row_stats, src, state)
want = LocalEngine().map(cf.row_stats, src, state)
assert all(np.array_equal(a[k], b[k]) for a, b in zip(got, want, strict=True) for k in a), "results differ"
assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 1
engine.close()
assert not ray.is_initialized(), "the engine left its own cluster running"
print("ok")
"""


def test_engine_starts_and_stops_its_own_local_cluster(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env.update(HOME=str(tmp_path), PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p))
    done = subprocess.run([sys.executable, "-c", OWN_CLUSTER], capture_output=True, text=True, env=env, timeout=150)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert not (tmp_path / ".ray" / "auth_token").exists()  # a loopback cluster needs no token


TWO_NODES = """
import numpy as np, ray
from ray.cluster_utils import Cluster
import engine_chunkfns as cf
from selfprune.engine.base import ArraySource, LocalEngine
from selfprune.engine.ray import RayEngine
from selfprune.io.store import EmbeddingStore
from selfprune.metrics.prototypes import prototypes
from selfprune.metrics.semdedup import semdedup

nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 80 * 2**20})
nodes.add_node(num_cpus=1, object_store_memory=80 * 2**20)
nodes.wait_for_nodes()
engine = RayEngine(address=nodes.address, workdir="WORK/parts")
try:
    src = ArraySource(cf.toy_data(n=400), chunk_rows=25)
    state = {"direction": np.linspace(-1.0, 1.0, 6)}
    got = engine.map(cf.node_of, src, {**state, "nodes": np.array("WORK/nodes"), "want": np.array(2)})
    want = LocalEngine().map(cf.row_stats, src, state)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(got, want, strict=True) for k in b), "results differ"
    ran_on = {str(p["node"][0]) for p in got}
    assert len(ran_on) == 2, f"the chunks ran on {len(ran_on)} node(s), not both"

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    x[280:290] = x[10:20] + 1e-4
    store = EmbeddingStore.from_array("WORK/store", x, chunk_rows=64)
    for data in (x, store):
        a = semdedup(data, eps=0.01, k=4, seed=0, engine=engine)
        b = semdedup(data, eps=0.01, k=4, seed=0)
        assert np.array_equal(a.kept, b.kept) and np.array_equal(a.duplicate_of, b.duplicate_of), "dedup differs"
        assert len(b.removed) >= 10
        p, q = prototypes(data, k=4, seed=1, engine=engine), prototypes(data, k=4, seed=1)
        assert np.array_equal(p.values, q.values), "prototypes differ"
finally:
    engine.close()
    ray.shutdown()
    nodes.shutdown()
print("ok")
"""


def test_two_node_cluster_uses_both_nodes_and_equals_local(tmp_path):
    """A cluster of two Ray nodes (head and worker, one CPU each) joined by address: chunks run on
    both nodes and the results, dedup's cluster tasks included, equal the local engine's."""
    env = dict(os.environ, RAY_AUTH_MODE="disabled", HOME=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    script = TWO_NODES.replace("WORK", str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=170)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

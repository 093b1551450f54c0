"""One vocabulary on the command line: old spellings refused with a hint, ``--version``, an example
in every help, ``--labels`` forms that agree, ``--keep`` parsed once, and a quiet stderr."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfprune.cli import main


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["curve", "--seeds", "3", "--out", "x"], "curve: --seeds is now --n-seeds (a count); use --n-seeds 3"),
        (["dynamics", "--seeds=2", "--out", "x"], "dynamics: --seeds is now --n-seeds (a count); use --n-seeds 2"),
        (["demo", "--seeds", "1"], "demo: --seeds is now --n-seeds"),
        (["density", "--embeddings", "e.npy", "--k", "10", "--out", "d.parquet"], "density: --k is now --neighbours"),
        (["score", "--column", "vec", "--out", "s"], "score: --column is now --vector-column"),
        (["dedup", "--column", "vec"], "dedup: --column is now --vector-column"),
        (["density", "--column", "vec"], "density: --column is now --vector-column"),
        (["pseudo-labels", "--column", "vec"], "pseudo-labels: --column is now --vector-column"),
        (["select", "--column", "el2n"], "select: --column is now --score-column (the score column)"),
        (["audit", "--column", "el2n"], "audit: --column is now --score-column"),
        (["audit", "--source", "digits"], "audit: --source is now --data (the raw data); use --data digits"),
        (["curve", "--trainer", "mlp"], "curve: --trainer is now --model"),
        (["demo", "--trainer", "mlp"], "demo: --trainer is now --model"),
        (["curve", "--pilot-trainer", "mlp"], "curve: --pilot-trainer is now --pilot-model"),
        (["select", "--pilot-trainer", "mlp"], "select: --pilot-trainer is now --pilot-model"),
        (["select", "--pilot-seeds", "2"], "select: --pilot-seeds is now --pilot-n-seeds"),
        (["curve", "--pilot-seeds", "2"], "curve: --pilot-seeds is now --pilot-n-seeds"),
    ],
)
def test_old_spelling_is_refused_with_its_hint(tmp_path, capsys, argv, hint):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert hint in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_refused_before_anything_runs(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    np.save(tmp_path / "e.npy", x)
    out = tmp_path / "d.parquet"
    assert main(["density", "--embeddings", str(tmp_path / "e.npy"), "--k", "3", "--out", str(out)]) == 2
    assert not out.exists()
    # the same option under its own meaning elsewhere is accepted: --k is clusters in score
    assert main(["score", "--embeddings", str(tmp_path / "e.npy"), "--k", "3", "--out", str(tmp_path / "s")]) == 0


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"selfprune {version('selfprune')}"


def _commands():
    from selfprune.cli import _register_all, app

    _register_all()
    return app


def test_every_help_shows_a_working_example(capsys):
    import typer.main

    app = _commands()
    group = typer.main.get_command(app)
    names = sorted(group.commands)
    assert {"score", "select", "curve", "audit", "density", "dedup", "dynamics", "tokens"} <= set(names)
    for name in names:
        assert main([name, "--help"]) == 0
        text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
        found = re.search(rf"Example: (selfprune {re.escape(name)} (?:--[\w-]+(?: [^-\s]\S*)? ?)+)", text)
        assert found, f"{name}: no example in its help"
        used = set(re.findall(r"(--[\w-]+)", found.group(1)))
        known = {opt for p in group.commands[name].params for opt in p.opts}
        assert used and used <= known, f"{name}: example uses unknown {used - known}"


def test_memorization_help_keeps_its_formula(capsys):
    assert main(["memorization", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "P(correct | trained on it) - P(correct | held out)" in text


# ----------------------------------------------------------------------------- --labels


@pytest.fixture
def labelled(tmp_path):
    """A .npz with labels (embeddings that carry their labels) and the same labels as .npy and Parquet."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = (np.eye(3, 6)[y] + 0.3 * rng.normal(size=(60, 6))).astype(np.float32)
    ids = np.arange(60) + 100
    np.savez(tmp_path / "emb.npz", X=x, y=y, ids=ids)
    np.savez(tmp_path / "plain.npz", X=x, ids=ids)
    np.save(tmp_path / "y.npy", y)
    pq.write_table(pa.table({"id": ids[::-1], "label": y[::-1]}), tmp_path / "y.parquet")
    return tmp_path, y


def test_labels_forms_agree_in_score_and_select(labelled):
    from selfprune.io.tables import read_ids, read_scores

    d, y = labelled
    values, kept = [], []
    for i, (emb, spec) in enumerate(
        [("emb.npz", "auto"), ("plain.npz", str(d / "y.npy")), ("plain.npz", str(d / "y.parquet"))]
    ):
        out = d / f"s{i}.parquet"
        assert main(["score", "--embeddings", str(d / emb), "--metric", "class-prototypes",
                     "--labels", spec, "--out", str(out)]) == 0  # fmt: skip
        t = read_scores(out)
        np.testing.assert_array_equal(t.labels, y)
        values.append(t["class-prototypes"].values)
        # select balances classes from the same labels given in each form
        sel_spec = "auto" if spec == "auto" else spec
        assert main(["select", "--scores", str(out), "--keep", "0.5", "--balance-classes", "--labels", sel_spec,
                     "--out", str(d / f"k{i}.parquet")]) == 0  # fmt: skip
        kept.append(read_ids(d / f"k{i}.parquet"))
    for v, k in zip(values[1:], kept[1:], strict=True):
        np.testing.assert_array_equal(v, values[0])
        np.testing.assert_array_equal(k, kept[0])


def test_labels_none_means_no_labels(labelled, capsys):
    d, _ = labelled
    rc = main(["score", "--embeddings", str(d / "emb.npz"), "--metric", "class-prototypes", "--labels", "none",
               "--out", str(d / "s.parquet")])  # fmt: skip
    assert rc == 2 and "needs labels" in capsys.readouterr().err


@pytest.mark.parametrize(
    "write",
    [
        lambda p: np.save(p, np.array([1, "a"] * 30, dtype=object), allow_pickle=True),
        lambda p: p.write_bytes(b"\x93NUMPY\x01\x00{'descr': '<i8', 'fortran_order': False, 'shape': (60,), }"),
        lambda p: np.save(p, np.arange(59)),
        lambda p: np.save(p, np.linspace(0, 1, 60)),
    ],
    ids=["object", "truncated", "wrong-length", "non-integer"],
)
@pytest.mark.parametrize("command", ["score", "select"])
def test_bad_npy_labels_one_line_exit_2(labelled, tmp_path, capsys, write, command):
    d, _ = labelled
    bad = tmp_path / "bad.npy"
    write(bad)
    if command == "score":
        argv = ["score", "--embeddings", str(d / "plain.npz"), "--metric", "class-prototypes"]
    else:
        assert main(["score", "--embeddings", str(d / "plain.npz"), "--out", str(d / "base.parquet"), "--k", "3"]) == 0
        capsys.readouterr()
        argv = ["select", "--scores", str(d / "base.parquet"), "--keep", "0.5", "--balance-classes"]
    out = tmp_path / "o.parquet"
    rc = main([*argv, "--labels", str(bad), "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 2
    assert len(cap.err.strip().splitlines()) == 1, cap.err
    assert cap.err.startswith("error: ") and str(bad) in cap.err
    assert "Traceback" not in cap.err + cap.out
    assert not out.exists()


# ----------------------------------------------------------------------------- --keep and new names


def test_keep_parser():
    from selfprune.commands._options import parse_keep, parse_keeps
    from selfprune.errors import InvalidInputError

    assert parse_keep("0.5", caller="t") == 0.5 and parse_keep("1", caller="t") == 1.0
    assert parse_keep("500", caller="t") == 500 and isinstance(parse_keep("500", caller="t"), int)
    assert parse_keeps("0.1, 0.5,200", caller="t") == [0.1, 0.5, 200]
    for bad in ("0", "-1", "2.5", "abc", "nan", "inf"):
        with pytest.raises(InvalidInputError, match="t: --keep takes a fraction in"):
            parse_keep(bad, caller="t")
    with pytest.raises(InvalidInputError, match="empty"):
        parse_keeps(" , ", caller="t")


def test_keep_count_and_fraction_in_audit_and_select(labelled, capsys):
    d, _ = labelled
    assert main(["score", "--embeddings", str(d / "emb.npz"), "--k", "3", "--out", str(d / "s.parquet")]) == 0
    from selfprune.io.tables import read_ids

    assert main(["select", "--scores", str(d / "s.parquet"), "--keep", "20", "--out", str(d / "k.parquet")]) == 0
    assert len(read_ids(d / "k.parquet")) == 20
    assert main(["select", "--scores", str(d / "s.parquet"), "--keep", "2.5", "--out", str(d / "k2.parquet")]) == 2
    assert "select: --keep takes a fraction in (0, 1] or an integer count > 1" in capsys.readouterr().err
    assert main(["audit", "--embeddings", str(d / "emb.npz"), "--scores", str(d / "s.parquet"), "--keep", "1.5",
                 "--out", str(d / "a")]) == 2  # fmt: skip
    assert "audit: --keep" in capsys.readouterr().err


def test_vector_and_score_columns(tmp_path, capsys):
    from selfprune.io.tables import read_ids, read_scores

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    pq.write_table(pa.table({"id": np.arange(40), "vec": list(x)}), tmp_path / "e.parquet")
    assert main(["score", "--embeddings", str(tmp_path / "e.parquet"), "--vector-column", "vec", "--k", "3",
                 "--out", str(tmp_path / "s.parquet")]) == 0  # fmt: skip
    assert main(["density", "--embeddings", str(tmp_path / "e.parquet"), "--vector-column", "vec",
                 "--neighbours", "4", "--out", str(tmp_path / "d.parquet")]) == 0  # fmt: skip
    assert read_scores(tmp_path / "d.parquet")["density"].meta["k"] == 4
    assert main(["score", "--embeddings", str(tmp_path / "e.parquet"), "--vector-column", "vec", "--metric",
                 "random", "--add-to", "--out", str(tmp_path / "s.parquet")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["select", "--scores", str(tmp_path / "s.parquet"), "--keep", "0.25",
                 "--out", str(tmp_path / "k.parquet")]) == 2  # fmt: skip
    assert "pass --score-column" in capsys.readouterr().err
    assert main(["select", "--scores", str(tmp_path / "s.parquet"), "--score-column", "random", "--keep", "0.25",
                 "--out", str(tmp_path / "k.parquet")]) == 0  # fmt: skip
    assert len(read_ids(tmp_path / "k.parquet")) == 10


# ----------------------------------------------------------------------------- stderr


def test_stderr_carries_only_selfprune_messages(tmp_path):
    """A tiny k-means sample made faiss print a warning of its own to stderr; now nothing does."""
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    proc = subprocess.run(
        [sys.executable, "-m", "selfprune.cli", "score", "--embeddings", str(tmp_path / "e.npy"), "--k", "3",
         "--out", str(tmp_path / "s.parquet")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr and "Warning" not in proc.stderr
    assert "wrote prototypes" in proc.stdout


def test_third_party_python_warnings_are_dropped_own_ones_kept(tmp_path, capsys, monkeypatch):
    import warnings

    import selfprune.io.store as store

    real = store.load_embeddings

    def noisy(*args, **kwargs):
        warnings.warn("noise from elsewhere", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "load_embeddings", noisy)
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32))
    assert main(["density", "--embeddings", str(tmp_path / "e.npy"), "--neighbours", "3",
                 "--out", str(tmp_path / "d.parquet")]) == 0  # fmt: skip
    assert "noise from elsewhere" not in capsys.readouterr().err

    from selfprune import cli

    cli._show_warning("skipping corrupt image a.png", UserWarning, cli.__file__, 1)
    assert capsys.readouterr().err.strip() == "warning: skipping corrupt image a.png"

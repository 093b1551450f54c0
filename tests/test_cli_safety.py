"""No command may write over its inputs, and every output honours the umask.

A table of (command, arguments) cases, one or more per command: an output that is an input, lies
inside an input folder, or is of the wrong kind (a folder where a file is written, or the reverse).
Each must exit 2 with one line on stderr and leave every input byte for byte as it was. A test
checks that the table covers every registered command, so a new command cannot ship without a case.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from selfprune.cli import _register_all, app, main
from selfprune.errors import InvalidInputError
from selfprune.io.atomic import atomic_path, protect_inputs, write_text_atomic


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Inputs of every kind: an embedding store, a score file, an .npz data set, chains."""
    d = tmp_path_factory.mktemp("safety")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 80)).astype(np.float32)
    np.savez(d / "data.npz", X=x, y=np.arange(120) % 3)
    np.save(d / "vectors.npy", x)
    assert main(["embed", "--data", str(d / "vectors.npy"), "--out", str(d / "emb"), "--set", "dim=8"]) == 0
    assert main(["score", "--embeddings", str(d / "emb"), "--metric", "random", "--out", str(d / "s.parquet")]) == 0
    assert main(["tokens-generate", "--n", "2", "--out", str(d / "chains.jsonl")]) == 0
    (d / "a-folder").mkdir()
    (d / "a-file").write_text("not a folder\n")
    return d


# command -> cases: (arguments with {d} for the work folder, words the error line must hold)
CASES: dict[str, list[tuple[str, str]]] = {
    "embed": [
        ("--data {d}/vectors.npy --out {d}/vectors.npy", "would overwrite the input"),
        ("--data {d}/vectors.npy --out {d}/a-file", "is a file"),
    ],
    "score": [
        ("--embeddings {d}/emb --out {d}/emb/ids.npy", "would overwrite the input"),
        ("--embeddings {d}/emb --out {d}/emb", "would overwrite the input"),
        ("--embeddings {d}/emb --out {d}/a-folder", "is a folder"),
    ],
    "select": [
        ("--scores {d}/s.parquet --keep 0.5 --out {d}/s.parquet", "would overwrite the input"),
        ("--scores {d}/s.parquet --keep 0.5 --out {d}/a-folder", "is a folder"),
    ],
    "dynamics": [
        ("--data {d}/data.npz --out {d}/data.npz", "would overwrite the input"),
        ("--data {d}/data.npz --out {d}/x.parquet --plot {d}/data.npz", "--plot"),
        ("--data {d}/data.npz --out {d}/x.parquet --record-dir {d}/data.npz", "--record-dir"),
        ("--data {d}/data.npz --out {d}/x.parquet --record-dir {d}/a-file", "is a file"),
    ],
    "memorization": [("--data {d}/data.npz --out {d}/data.npz", "would overwrite the input")],
    "pseudo-labels": [("--embeddings {d}/emb --out {d}/emb/p.parquet", "would overwrite the input")],
    "dedup": [
        ("--embeddings {d}/emb --out {d}/emb", "would overwrite the input"),
        ("--embeddings {d}/emb --out {d}/a-file", "is a file"),
    ],
    "combine": [
        ("--scores {d}/s.parquet --scores {d}/s.parquet --out {d}/s.parquet", "would overwrite the input"),
        ("--scores {d}/s.parquet --out {d}/a-folder", "is a folder"),
    ],
    "density": [("--embeddings {d}/emb --out {d}/emb/density.parquet", "would overwrite the input")],
    "curve": [("--data {d}/data.npz --out {d}/data.npz", "would overwrite the input")],
    "audit": [("--embeddings {d}/emb --scores {d}/s.parquet --out {d}/emb", "would overwrite the input")],
    "tokens": [("--chains {d}/chains.jsonl --out {d}/chains.jsonl", "would overwrite the input")],
    "tokens-generate": [("--out {d}/a-folder", "is a folder")],
    "tokens-distill": [
        ("--pruned {d}/emb --out {d}/emb/students", "would overwrite the input"),
        ("--pruned {d}/emb --out {d}/a-file", "is a file"),
    ],
    "demo": [("--out {d}/a-file", "is a file")],
    "prune": [("--data {d}/data.npz --keep 0.5 --out {d}/a-file", "is a file")],
    "export": [
        ("--data {d}/data.npz --kept {d}/s.parquet --out {d}/s.parquet", "would overwrite the input"),
        ("--data {d}/data.npz --kept {d}/s.parquet --format parquet --out {d}/a-folder", "is a folder"),
    ],
}


def _command_names() -> set[str]:
    _register_all()
    return {info.name or info.callback.__name__.replace("_", "-") for info in app.registered_commands}


def test_every_command_has_a_case():
    assert _command_names() == set(CASES)


@pytest.mark.parametrize(
    "command,args,words", [(c, a, w) for c, cases in CASES.items() for a, w in cases], ids=lambda v: str(v)[:40]
)
def test_output_over_an_input_is_refused_and_nothing_changes(work, capsys, command, args, words):
    inputs = [work / n for n in ("emb", "s.parquet", "data.npz", "vectors.npy", "chains.jsonl", "a-file")]
    before = {p: _digest(p) for p in inputs}
    folder_before = sorted(p.name for p in (work / "a-folder").iterdir())
    capsys.readouterr()
    code = main([command, *args.format(d=work).split()])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert words in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert {p: _digest(p) for p in inputs} == before
    assert sorted(p.name for p in (work / "a-folder").iterdir()) == folder_before


def test_a_link_to_an_input_is_the_input(work, capsys):
    link = work / "link.parquet"
    link.symlink_to(work / "s.parquet")
    hard = work / "hard.parquet"
    os.link(work / "s.parquet", hard)
    before = _digest(work / "s.parquet")
    assert main(["select", "--scores", str(work / "s.parquet"), "--keep", "0.5", "--out", str(link)]) == 2
    assert main(["select", "--scores", str(hard), "--keep", "0.5", "--out", str(work / "s.parquet")]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert _digest(work / "s.parquet") == before


def test_atomic_writes_inside_the_block_cannot_replace_an_input(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "keep.txt").write_text("input\n")
    (tmp_path / "solo.txt").write_text("input\n")
    with protect_inputs([src, tmp_path / "solo.txt", tmp_path / "absent"]):
        for target in (src / "keep.txt", src / "new.txt", tmp_path / "solo.txt"):
            with pytest.raises(InvalidInputError, match="would overwrite the input"):
                write_text_atomic(target, "output\n")
        write_text_atomic(tmp_path / "out.txt", "output\n")  # anything else is written
    write_text_atomic(src / "new.txt", "after the block\n")  # the protection ends with the block
    assert (src / "keep.txt").read_text() == "input\n" and (tmp_path / "solo.txt").read_text() == "input\n"
    assert (tmp_path / "out.txt").read_text() == "output\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_atomic_write_to_a_folder_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="is a folder"):
        with atomic_path(tmp_path):
            pass


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_outputs_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "x\n")
        assert main(["tokens-generate", "--n", "1", "--out", str(tmp_path / "c.jsonl")]) == 0
    finally:
        os.umask(old)
    for name in ("a.txt", "c.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask

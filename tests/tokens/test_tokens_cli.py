"""`selfprune tokens-generate` and `selfprune tokens` end to end with a tiny local model folder."""

from __future__ import annotations

import json

from selfprune.cli import main


def test_generate_then_prune_then_resume(tmp_path, tiny_folder, capsys):
    chains = tmp_path / "chains.jsonl"
    assert main(["tokens-generate", "--out", str(chains), "--n", "2", "--seed", "4",
                 "--min-tokens", "60", "--max-tokens", "80"]) == 0
    assert len(chains.read_text().splitlines()) == 2
    out = tmp_path / "run"
    args = ["tokens", "--chains", str(chains), "--model", str(tiny_folder), "--keep", "0.5,0.8",
            "--search", "approx", "--per-step", "8", "--rescore", "0", "--out", str(out),
            "--threads", "1", "--unit", "word"]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "| greedy |" in printed.out and "wrote 2 pruned chains" in printed.out
    for name in ("tokens.jsonl", "pruned_keep0.50.jsonl", "pruned_keep0.80.jsonl", "summary.md",
                 "summary.json", "curves.csv", "curves.png", "run.json"):
        assert (out / name).is_file(), name
    first = json.loads((out / "tokens.jsonl").read_text().splitlines()[0])
    assert {"text", "position", "deleted_step", "category"} <= set(first["tokens"][0])
    before = (out / "tokens.jsonl").read_text()
    assert main(args) == 0  # resumed: every chain reused
    assert capsys.readouterr().err.count("reused checkpoint") == 2
    assert (out / "tokens.jsonl").read_text() == before


def test_bad_rows_exit_2_with_line_number(tmp_path, tiny_folder, capsys):
    chains = tmp_path / "bad.jsonl"
    chains.write_text('{"question": "q", "chain": "c d", "answer": "1"}\n{"question": "q"}\n')
    code = main(["tokens", "--chains", str(chains), "--model", str(tiny_folder),
                 "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.jsonl line 2" in err and "missing field" in err


def test_bad_options_exit_2(tmp_path, tiny_folder, capsys):
    chains = tmp_path / "c.jsonl"
    chains.write_text('{"question": "q", "chain": "c d e", "answer": "1"}\n')
    base = ["tokens", "--chains", str(chains), "--model", str(tiny_folder), "--out", str(tmp_path / "o")]
    assert main([*base, "--keep", "1.2"]) == 2
    assert "keep" in capsys.readouterr().err
    assert main([*base, "--search", "beam"]) == 2
    assert "search" in capsys.readouterr().err
    assert main(["tokens", "--chains", str(chains), "--model", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "neither" in capsys.readouterr().err

"""Students fine-tuned on pruned chains (`selfprune tokens-distill`), on a tiny local model."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from selfprune.cli import main
from selfprune.errors import DataSourceError, InvalidInputError
from selfprune.tokens import distill as D
from selfprune.tokens.data import generate_chains, write_chains


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory, tiny_folder):
    """Eight generated chains pruned by the tiny model to keep 0.5 and 0.8 (token units, baselines on)."""
    root = tmp_path_factory.mktemp("distill")
    chains = root / "chains.jsonl"
    write_chains(chains, generate_chains(8, seed=5, min_steps=2, max_steps=2, min_tokens=20, max_tokens=45))
    heldout = root / "heldout.jsonl"
    write_chains(heldout, generate_chains(4, seed=6, min_steps=2, max_steps=2, min_tokens=20, max_tokens=45))
    out = root / "tok"
    assert main(["tokens", "--chains", str(chains), "--model", str(tiny_folder), "--keep", "0.5,0.8",
                 "--search", "approx", "--per-step", "16", "--rescore", "0", "--curve-step", "0",
                 "--threads", "1", "--out", str(out)]) == 0
    return out, heldout


@pytest.fixture(scope="module")
def student(tiny_folder):
    from selfprune.tokens.model import load_causal_lm

    return load_causal_lm(tiny_folder, threads=1)


SMALL = D.StudentSettings(rank=4, epochs=1, lr=5e-3, batch_size=4, eval_batch=4, max_new_tokens=6)


def test_parse_answer_scores_a_planted_format():
    text = "First 3 + 4 = 7, then 7 x 2 = 14.\nThe answer is 1,200. The answer is 9"
    parsed, reasoning, concluded = D.parse_answer(text)
    assert parsed == "1,200" and reasoning == "First 3 + 4 = 7, then 7 x 2 = 14.\n" and concluded
    assert D.answer_correct(parsed, "1200") and D.answer_correct("$40", "40") and D.answer_correct("7.0", "7")
    assert not D.answer_correct(parsed, "120") and not D.answer_correct("14", "1200")
    assert D.parse_answer("so 3 + 4 = 7 and 7 x 6 = 42") == ("42", "so 3 + 4 = 7 and 7 x 6 = 42", False)
    assert D.parse_answer("no number") == (None, "no number", False)
    assert D.parse_answer("The answer is unclear, not 5")[0] == "5"
    assert D.parse_answer("7 and The answer is unclear")[0] is None
    assert not D.answer_correct(None, "5")


def test_methods_keep_the_same_budget_and_greedy_matches_the_pruned_text(pruned_dir, student):
    run = D.read_pruned(pruned_dir[0])
    assert run.keeps == ["0.50", "0.80"]
    for res in run.results:
        for key in run.keeps:
            sizes = {m: len(D.kept_positions(res, m, key)) for m in ("greedy", "surprisal", "random", "uniform")}
            assert len(set(sizes.values())) == 1 and sizes["greedy"] == res.pruned[key].tokens
            ids = [res.tokens[p].token_id for p in D.kept_positions(res, "greedy", key)]
            assert student.tokenizer.decode(ids, clean_up_tokenization_spaces=False) == res.pruned[key].text
        assert D.kept_positions(res, "full", "0.50") == list(range(res.n_tokens))
    ex = D.training_examples(run.results, "random", "0.50", student.tokenizer, prompt="auto",
                             connector="\nThe answer is")
    full = D.training_examples(run.results, "full", "0.50", student.tokenizer, prompt="auto",
                               connector="\nThe answer is")
    # same questions and prompts; the targets differ only in the chain part, then end alike
    assert [e.prompt for e in ex] == [e.prompt for e in full]
    for e, f in zip(ex, full, strict=True):
        tail = len(f.target) - f.chain_tokens
        assert e.target[-tail:] == f.target[-tail:] and e.chain_tokens == round(0.5 * f.chain_tokens)


def test_fine_tuning_lowers_the_training_loss(pruned_dir, student):
    run = D.read_pruned(pruned_dir[0])
    ex = D.training_examples(run.results, "greedy", "0.50", student.tokenizer, prompt="auto",
                             connector="\nThe answer is")
    before = D.mean_loss(student.model, ex, student.tokenizer)
    settings = D.StudentSettings(rank=4, epochs=6, lr=1e-2, batch_size=4)
    model, losses = D.train_student(student, ex, settings, seed=0)
    after = D.mean_loss(model, ex, student.tokenizer)
    assert len(losses) == 6 * 2 and after < before
    assert D.mean_loss(student.model, ex, student.tokenizer) == before  # the base model is untouched


def test_killed_run_resumes_to_identical_students(pruned_dir, student, tmp_path):
    pruned, heldout = pruned_dir
    from selfprune.tokens.data import read_chains

    run, held = D.read_pruned(pruned), read_chains(heldout)
    kw = dict(keeps=[0.5], methods=["greedy", "random", "full"], seeds=[0, 1], heldout=held, settings=SMALL)
    whole = D.distill(run, tmp_path / "a", student, **kw)
    names = [s.name for s in whole.students]
    assert names == ["base", "greedy-keep0.50-seed0", "random-keep0.50-seed0", "full-seed0",
                     "greedy-keep0.50-seed1", "random-keep0.50-seed1", "full-seed1"]
    assert {s.train_chains for s in whole.students[1:]} == {8}
    assert all(len(s.generations) == 4 for s in whole.students)
    assert [g["id"] for g in whole.students[0].generations] == [r.id for r in held]

    class Killed(Exception):
        pass

    def kill_after_three(i, n, res, reused):
        if i == 2:
            raise Killed

    with pytest.raises(Killed):
        D.distill(run, tmp_path / "b", student, **kw, on_student=kill_after_three)
    reused = []
    again = D.distill(run, tmp_path / "b", student, **kw, on_student=lambda i, n, r, u: reused.append(u))
    assert reused == [True, True, True, False, False, False, False]
    def results(run):  # everything but the wall time
        return [{k: v for k, v in asdict(s).items() if k != "seconds"} for s in run.students]

    assert results(again) == results(whole)
    assert again.config == whole.config
    # other settings in the same folder are refused
    with pytest.raises(InvalidInputError, match="other settings"):
        D.distill(run, tmp_path / "b", student, **{**kw, "seeds": [0]})


def test_bad_input_is_refused_before_training(pruned_dir, student, tmp_path):
    pruned, _ = pruned_dir
    run = D.read_pruned(pruned)
    with pytest.raises(InvalidInputError, match="keep 0.30 was not pruned"):
        D.distill(run, tmp_path / "o", student, keeps=[0.3], settings=SMALL)
    overlap = [type("R", (), {"id": "x", "question": run.results[0].question, "chain": "c", "answer": "1"})()]
    with pytest.raises(InvalidInputError, match="held-out questions are among"):
        D.distill(run, tmp_path / "o", student, keeps=[0.5], heldout=overlap, settings=SMALL)
    with pytest.raises(InvalidInputError, match="no questions"):
        D.distill(run, tmp_path / "o", student, keeps=[0.5], heldout=[], settings=SMALL)
    with pytest.raises(InvalidInputError, match="unknown method"):
        D.check_methods("greedy,llmlingua")
    with pytest.raises(InvalidInputError, match="holdout"):
        D.split_heldout(run.results, 0.01)
    with pytest.raises(DataSourceError, match="no tokens.jsonl"):
        D.read_pruned(tmp_path)
    # a student whose tokenizer numbers the characters differently
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    from selfprune.tokens.model import CausalLM

    vocab = student.tokenizer.get_vocab()
    shifted = {tok: (i + 1) % len(vocab) for tok, i in vocab.items()}
    tk = Tokenizer(models.BPE(vocab=shifted, merges=[], unk_token="<unk>"))
    tk.decoder = decoders.Fuse()
    other = CausalLM(student.model, PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>",
                                                            eos_token="<unk>"), "other")
    with pytest.raises(InvalidInputError, match="another tokenizer"):
        D.distill(run, tmp_path / "o", other, keeps=[0.5], settings=SMALL)
    assert not (tmp_path / "o").exists()  # nothing written for refused input


def test_split_heldout_is_seeded_by_id_and_disjoint(pruned_dir):
    run = D.read_pruned(pruned_dir[0])
    train, held = D.split_heldout(run.results, 0.25)
    assert len(held) == 2 and len(train) == 6
    assert not {r.id for r in train} & {r.id for r in held}
    train2, held2 = D.split_heldout(run.results[::-1], 0.25)
    assert {r.id for r in held2} == {r.id for r in held}


def test_cli_writes_table_plot_and_report(pruned_dir, tiny_folder, tmp_path, capsys):
    pruned, _ = pruned_dir
    out = tmp_path / "d"
    args = ["tokens-distill", "--pruned", str(pruned), "--student", str(tiny_folder), "--keep", "0.5,0.8",
            "--methods", "greedy,uniform", "--seeds", "3", "--epochs", "1", "--rank", "2", "--batch-size", "4",
            "--max-new-tokens", "4", "--threads", "1", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| greedy | 0.5 |" in printed and "wrote 5 students" in printed
    for name in ("students.parquet", "generations.parquet", "summary.md", "summary.json", "accuracy.png",
                 "report.html", "run.json", "students/greedy-keep0.50-seed3.safetensors"):
        assert (out / name).is_file(), name
    import pyarrow.parquet as pq

    table = pq.read_table(out / "students.parquet").to_pylist()
    assert [r["method"] for r in table] == ["base", "greedy", "greedy", "uniform", "uniform"]
    assert json.loads((out / "run.json").read_text())["config"]["heldout"] == 0.25
    # bad input: one line, exit code 2
    assert main(["tokens-distill", "--pruned", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main([*args[:-2], "--keep", "0.3", "--out", str(tmp_path / "y")]) == 2
    assert "was not pruned" in capsys.readouterr().err
    before = sorted(p.name for p in pruned.iterdir())
    assert main([*args[:-2], "--out", str(pruned)]) == 2  # the pruned chains are an input
    assert "would overwrite the input" in capsys.readouterr().err
    assert sorted(p.name for p in pruned.iterdir()) == before


def test_comparisons_pair_students_by_seed():
    def student(method, keep, seed, acc, tokens):
        return D.StudentResult(name=f"{method}-{keep}-{seed}", method=method, keep=keep, seed=seed, train_chains=4,
                               train_chain_tokens=10.0, loss_first_epoch=1.0, loss_last_epoch=0.5, step_losses=[],
                               accuracy=acc, concluded=1.0, reasoning_tokens=tokens, generated_tokens=tokens,
                               seconds=0.0)

    rs = [student("greedy", 0.5, 0, 0.50, 20), student("random", 0.5, 0, 0.30, 30), student("full", 1.0, 0, 0.55, 40),
          student("greedy", 0.5, 1, 0.40, 20), student("random", 0.5, 1, 0.35, 30), student("full", 1.0, 1, 0.45, 40)]
    comp = {(w, m): d for w, m, d in D.comparisons(rs)}
    assert comp[("keep 0.5", "random")] == pytest.approx([0.20, 0.05])  # seed 0, then seed 1
    assert comp[("keep 0.5", "full")] == pytest.approx([-0.05, -0.05])
    md = D.summary_markdown(rs, {"student": "s", "settings": SMALL.to_dict(), "max_new_tokens": 6})
    assert "| random | keep 0.5 | +12.5 ± 10.6 | yes | 0.67 |" in md
    assert "| full | keep 0.5 | -5.0 ± 0.0 | no | 0.50 |" in md

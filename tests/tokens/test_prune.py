"""TokenPruner output, checkpointed runs that resume with identical results, and output files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.tokens.prune import TokenPruner, parse_keep, prune_chains
from selfprune.tokens.report import category_table, retention_table, write_outputs
from selfprune.tokens.results import ChainResult
from selfprune.tokens.tagger import CATEGORIES


def _strip_times(res):
    res = json.loads(json.dumps(res.to_dict()))
    res["search"].pop("seconds")
    return res


def test_prune_one_chain_output(tiny_lm, short_records):
    pruner = TokenPruner(tiny_lm, keep="0.4,0.7", curve_step=0.2)
    res = pruner.prune(short_records[0]).to_dict()
    n = res["n_tokens"]
    assert n == len(short_records[0]["chain"]) == res["n_units"]  # one char = one token here
    steps = [t["deleted_step"] for t in res["tokens"]]
    n_steps = n - round(0.4 * n)
    assert res["steps_run"] == n_steps
    assert sorted(s for s in steps if s) == list(range(1, n_steps + 1))
    assert steps.count(0) == round(0.4 * n)
    assert [t["position"] for t in res["tokens"]] == list(range(n))
    assert "".join(t["text"] for t in res["tokens"]) == short_records[0]["chain"]
    assert {t["category"] for t in res["tokens"]} <= set(CATEGORIES)
    for name in ("surprisal", "random", "uniform"):
        bs = [t[f"{name}_step"] for t in res["tokens"]]
        assert sorted(s for s in bs if s) == list(range(1, n_steps + 1))
    # pruned chain at each keep ratio = the tokens still present after that many deletions
    for key, ratio in (("0.40", 0.4), ("0.70", 0.7)):
        k = round(ratio * n)
        kept = [t["text"] for t in res["tokens"] if t["deleted_step"] == 0 or t["deleted_step"] > n - k]
        assert res["pruned"][key] == {"text": "".join(kept), "units": k, "tokens": k}
    assert set(res["retention"]) == {"empty", "greedy", "surprisal", "random", "uniform"}
    assert list(res["retention"]["greedy"]) == ["1.00", "0.80", "0.70", "0.60", "0.40"]
    assert res["retention"]["greedy"]["1.00"] == res["retention"]["random"]["1.00"]
    # the answer objective's trace is the greedy retention at the asked ratios
    for key, ratio in (("0.40", 0.4), ("0.70", 0.7)):
        t = n - round(ratio * n)
        assert res["objective"]["after_step"][t - 1] == pytest.approx(res["retention"]["greedy"][key], abs=1e-6)
    assert res["source"] == "hand"  # extra fields travel along


def test_methods_keeping_the_same_tokens_get_the_same_retention(tiny_lm, short_records):
    # every method at keep 1 (nothing deleted), and any two methods whose kept tokens coincide,
    # are one chain: one value, however the batch of evaluated chains was made up
    pruner = TokenPruner(tiny_lm, keep="0.4", curve_step=0.1)
    checked = 0
    for rec in short_records:
        res = pruner.prune(rec).to_dict()
        n = res["n_units"]
        field = {"greedy": "deleted_step", **{m: f"{m}_step" for m in ("surprisal", "random", "uniform")}}
        for key in res["retention"]["greedy"]:
            k = round(float(key) * n)
            kept = {m: frozenset(t["position"] for t in res["tokens"] if t[f] == 0 or t[f] > n - k)
                    for m, f in field.items()}
            for a in field:
                for b in field:
                    if kept[a] == kept[b]:
                        assert res["retention"][a][key] == res["retention"][b][key], (rec["id"], key, a, b)
                        checked += a != b
    assert checked >= 3 * 4 * len(short_records)  # at least keep 1 for every pair, every chain


def test_greedy_retains_at_least_baselines_at_first_step(tiny_lm, short_records):
    """Greedy's first deletion is the best single deletion, so at n-1 units it beats every method."""
    pruner = TokenPruner(tiny_lm, keep=0.5, curve_step=0)
    res = pruner.prune(short_records[1]).to_dict()
    n = res["n_units"]
    best = res["objective"]["after_step"][0]
    t = TokenPruner(tiny_lm, keep=(n - 1) / n, curve_step=0).prune(short_records[1]).to_dict()
    key = next(k for k in t["retention"]["greedy"] if k != "1.00")
    for m in ("surprisal", "random", "uniform"):
        assert t["retention"]["greedy"][key] >= t["retention"][m][key] - 1e-9
    assert best == pytest.approx(t["retention"]["greedy"][key], abs=1e-9)


def test_word_units_delete_whole_words(tiny_lm, short_records):
    res = TokenPruner(tiny_lm, keep=0.5, unit="word").prune(short_records[2]).to_dict()
    assert res["n_units"] == len(short_records[2]["chain"].split())
    by_unit = {}
    for t in res["tokens"]:
        by_unit.setdefault(t["unit"], set()).add(t["deleted_step"])
    assert all(len(s) == 1 for s in by_unit.values())  # a word's tokens go together


def test_run_resumes_with_identical_results(tiny_lm, short_records, tmp_path):
    pruner = TokenPruner(tiny_lm, keep="0.5", search="exact", curve_step=0.25)
    full = prune_chains(short_records, pruner, tmp_path / "a")

    class Killed(Exception):
        pass

    def kill_after_first(i, n, res, reused):
        if i == 0:
            raise Killed

    with pytest.raises(Killed):
        prune_chains(short_records, pruner, tmp_path / "b", on_chain=kill_after_first)
    assert sorted(p.name for p in (tmp_path / "b" / "chains").iterdir()) == ["000000.json"]
    calls = []
    real = pruner.prune
    pruner.prune = lambda rec: calls.append(rec.id) or real(rec)  # type: ignore[method-assign]
    seen = []
    resumed = prune_chains(short_records, pruner, tmp_path / "b",
                           on_chain=lambda i, n, r, reused: seen.append(reused))
    assert calls == ["b", "c"] and seen == [True, False, False]
    assert [_strip_times(r) for r in resumed] == [_strip_times(r) for r in full]
    # a second identical run recomputes nothing
    calls.clear()
    prune_chains(short_records, pruner, tmp_path / "b")
    assert calls == []


def test_run_refuses_other_settings_unless_restart(tiny_lm, short_records, tmp_path):
    prune_chains(short_records[:1], TokenPruner(tiny_lm, keep=0.5), tmp_path)
    with pytest.raises(InvalidInputError, match="differs in: keep"):
        prune_chains(short_records[:1], TokenPruner(tiny_lm, keep=0.6), tmp_path)
    res = prune_chains(short_records[1:2], TokenPruner(tiny_lm, keep=0.6), tmp_path, restart=True)
    assert res[0].id == "b"


def test_run_extends_and_redoes_only_changed_rows(tiny_lm, short_records, tmp_path):
    pruner = TokenPruner(tiny_lm, keep=0.5, baselines=False, curve_step=0)
    prune_chains(short_records[:2], pruner, tmp_path)  # like --limit 2
    seen = []
    prune_chains(short_records, pruner, tmp_path, on_chain=lambda i, n, r, reused: seen.append(reused))
    assert seen == [True, True, False]  # a longer limit extends the run
    edited = [short_records[0], {**short_records[1], "answer": "6"}, short_records[2]]
    seen.clear()
    res = prune_chains(edited, pruner, tmp_path, on_chain=lambda i, n, r, reused: seen.append(reused))
    assert seen == [True, False, True] and res[1].answer == "6"


def test_outputs_and_tables(tiny_lm, short_records, tmp_path):
    pruner = TokenPruner(tiny_lm, keep="0.3,0.6")
    results = prune_chains(short_records, pruner, tmp_path)
    paths = write_outputs(results, tmp_path, pruner.config())
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    rows = [json.loads(line) for line in (tmp_path / "pruned_keep0.30.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["source"] == "hand" and rows[0]["keep"] == 0.3 and rows[0]["method"] == "greedy"
    assert rows[0]["chain"] == results[0].pruned["0.30"].text
    assert rows[0]["messages"][1]["content"].endswith("\nThe answer is 5")
    assert set(rows[0]) >= {"question", "chain", "answer", "kept_tokens", "original_tokens"}
    table = retention_table(results)
    assert table.ratios[0] == 1.0 and table.ratios[-1] == 0.3
    assert set(table.methods) == {"greedy", "surprisal", "random", "uniform"}
    g = table.methods["greedy"]
    assert g.mean[0] == pytest.approx(table.full)
    cats = category_table(results)
    assert sum(r.tokens for r in cats) == sum(r.n_tokens for r in results)
    assert [r.mean_relative_step for r in cats] == sorted(r.mean_relative_step for r in cats)
    summary_json = json.loads((tmp_path / "summary.json").read_text())
    assert summary_json["retention"] == json.loads(json.dumps(table.to_dict()))
    assert summary_json["categories"] == [c.to_dict() for c in cats]
    summary = (tmp_path / "summary.md").read_text()
    assert "| greedy |" in summary and "mean deletion step" in summary
    lines = [json.loads(x) for x in (tmp_path / "tokens.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"]
    # each row reads back into the same typed result, and writes back the same row
    back = [ChainResult.from_dict(x) for x in lines]
    assert back == results and [b.to_dict() for b in back] == lines
    # the checkpoints hold exactly those rows
    saved = json.loads((tmp_path / "chains" / "000000.json").read_text())["result"]
    assert list(saved) == list(lines[0]) and saved == lines[0]


def test_parse_keep_and_settings_errors(tiny_lm):
    assert parse_keep("0.7, 0.3,0.5") == (0.3, 0.5, 0.7)
    assert parse_keep(0.5) == (0.5,)
    for bad in ("0", "1", "1.5", "a", "", "nan"):
        with pytest.raises(InvalidInputError, match="keep"):
            parse_keep(bad)
    with pytest.raises(InvalidInputError, match="objective"):
        TokenPruner(tiny_lm, objective="bleu")
    with pytest.raises(InvalidInputError, match="unit"):
        TokenPruner(tiny_lm, unit="line")
    with pytest.raises(InvalidInputError, match="curve_step"):
        TokenPruner(tiny_lm, curve_step=1.5)
    with pytest.raises(InvalidInputError, match="at least 2"):
        TokenPruner(tiny_lm).prune({"question": "q", "chain": "x", "answer": "1"})


def test_joint_objective_runs_and_differs(tiny_lm, short_records):
    a = TokenPruner(tiny_lm, keep=0.5, objective="answer", baselines=False).prune(short_records[0]).to_dict()
    j = TokenPruner(tiny_lm, keep=0.5, objective="joint", joint_weight=2.0,
                    baselines=False).prune(short_records[0]).to_dict()
    assert set(j["retention"]) == {"empty", "greedy"}
    sa = np.array([t["deleted_step"] for t in a["tokens"]])
    sj = np.array([t["deleted_step"] for t in j["tokens"]])
    assert not np.array_equal(sa, sj)


def test_refresh_is_a_setting_only_where_it_applies(tiny_lm, short_records):
    assert "refresh" not in TokenPruner(tiny_lm).config()
    assert "refresh" not in TokenPruner(tiny_lm, search="approx", prerank="gradient").config()
    pruner = TokenPruner(tiny_lm, keep=0.5, search="approx", per_step=1, rescore=2, refresh=3, curve_step=0)
    assert pruner.config()["refresh"] == 3
    res = pruner.prune(short_records[0]).to_dict()
    assert res["search"]["refresh"] == 3
    with pytest.raises(InvalidInputError, match="refresh"):
        TokenPruner(tiny_lm, refresh=-1)

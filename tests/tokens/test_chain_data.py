"""Chains JSONL: validation with line numbers; the seeded word-problem generator."""

from __future__ import annotations

import json
import re

import pytest

from selfprune.errors import DataSourceError, InvalidInputError
from selfprune.tokens.data import _approx_tokens, generate_chains, read_chains, write_chains

GOOD = {"question": "Q?", "chain": "1 + 1 = 2.", "answer": "2"}


def _write(tmp_path, lines):
    p = tmp_path / "chains.jsonl"
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def test_reads_rows_and_keeps_extra_fields(tmp_path):
    rows = [dict(GOOD, id="x", source="gsm", level=3), dict(GOOD, answer=7)]
    p = _write(tmp_path, [json.dumps(r) for r in rows[:1]] + ["", json.dumps(rows[1])])
    recs = read_chains(p)
    assert [r.id for r in recs] == ["x", "1"]
    assert recs[0].extra == {"source": "gsm", "level": 3}
    assert recs[1].answer == "7"  # a JSON number is accepted as the answer
    assert recs[0].to_row() == {"source": "gsm", "level": 3, "id": "x", **GOOD}


@pytest.mark.parametrize("bad,message", [
    ("{not json", "invalid JSON"),
    ('["a", "list"]', "must be a JSON object"),
    ('{"question": "Q", "chain": "c"}', "missing field"),
    ('{"question": "Q", "answer": "1"}', "missing field"),
    ('{"question": 5, "chain": "c", "answer": "1"}', "'question' must be a string"),
    ('{"question": "Q", "chain": ["c"], "answer": "1"}', "'chain' must be a string"),
    ('{"question": "Q", "chain": "c", "answer": null}', "'answer' must be a string or a number"),
    ('{"question": "Q", "chain": "c", "answer": true}', "'answer' must be a string or a number"),
    ('{"question": "Q", "chain": "   ", "answer": "1"}', "'chain' is empty"),
    ('{"question": "Q", "chain": "", "answer": "1"}', "'chain' is empty"),
    ('{"question": "Q", "chain": "c", "answer": "1", "id": [1]}', "'id' must be"),
])
def test_bad_rows_name_file_and_line(tmp_path, bad, message):
    p = _write(tmp_path, [json.dumps(GOOD), "", bad, json.dumps(GOOD)])
    with pytest.raises(DataSourceError) as err:
        read_chains(p)
    assert "chains.jsonl line 3" in str(err.value)
    assert message in str(err.value)


def test_duplicate_ids_and_empty_and_missing_files(tmp_path):
    p = _write(tmp_path, [json.dumps(dict(GOOD, id="a")), json.dumps(dict(GOOD, id="a"))])
    with pytest.raises(DataSourceError, match=r"line 2: duplicate id 'a' \(first on line 1\)"):
        read_chains(p)
    with pytest.raises(DataSourceError, match="no rows"):
        read_chains(_write(tmp_path, ["", "  "]))
    with pytest.raises(DataSourceError, match="not found"):
        read_chains(tmp_path / "missing.jsonl")
    bad_utf8 = tmp_path / "latin.jsonl"
    bad_utf8.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"question": "\xe9"}\n')
    with pytest.raises(DataSourceError, match="line 2: not UTF-8"):
        read_chains(bad_utf8)


def test_write_then_read_round_trip(tmp_path):
    rows = generate_chains(5, seed=1)
    p = write_chains(tmp_path / "out" / "g.jsonl", rows)
    recs = read_chains(p)
    assert [r.to_row() for r in recs] == [
        {"steps": r["steps"], "id": r["id"], "question": r["question"], "chain": r["chain"],
         "answer": r["answer"]} for r in rows]


def test_generator_is_seeded_and_varied():
    a = generate_chains(40, seed=3)
    assert a == generate_chains(40, seed=3)
    assert a != generate_chains(40, seed=4)
    assert {r["steps"] for r in a} == {2, 3, 4, 5}
    assert all(60 <= _approx_tokens(r["chain"]) <= 200 for r in a)
    assert len({r["chain"].split(".")[0] for r in a}) > 10  # varied openings
    symbols = "".join(r["chain"] for r in a)
    assert "×" in symbols or "*" in symbols
    assert len({r["question"].split()[0] for r in a}) > 5  # several names


def test_generator_arithmetic_is_right():
    """Every worked equation in every chain is correct and the last result is the answer."""
    ops = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "×": lambda x, y: x * y,
           "*": lambda x, y: x * y, "x": lambda x, y: x * y, "/": lambda x, y: x / y,
           "÷": lambda x, y: x / y}
    pattern = re.compile(r"\$?(\d+) ([-+×*x/÷]) \$?(\d+) = \$?(\d+)")
    for r in generate_chains(60, seed=11):
        found = pattern.findall(r["chain"])
        assert len(found) >= r["steps"]
        for x, op, y, z in found:
            assert ops[op](int(x), int(y)) == int(z), (r["chain"], x, op, y, z)
        assert found[-1][3] == r["answer"]
        assert int(r["answer"]) > 0


def test_generator_token_bounds_and_errors():
    short = generate_chains(10, seed=0, min_steps=2, max_steps=2, min_tokens=100, max_tokens=180,
                            count_tokens=len)
    assert all(100 <= len(r["chain"]) <= 180 for r in short)
    with pytest.raises(InvalidInputError, match="max_steps"):
        generate_chains(3, min_steps=4, max_steps=2)
    with pytest.raises(InvalidInputError, match="widen the token range"):
        generate_chains(2, min_tokens=1, max_tokens=2)
    with pytest.raises(InvalidInputError, match="n must"):
        generate_chains(0)

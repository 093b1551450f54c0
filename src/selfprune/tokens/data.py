"""Reasoning-chain records: read and validate JSONL, and generate arithmetic word problems.

A record is one row ``{"question": str, "chain": str, "answer": str, ...}``; any other fields are
kept untouched and travel to every output. ``answer`` may also be a JSON number (it is turned into
its shortest decimal text); everything else must be a non-empty string.

:func:`generate_chains` writes templated multi-step arithmetic word problems with worked chains
(seeded, varied wording, 2 to 5 steps) so the token pruner can be run and evaluated without any
downloaded data set.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfprune._checks import SeedLike, as_rng, check_int
from selfprune.errors import DataSourceError, InvalidInputError

REQUIRED_FIELDS = ("question", "chain", "answer")


@dataclass(frozen=True)
class ChainRecord:
    """One question with its reasoning chain and final answer; ``extra`` holds every other field."""

    id: str
    question: str
    chain: str
    answer: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """The row as read (extra fields first, then id/question/chain/answer)."""
        return {**self.extra, "id": self.id, "question": self.question, "chain": self.chain,
                "answer": self.answer}


def _answer_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def record_from_row(row: Any, *, where: str, index: int) -> ChainRecord:
    """Validate one parsed row; ``where`` (e.g. ``"chains.jsonl line 4"``) prefixes every error."""
    if not isinstance(row, dict):
        raise DataSourceError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    missing = [k for k in REQUIRED_FIELDS if k not in row]
    if missing:
        raise DataSourceError(
            f"{where}: missing field(s) {', '.join(missing)}; each row needs question, chain, answer"
        )
    values: dict[str, str] = {}
    for key in REQUIRED_FIELDS:
        raw = row[key]
        text = _answer_text(raw) if key == "answer" else (raw if isinstance(raw, str) else None)
        if text is None:
            allowed = "a string or a number" if key == "answer" else "a string"
            raise DataSourceError(f"{where}: field {key!r} must be {allowed}, got {type(raw).__name__}")
        if not text.strip():
            raise DataSourceError(f"{where}: field {key!r} is empty")
        values[key] = text
    raw_id = row.get("id", index)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise DataSourceError(f"{where}: field 'id' must be a string or an integer, got {raw_id!r}")
    extra = {k: v for k, v in row.items() if k not in (*REQUIRED_FIELDS, "id")}
    return ChainRecord(id=str(raw_id), question=values["question"], chain=values["chain"],
                       answer=values["answer"].strip(), extra=extra)


def iter_chains(path: str | os.PathLike) -> Iterator[ChainRecord]:
    """Yield validated records from a JSONL file; blank lines are skipped.

    Raises :class:`DataSourceError` naming the file and the 1-based line number of the first bad
    row (invalid JSON, not an object, a missing or mistyped field, an empty chain) or duplicate id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"chains file not found: {path}")
    seen: dict[str, int] = {}
    index = 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataSourceError(f"{path}: cannot be read ({exc})") from exc
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataSourceError(f"{path} line {lineno}: not UTF-8 text ({exc})") from exc
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            record = record_from_row(row, where=where, index=index)
            if record.id in seen:
                raise DataSourceError(
                    f"{where}: duplicate id {record.id!r} (first on line {seen[record.id]})"
                )
            seen[record.id] = lineno
            index += 1
            yield record
    if index == 0:
        raise DataSourceError(f"{path}: no rows (the file is empty)")


def read_chains(path: str | os.PathLike) -> list[ChainRecord]:
    """All validated records of a JSONL file (see :func:`iter_chains` for the rules)."""
    return list(iter_chains(path))


def as_records(rows: Iterable[Any]) -> list[ChainRecord]:
    """Records from in-memory rows (dicts or ChainRecords), validated like the file reader."""
    out: list[ChainRecord] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        rec = row if isinstance(row, ChainRecord) else record_from_row(row, where=f"row {i}", index=i)
        if rec.id in seen:
            raise InvalidInputError(f"as_records: duplicate id {rec.id!r} at row {i}")
        seen.add(rec.id)
        out.append(rec)
    if not out:
        raise InvalidInputError("as_records: no rows given")
    return out


def write_chains(path: str | os.PathLike, rows: Iterable[dict[str, Any] | ChainRecord]) -> Path:
    """Write rows as JSONL atomically; returns the path."""
    from selfprune.io.atomic import write_text_atomic

    lines = [json.dumps(r.to_row() if isinstance(r, ChainRecord) else r, ensure_ascii=False)
             for r in rows]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return Path(path)


# ---------------------------------------------------------------------------------------------
# The generator: templated multi-step arithmetic word problems with worked chains.

_PEOPLE = [
    ("Maria", "she", "her", "her"), ("Tom", "he", "him", "his"), ("Aisha", "she", "her", "her"),
    ("Kenji", "he", "him", "his"), ("Lucia", "she", "her", "her"), ("Omar", "he", "him", "his"),
    ("Priya", "she", "her", "her"), ("Daniel", "he", "him", "his"), ("Chloe", "she", "her", "her"),
    ("Mateo", "he", "him", "his"), ("Hannah", "she", "her", "her"), ("Ivan", "he", "him", "his"),
    ("Zoe", "she", "her", "her"), ("Samuel", "he", "him", "his"), ("Fatima", "she", "her", "her"),
    ("Leo", "he", "him", "his"), ("Grace", "she", "her", "her"), ("Noah", "he", "him", "his"),
]
_FRIENDS = ["Ben", "Clara", "Diego", "Elena", "Felix", "Gina", "Hugo", "Ines", "Jonas", "Kira",
            "Liam", "Mona", "Nils", "Olga", "Pablo", "Rosa"]
# (plural item, container singular, container plural, price range in dollars)
_ITEMS = [
    ("apples", "basket", "baskets", (1, 4)), ("cookies", "jar", "jars", (1, 3)),
    ("pencils", "box", "boxes", (1, 2)), ("marbles", "bag", "bags", (1, 2)),
    ("stickers", "sheet", "sheets", (1, 2)), ("eggs", "carton", "cartons", (1, 3)),
    ("books", "shelf", "shelves", (4, 12)), ("cupcakes", "tray", "trays", (2, 5)),
    ("oranges", "crate", "crates", (1, 3)), ("cards", "pack", "packs", (1, 3)),
    ("flowers", "vase", "vases", (2, 6)), ("candles", "box", "boxes", (2, 8)),
    ("muffins", "tray", "trays", (2, 4)), ("toy cars", "box", "boxes", (3, 9)),
    ("beads", "string", "strings", (1, 2)), ("seashells", "bucket", "buckets", (1, 3)),
]
_EDIBLE = {"apples", "cookies", "cupcakes", "oranges", "muffins"}
_OPENERS = [
    "", "Let's solve this step by step.", "Let me think about this carefully.",
    "We need to find {target}.", "To answer this, we track the number of {items}.",
    "Let's work through the problem one step at a time.",
]
_FIRST = ["First,", "To start,", "At the beginning,", "We start with this:"]
_MIDDLE = ["Next,", "Then", "After that,", "Now", "In the next step,"]
_LAST = ["Finally,", "Lastly,", "In the end,", "At last,"]
_MUL = ["×", "*", "x"]
_DIV = ["/", "÷"]


def _approx_tokens(text: str) -> int:
    """A tokenizer-free length estimate: each digit, word, symbol and space-before-digit counts 1."""
    return (len(re.findall(r"\d", text)) + len(re.findall(r"[A-Za-z]+(?:'[a-z]+)?", text))
            + len(re.findall(r"[^\w\s]", text)) + len(re.findall(r" (?=\d)", text)))


class _Problem:
    def __init__(self, rng) -> None:
        self.rng = rng
        name, subj, obj, poss = _PEOPLE[rng.integers(len(_PEOPLE))]
        self.name, self.subj, self.obj, self.poss = name, subj, obj, poss
        self.friend = _FRIENDS[rng.integers(len(_FRIENDS))]
        self.items, self.box, self.boxes, self.price = _ITEMS[rng.integers(len(_ITEMS))]
        self.mul = _MUL[rng.integers(len(_MUL))]
        self.div = _DIV[rng.integers(len(_DIV))]
        self.target = f"how many {self.items} {name} has at the end"
        self.question: list[str] = []
        self.chain: list[str] = []

    def pick(self, options: list[str]) -> str:
        return options[self.rng.integers(len(options))]

    def cap(self, s: str) -> str:
        return s[:1].upper() + s[1:]

    def restate(self, value: int) -> str:
        if self.rng.random() < 0.4:
            return " " + self.pick([
                f"So {self.subj} now has {value} {self.items}.",
                f"That means {self.name} has {value} {self.items} at this point.",
                f"Now there are {value} {self.items}.",
            ])
        return ""


def _step(p: _Problem, kind: str, a: int, conn: str, final: bool) -> tuple[int, str | None]:
    """Append the question sentence and the worked step for one operation; return the new total."""
    rng, s, it = p.rng, p.subj, p.items
    lead = f"{conn} " if conn else ""
    if kind == "buy":
        n = int(rng.integers(2, 30))
        b = a + n
        p.question.append(p.pick([
            f"{p.cap(s)} buys {n} more {it}.", f"Then {s} gets {n} more {it} from {p.friend}.",
            f"{p.friend} gives {p.obj} {n} {it}.", f"{p.cap(s)} finds {n} more {it}.",
        ]))
        p.chain.append(lead + p.pick([
            f"{s} gets {n} more, so {s} has {a} + {n} = {b} {it}.",
            f"we add the {n} new {it}: {a} + {n} = {b}.",
            f"{p.name} receives {n} {it}, which makes {a} + {n} = {b} {it} in total.",
        ]) + ("" if final else p.restate(b)))
        return b, None
    if kind == "packs":
        k, n = int(rng.integers(2, 7)), int(rng.integers(2, 13))
        m = k * n
        b = a + m
        p.question.append(p.pick([
            f"{p.cap(s)} buys {k} {p.boxes} of {it}, and each {p.box} holds {n} {it}.",
            f"Then {s} gets {k} {p.boxes} with {n} {it} in each {p.box}.",
        ]))
        p.chain.append(lead + p.pick([
            f"the {k} {p.boxes} hold {k} {p.mul} {n} = {m} {it}. Adding them gives {a} + {m} = {b} {it}.",
            f"{s} buys {k} {p.mul} {n} = {m} {it}, so the total becomes {a} + {m} = {b}.",
            f"each {p.box} has {n} {it}, so {k} {p.boxes} have {k} {p.mul} {n} = {m}. "
            f"Together that is {a} + {m} = {b} {it}.",
        ]) + ("" if final else p.restate(b)))
        return b, None
    if kind == "give":
        n = int(rng.integers(1, max(2, a // 2 + 1)))
        b = a - n
        p.question.append(p.pick([
            f"{p.cap(s)} gives {n} {it} to {p.friend}.", f"{p.cap(s)} sells {n} {it} at the market.",
            f"{p.cap(s)} loses {n} {it} on the way home.",
        ] + ([f"{p.cap(s)} eats {n} of them."] if it in _EDIBLE else [])))
        p.chain.append(lead + p.pick([
            f"{s} gives away {n}, which leaves {a} - {n} = {b} {it}.",
            f"we subtract the {n} {it} that are gone: {a} - {n} = {b}.",
            f"{p.name} has {n} fewer {it}, so {a} - {n} = {b} {it} remain.",
        ]) + ("" if final else p.restate(b)))
        return b, None
    if kind == "scale":
        f, word = ((2, "doubles"), (3, "triples"))[int(rng.integers(2))]
        b = a * f
        p.question.append(p.pick([
            f"Then the number of {it} {s} has {word}.", f"{p.cap(s)} {word} {p.poss} {it}.",
        ]))
        times = "twice" if f == 2 else "three times"
        p.chain.append(lead + p.pick([
            f"the {it} {word[:-1]}, so {a} {p.mul} {f} = {b}.",
            f"{s} has {times} as many {it}: {a} {p.mul} {f} = {b} {it}.",
        ]) + ("" if final else p.restate(b)))
        return b, None
    if kind == "half":
        b = a // 2
        p.question.append(p.pick([
            f"{p.cap(s)} gives half of {p.poss} {it} to {p.friend}.",
            f"Half of the {it} get lost.",
        ]))
        p.chain.append(lead + p.pick([
            f"half of the {it} are gone, so {a} {p.div} 2 = {b} {it} are left.",
            f"{s} keeps half, which is {a} {p.div} 2 = {b}.",
        ]) + ("" if final else p.restate(b)))
        return b, None
    if kind == "split":
        ks = [k for k in range(2, 10) if a % k == 0 and a // k >= 2]
        k = ks[int(rng.integers(len(ks)))]
        b = a // k
        p.question.append(p.pick([
            f"{p.cap(s)} puts the {it} equally into {k} {p.boxes}.",
            f"{p.cap(s)} shares the {it} equally among {k} {p.boxes}.",
        ]))
        p.chain.append(lead + p.pick([
            f"{s} splits them into {k} {p.boxes}: {a} {p.div} {k} = {b} {it} in each {p.box}.",
            f"we divide {a} {it} by {k} {p.boxes}, which gives {a} {p.div} {k} = {b} per {p.box}.",
        ]))
        p.target = f"how many {it} are in each {p.box}"
        return b, f"How many {it} are in each {p.box}?"
    if kind == "sell":
        price = int(rng.integers(p.price[0], p.price[1] + 1))
        b = a * price
        p.question.append(f"{p.cap(s)} sells all of the {it} for ${price} each.")
        p.chain.append(lead + p.pick([
            f"{s} sells {a} {it} at ${price} each, so {s} earns {a} {p.mul} {price} = ${b}.",
            f"the money from the sale is {a} {p.mul} ${price} = ${b}.",
        ]))
        p.target = f"how many dollars {s} earns"
        return b, f"How many dollars does {s} earn?"
    raise InvalidInputError(f"_step: unknown operation {kind!r}")


def _one_problem(rng, n_steps: int) -> tuple[str, str, str]:
    p = _Problem(rng)
    a = int(rng.integers(5, 40))
    p.question.append(f"{p.name} has {a} {p.items}.")
    final_q: str | None = None
    middle = ["buy", "packs", "give", "scale", "half"]
    for i in range(n_steps):
        last = i == n_steps - 1
        options = list(middle)
        if last:
            options += ["sell"] + (["split"] if any(a % k == 0 and a // k >= 2 for k in range(2, 10)) else [])
        if a % 2:
            options.remove("half")
        if a > 300:
            options = [o for o in options if o not in ("scale", "packs", "sell")] or ["give"]
        kind = options[int(rng.integers(len(options)))]
        conn = p.pick(_FIRST) if i == 0 else (p.pick(_LAST) if last else p.pick(_MIDDLE))
        a, final_q = _step(p, kind, a, conn, last)
    if final_q is None:
        final_q = p.pick([f"How many {p.items} does {p.subj} have now?",
                          f"How many {p.items} does {p.name} have at the end?"])
    p.question.append(final_q)
    opener = p.pick(_OPENERS).format(target=p.target, items=p.items)
    start = p.pick([f"{p.name} starts with {p.question[0].split(' has ')[1][:-1]}.", ""])
    parts = [x for x in (opener, start) if x]
    chain = " ".join(parts + [c[0].upper() + c[1:] for c in p.chain])
    if p.rng.random() < 0.3:
        chain += " " + p.pick([f"This means the result is {a}.", f"That gives {a} as the final count."])
    return " ".join(p.question), chain, str(a)


def generate_chains(n: int, *, seed: SeedLike = 0, min_steps: int = 2, max_steps: int = 5,
                    min_tokens: int = 60, max_tokens: int = 200,
                    count_tokens=None) -> list[dict[str, Any]]:
    """``n`` seeded arithmetic word problems with worked chains, as rows ready for JSONL.

    Each row has ``id``, ``question``, ``chain``, ``answer`` (the integer result as text) and
    ``steps``. Chains use 2 to 5 operations (add, buy packs, give away, double/triple, halve,
    split equally, sell at a price) with varied wording, symbols (``×``/``*``/``x``, ``/``/``÷``),
    optional openers and restatements, so they mix symbolic math, verbal math, names,
    function words, meta-discourse and pronouns. ``count_tokens`` (text -> int; default a
    tokenizer-free estimate) bounds the chain length to ``[min_tokens, max_tokens]``: draws
    outside are rejected, so the same seed always gives the same rows.
    """
    caller = "generate_chains"
    n = check_int(n, caller=caller, name="n", low=1)
    min_steps = check_int(min_steps, caller=caller, name="min_steps", low=1, high=8)
    max_steps = check_int(max_steps, caller=caller, name="max_steps", low=min_steps, high=8)
    min_tokens = check_int(min_tokens, caller=caller, name="min_tokens", low=1)
    max_tokens = check_int(max_tokens, caller=caller, name="max_tokens", low=min_tokens)
    count = count_tokens or _approx_tokens
    rng = as_rng(seed, caller=caller)
    rows: list[dict[str, Any]] = []
    tries = 0
    while len(rows) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise InvalidInputError(
                f"{caller}: could not make {n} chains of {min_tokens} to {max_tokens} tokens with "
                f"{min_steps} to {max_steps} steps; widen the token range"
            )
        steps = int(rng.integers(min_steps, max_steps + 1))
        question, chain, answer = _one_problem(rng, steps)
        if not min_tokens <= count(chain) <= max_tokens:
            continue
        rows.append({"id": f"gen-{len(rows):05d}", "question": question, "chain": chain,
                     "answer": answer, "steps": steps})
    return rows

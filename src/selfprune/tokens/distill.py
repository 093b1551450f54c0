"""Students fine-tuned on pruned chains, and evaluated on questions they never saw.

The claim that makes token pruning worth doing is about the student: a model fine-tuned on chains
pruned by greedy likelihood preservation should answer as well as one fine-tuned on full chains,
while writing shorter chains, and better than students fine-tuned on other compressions of the
same length. :func:`distill` measures it.

* **The chains.** A ``selfprune tokens`` output folder (``tokens.jsonl``, ``run.json``). For every
  method (``greedy``, ``surprisal``, ``random``, ``uniform``) and keep ratio, each chain keeps the
  tokens that method had not deleted when the chain was cut to that keep ratio, so every method
  keeps the same number of units of the same chains (with ``--unit token``, the same number of
  tokens). ``full`` is the unpruned chain. The token ids are the pruning model's, reused as they are
  (never re-tokenised), so the student must use the same tokenizer: this is checked.
* **The student.** The pruning model with LoRA adapters (``peft``) on the attention projections,
  trained on ``prompt | kept chain | connector answer <eos>`` with the loss on everything after the
  prompt; AdamW with the rate decayed to zero over the run (cosine), examples shuffled by the seed,
  adapters initialised from the seed. Every method sees the same questions in the same order.
* **The evaluation.** Greedy generation on held-out questions (a ``--heldout`` chains file, or a
  seeded share of the pruned chains kept out of training), batched. The answer is the first number
  after the first connector (``"The answer is"``) in the generated text, or the last number when
  the text has no connector; reasoning tokens are the tokens generated before the connector. The
  untrained model (``base``) is evaluated the same way.
* **Checkpoints.** Each finished student is one JSON file (and its adapter weights as
  safetensors) under ``out/students``; a killed run resumes with the students it had and ends with
  identical results, because training and generation are deterministic for a seed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import DataSourceError, InvalidInputError, require
from selfprune.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from selfprune.tokens.baselines import BASELINES
from selfprune.tokens.data import ChainRecord
from selfprune.tokens.model import CausalLM
from selfprune.tokens.objective import DEFAULT_CONNECTOR, build_layout
from selfprune.tokens.prune import keep_key, open_run
from selfprune.tokens.results import ChainResult

DISTILL_METHODS = ("greedy", *BASELINES, "full")
DISTILL_FORMAT = 1
BASE = "base"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


# ---------------------------------------------------------------------------------------------
# Settings and inputs


@dataclass(frozen=True)
class StudentSettings:
    """How every student is trained and evaluated.

    ``rank``/``alpha``: the LoRA adapters on ``targets``; ``epochs``, ``lr`` (AdamW, cosine decay to
    zero), ``batch_size`` (chains per step); ``eval_batch``: questions generated at once;
    ``max_new_tokens``: the generation budget (``None``: 1.25 x the longest training chain plus the
    answer, the same for every method).
    """

    rank: int = 8
    alpha: float = 16.0
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 8
    eval_batch: int = 16
    max_new_tokens: int | None = None
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self) -> None:
        for name in ("rank", "epochs", "batch_size", "eval_batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"StudentSettings: {name} must be an integer >= 1, got {v!r}")
        if self.max_new_tokens is not None and (isinstance(self.max_new_tokens, bool)
                                                or not isinstance(self.max_new_tokens, int)
                                                or self.max_new_tokens < 1):
            raise InvalidInputError(f"StudentSettings: max_new_tokens must be an integer >= 1, got "
                                    f"{self.max_new_tokens!r}")
        for name in ("alpha", "lr"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise InvalidInputError(f"StudentSettings: {name} must be a positive number, got {v!r}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise InvalidInputError(f"StudentSettings: targets must be module names, got {self.targets!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d


@dataclass(frozen=True)
class PrunedRun:
    """A ``selfprune tokens`` output folder: its settings and its pruned chains."""

    folder: Path
    config: dict[str, Any]
    results: list[ChainResult]
    sha256: str

    @property
    def keeps(self) -> list[str]:
        return list(self.results[0].pruned) if self.results else []


def read_pruned(folder: str | os.PathLike) -> PrunedRun:
    """Read the ``tokens.jsonl`` and ``run.json`` that ``selfprune tokens --out folder`` wrote."""
    folder = Path(folder)
    rows_path, run_path = folder / "tokens.jsonl", folder / "run.json"
    if not folder.is_dir():
        raise DataSourceError(f"{folder}: no such folder of pruned chains")
    if not rows_path.is_file() or not run_path.is_file():
        raise DataSourceError(f"{folder}: no tokens.jsonl and run.json; run selfprune tokens --out {folder} first")
    try:
        config = json.loads(run_path.read_text(encoding="utf-8"))["config"]
        raw = rows_path.read_bytes()
        results = [ChainResult.from_dict(json.loads(line)) for line in raw.decode("utf-8").splitlines()
                   if line.strip()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataSourceError(f"{folder}: not a readable selfprune tokens output "
                              f"({type(exc).__name__}: {exc})") from None
    if not results:
        raise DataSourceError(f"{rows_path}: holds no pruned chains")
    return PrunedRun(folder, config, results, hashlib.sha256(raw).hexdigest())


def check_methods(methods: Sequence[str] | str) -> tuple[str, ...]:
    """Distinct known methods in the order given (``"greedy,random"`` or a sequence)."""
    items = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    items = [m for m in items if m]
    if not items:
        raise InvalidInputError("tokens-distill: give at least one method")
    for m in items:
        if m not in DISTILL_METHODS:
            raise InvalidInputError(f"tokens-distill: unknown method {m!r}; choose from {', '.join(DISTILL_METHODS)}")
    return tuple(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------------
# What each method keeps


def kept_positions(result: ChainResult, method: str, keep: str) -> list[int]:
    """Chain-token positions that ``method`` keeps at keep ratio ``keep`` (a key of ``result.pruned``).

    All methods keep the same number of units: the greedy count at that ratio. ``full`` keeps all.
    """
    if method == "full":
        return [t.position for t in result.tokens]
    cut = result.n_units - result.pruned[keep].units
    deleted = set()
    for t in result.tokens:
        step = t.deleted_step if method == "greedy" else t.baseline_steps.get(method)
        if step is None:
            raise InvalidInputError(f"tokens-distill: chain {result.id!r} has no {method} deletion order "
                                    "(pruned with --no-baselines?)")
        if 1 <= step <= cut:
            deleted.add(t.unit)
    return [t.position for t in result.tokens if t.unit not in deleted]


@dataclass(frozen=True)
class Example:
    """One training or evaluation example: ``prompt`` ids, ``target`` ids (kept chain, connector,
    answer, end of turn; empty for evaluation), and the answer text."""

    id: str
    prompt: tuple[int, ...]
    target: tuple[int, ...]
    answer: str
    chain_tokens: int


def _end_token(tokenizer) -> list[int]:
    eos = getattr(tokenizer, "eos_token_id", None)
    return [] if eos is None else [int(eos)]


def training_examples(results: Sequence[ChainResult], method: str, keep: str, tokenizer, *,
                      prompt: str, connector: str) -> list[Example]:
    """The chains ``method`` keeps at ``keep``, framed as the pruning run framed them."""
    end = _end_token(tokenizer)
    out = []
    for res in results:
        layout = build_layout(tokenizer, res.question, res.chain, res.answer, prompt=prompt, connector=connector)
        stored = tuple(t.token_id for t in res.tokens)
        if layout.chain != stored:
            raise InvalidInputError(
                f"tokens-distill: chain {res.id!r} was tokenised by another tokenizer than the student's; "
                "use the model that pruned the chains as the student")
        kept = [layout.chain[t] for t in kept_positions(res, method, keep)]
        out.append(Example(res.id, layout.prefix, (*kept, *layout.tail, *end), res.answer, len(kept)))
    return out


def eval_examples(records: Sequence[ChainRecord | ChainResult], tokenizer, *, prompt: str,
                  connector: str) -> list[Example]:
    """Held-out questions as prompts (the chain is not shown; only the answer is compared)."""
    return [Example(r.id, build_layout(tokenizer, r.question, r.chain, r.answer, prompt=prompt,
                                       connector=connector).prefix, (), r.answer, 0)
            for r in records]


# ---------------------------------------------------------------------------------------------
# Answers


def _canonical(text: str) -> str:
    s = text.strip().replace(",", "").lstrip("$").rstrip(".")
    try:
        return str(Decimal(s).normalize())
    except InvalidOperation:
        return s.lower()


def parse_answer(text: str, connector: str = DEFAULT_CONNECTOR) -> tuple[str | None, str, bool]:
    """``(answer, reasoning, concluded)`` from a generated text.

    With the ``connector`` in the text (``concluded``), the answer is the first number after its
    first occurrence and the reasoning is the text before it. Without it, the answer is the last
    number of the text (the usual reading of a model that never states a conclusion, such as an
    untrained base model) and the reasoning is all of it. ``None`` when there is no such number.
    """
    marker = connector.strip()
    i = text.find(marker) if marker else -1
    if i < 0:
        numbers = _NUMBER.findall(text)
        return (numbers[-1] if numbers else None), text, False
    m = _NUMBER.search(text, i + len(marker))
    return (m.group(0) if m else None), text[:i], True


def answer_correct(predicted: str | None, expected: str) -> bool:
    """Whether a parsed answer equals the expected one (numbers compared as numbers: ``1,200`` ==
    ``1200`` == ``1200.0``, ``$40`` == ``40``)."""
    return predicted is not None and _canonical(predicted) == _canonical(expected)


# ---------------------------------------------------------------------------------------------
# Training and generation


def _batch(torch, examples: Sequence[Example], pad: int, *, left: bool):
    """Padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding)."""
    seqs = [list(e.prompt) + list(e.target) for e in examples]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for r, (e, s) in enumerate(zip(examples, seqs, strict=True)):
        lo = width - len(s) if left else 0
        ids[r, lo:lo + len(s)] = torch.tensor(s)
        mask[r, lo:lo + len(s)] = 1
        labels[r, lo + len(e.prompt):lo + len(s)] = torch.tensor(list(e.target), dtype=torch.long)
    return ids, mask, labels


def _pad_id(tokenizer) -> int:
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(tokenizer, "eos_token_id", None)
    return 0 if pad is None else int(pad)


def mean_loss(model, examples: Sequence[Example], tokenizer, *, batch_size: int = 8) -> float:
    """Mean per-token cross-entropy (nats) of ``examples``' targets under ``model`` (a student, or the
    untrained model), for checking what a student learnt on any chains."""
    torch = require("torch", "tokens")
    total, count = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(examples), batch_size):
            part = examples[lo:lo + batch_size]
            ids, mask, labels = _batch(torch, part, _pad_id(tokenizer), left=False)
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
            count += n
    return total / max(count, 1)


def train_student(lm: CausalLM, examples: Sequence[Example], settings: StudentSettings, seed: int):
    """LoRA-fine-tune a copy of ``lm.model`` on ``examples``; returns ``(model, step_losses)``."""
    torch = require("torch", "tokens")
    peft = require("peft", "tokens")
    if not examples:
        raise InvalidInputError("tokens-distill: no training chains")
    torch.manual_seed(seed)
    config = peft.LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0, bias="none",
                             target_modules=list(settings.targets))
    try:
        model = peft.get_peft_model(copy.deepcopy(lm.model), config)
    except ValueError as exc:
        raise InvalidInputError(f"tokens-distill: cannot put LoRA adapters on {lm.name}: {exc}") from None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    per_epoch = -(-len(examples) // settings.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=per_epoch * settings.epochs)
    rng = np.random.default_rng([seed, len(examples)])
    pad = _pad_id(lm.tokenizer)
    losses: list[float] = []
    model.train()
    for _ in range(settings.epochs):
        order = rng.permutation(len(examples))
        for lo in range(0, len(order), settings.batch_size):
            ids, mask, labels = _batch(torch, [examples[i] for i in order[lo:lo + settings.batch_size]], pad,
                                       left=False)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
    model.eval()
    return model, losses


def generate(model, tokenizer, prompts: Sequence[Example], *, max_new_tokens: int, batch: int) -> list[list[int]]:
    """Greedy continuations of each prompt (generated ids, cut before the first end token)."""
    torch = require("torch", "tokens")
    transformers = require("transformers", "tokens")
    end = _end_token(tokenizer)
    pad = _pad_id(tokenizer)
    cfg = transformers.GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                                        eos_token_id=end[0] if end else None)
    out: list[list[int]] = []
    with torch.no_grad():
        for lo in range(0, len(prompts), batch):
            ids, mask, _ = _batch(torch, prompts[lo:lo + batch], pad, left=True)
            gen = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
            for row in gen[:, ids.shape[1]:].tolist():
                if end and end[0] in row:
                    row = row[: row.index(end[0])]
                out.append([int(t) for t in row])
    return out


def evaluate(model, tokenizer, examples: Sequence[Example], *, connector: str, max_new_tokens: int,
             batch: int) -> list[dict[str, Any]]:
    """One row per held-out question: the generation, the parsed answer, correctness, token counts."""
    rows = []
    for e, ids in zip(examples, generate(model, tokenizer, examples, max_new_tokens=max_new_tokens, batch=batch),
                      strict=True):
        text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        parsed, reasoning, concluded = parse_answer(text, connector)
        n_reason = len(tokenizer(reasoning, add_special_tokens=False)["input_ids"]) if reasoning else 0
        rows.append({"id": e.id, "answer": e.answer, "generated": text, "parsed": parsed,
                     "concluded": concluded, "correct": answer_correct(parsed, e.answer),
                     "generated_tokens": len(ids),
                     "reasoning_tokens": n_reason})
    return rows


# ---------------------------------------------------------------------------------------------
# A whole run


@dataclass(frozen=True)
class StudentResult:
    """One student: what it was trained on, how training went, and how it did on held-out questions."""

    name: str
    method: str
    keep: float | None
    seed: int | None
    train_chains: int
    train_chain_tokens: float
    loss_first_epoch: float | None
    loss_last_epoch: float | None
    step_losses: list[float]
    accuracy: float
    concluded: float
    reasoning_tokens: float
    generated_tokens: float
    seconds: float
    generations: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The table row (no per-step losses or generations)."""
        return {k: v for k, v in asdict(self).items() if k not in ("step_losses", "generations")}


@dataclass(frozen=True)
class StudentSpec:
    name: str
    method: str
    keep: str | None
    seed: int | None


def plan_students(methods: Sequence[str], keeps: Sequence[str], seeds: Sequence[int]) -> list[StudentSpec]:
    """The base model once, then per seed: ``full`` once and every other method at every keep."""
    specs = [StudentSpec(BASE, BASE, None, None)]
    for seed in seeds:
        for m in methods:
            if m == "full":
                specs.append(StudentSpec(f"full-seed{seed}", m, None, seed))
            else:
                specs.extend(StudentSpec(f"{m}-keep{k}-seed{seed}", m, k, seed) for k in keeps)
    return specs


def split_heldout(results: Sequence[ChainResult], share: float) -> tuple[list[ChainResult], list[ChainResult]]:
    """A seeded split of the pruned chains (by id, independent of their order): ``(train, held out)``."""
    if not (isinstance(share, (int, float)) and 0.0 < share < 1.0):
        raise InvalidInputError(f"tokens-distill: holdout must be in (0, 1), got {share!r}")
    n_out = int(round(share * len(results)))
    if n_out < 1 or n_out >= len(results):
        raise InvalidInputError(f"tokens-distill: holdout {share} of {len(results)} chains leaves no held-out "
                                "or no training chains; give --heldout FILE or more chains")
    key = [hashlib.sha256(r.id.encode("utf-8")).hexdigest() for r in results]
    out = set(np.argsort(key, kind="stable")[:n_out].tolist())
    return ([r for i, r in enumerate(results) if i not in out], [r for i, r in enumerate(results) if i in out])


def _questions_digest(records: Sequence[ChainRecord | ChainResult]) -> str:
    rows = json.dumps([[r.id, r.question, r.answer] for r in records], ensure_ascii=False)
    return hashlib.sha256(rows.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DistillRun:
    """A finished distillation: the settings written to ``run.json`` and every student."""

    config: dict[str, Any]
    students: list[StudentResult]


def _save_adapter(model, path: Path) -> None:
    peft = require("peft", "tokens")
    st = require("safetensors.torch", "tokens")
    state = {k: v.detach().contiguous() for k, v in peft.get_peft_model_state_dict(model).items()}
    with atomic_path(path) as tmp:
        st.save_file(state, str(tmp))


def _load_checkpoint(path: Path) -> StudentResult | None:
    if not path.is_file():
        return None
    try:
        return StudentResult(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def distill(pruned: PrunedRun, out: str | os.PathLike, student: CausalLM, *, keeps: Sequence[float],
            methods: Sequence[str] = DISTILL_METHODS, seeds: Sequence[int] = (0, 1),
            heldout: Sequence[ChainRecord] | None = None, holdout: float = 0.25,
            settings: StudentSettings | None = None, restart: bool = False,
            on_student: Callable[[int, int, StudentResult, bool], None] | None = None) -> DistillRun:
    """Fine-tune and evaluate one student per method, keep ratio and seed (plus the base model).

    ``keeps`` must be keep ratios the pruning run wrote; ``heldout``: records to evaluate on (their
    questions must not be among the training chains), else a ``holdout`` share of the pruned chains
    is kept out of training. Checkpoints go to ``out/students``; a rerun with the same settings
    reuses them, other settings raise unless ``restart``. ``on_student(i, n, result, reused)``
    reports progress. Returns the run's settings and its students in plan order (see
    :func:`plan_students`).
    """
    settings = settings or StudentSettings()
    methods = check_methods(methods)
    keys = [keep_key(float(k)) for k in keeps]
    if not keys and any(m != "full" for m in methods):
        raise InvalidInputError("tokens-distill: give at least one keep ratio")
    missing = [k for k in keys if k not in pruned.keeps]
    if missing:
        raise InvalidInputError(f"tokens-distill: keep {', '.join(missing)} was not pruned in {pruned.folder} "
                                f"(it has {', '.join(pruned.keeps)})")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InvalidInputError(f"tokens-distill: seeds must be distinct integers >= 0, got {seeds}")
    prompt = pruned.config.get("prompt", "auto")
    connector = pruned.config.get("connector", DEFAULT_CONNECTOR)
    if heldout is None:
        train, held = split_heldout(pruned.results, holdout)
    else:
        train, held = list(pruned.results), list(heldout)
        if not held:
            raise InvalidInputError("tokens-distill: the held-out file has no questions")
        seen = {r.question for r in train}
        overlap = sum(r.question in seen for r in held)
        if overlap:
            raise InvalidInputError(f"tokens-distill: {overlap} held-out questions are among the training chains")
    tok = student.tokenizer
    # the framing and the tokenizer check run before anything is trained
    sets = {(m, k): training_examples(train, m, k, tok, prompt=prompt, connector=connector)
            for m in methods for k in ([None] if m == "full" else keys)}
    tests = eval_examples(held, tok, prompt=prompt, connector=connector)
    longest = max(r.n_tokens for r in train)
    tail = max(len(e.target) - e.chain_tokens for e in sets[next(iter(sets))])
    max_new = settings.max_new_tokens or int(math.ceil(1.25 * longest)) + tail
    out = Path(out)
    ckpt = out / "students"
    config = {"student": student.name, "pruned_sha256": pruned.sha256, "pruned_model": pruned.config.get("model"),
              "heldout_sha256": _questions_digest(held), "heldout": "file" if heldout is not None else holdout,
              "keeps": keys, "methods": list(methods), "seeds": seeds, "settings": settings.to_dict(),
              "max_new_tokens": max_new, "format": DISTILL_FORMAT}
    open_run(out, config, restart=restart, caller="tokens-distill", checkpoints=ckpt)
    plan = plan_students(methods, keys, seeds)
    results: list[StudentResult] = []
    for i, spec in enumerate(plan):
        path = ckpt / f"{spec.name}.json"
        res = _load_checkpoint(path)
        reused = res is not None
        if res is None:
            t0 = time.perf_counter()
            if spec.method == BASE:
                model, losses, examples = student.model, [], []
            else:
                examples = sets[(spec.method, None if spec.method == "full" else spec.keep)]
                assert spec.seed is not None
                model, losses = train_student(student, examples, settings, spec.seed)
                _save_adapter(model, ckpt / f"{spec.name}.safetensors")
            steps = -(-len(examples) // settings.batch_size)  # training steps per epoch
            gens = evaluate(model, tok, tests, connector=connector, max_new_tokens=max_new,
                            batch=settings.eval_batch)
            res = StudentResult(
                name=spec.name, method=spec.method,
                keep=1.0 if spec.method == "full" else (float(spec.keep) if spec.keep else None), seed=spec.seed,
                train_chains=len(examples),
                train_chain_tokens=_mean([e.chain_tokens for e in examples]) if examples else 0.0,
                loss_first_epoch=_mean(losses[:steps]) if losses else None,
                loss_last_epoch=_mean(losses[-steps:]) if losses else None, step_losses=losses,
                accuracy=_mean([g["correct"] for g in gens]),
                concluded=_mean([g["concluded"] for g in gens]),
                reasoning_tokens=_mean([g["reasoning_tokens"] for g in gens]),
                generated_tokens=_mean([g["generated_tokens"] for g in gens]),
                seconds=round(time.perf_counter() - t0, 3), generations=gens)
            write_json_atomic(path, asdict(res))
            res = _load_checkpoint(path) or res  # what a resumed run reads, so both end identical
        results.append(res)
        if on_student is not None:
            on_student(i, len(plan), res, reused)
    return DistillRun(config, results)


# ---------------------------------------------------------------------------------------------
# Summaries and outputs


@dataclass(frozen=True)
class MethodSummary:
    """One method at one keep ratio, over seeds: accuracy (mean, sd) and tokens."""

    method: str
    keep: float | None
    seeds: int
    accuracy: float
    accuracy_sd: float
    reasoning_tokens: float
    train_chain_tokens: float
    loss_last_epoch: float | None


def summarise(results: Sequence[StudentResult]) -> list[MethodSummary]:
    """Students grouped by (method, keep), in plan order."""
    groups: dict[tuple[str, float | None], list[StudentResult]] = {}
    for r in results:
        groups.setdefault((r.method, r.keep), []).append(r)
    out = []
    for (m, k), rs in groups.items():
        acc = [r.accuracy for r in rs]
        losses = [r.loss_last_epoch for r in rs if r.loss_last_epoch is not None]
        out.append(MethodSummary(m, k, len(rs), _mean(acc), float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
                                 _mean([r.reasoning_tokens for r in rs]), _mean([r.train_chain_tokens for r in rs]),
                                 _mean(losses) if losses else None))
    return out


def paired_differences(results: Sequence[StudentResult], method: str, other: str,
                       keep: float | None) -> list[float]:
    """Accuracy of ``method`` minus ``other`` seed by seed (same questions, order and initialisation)."""
    def by_seed(m: str) -> dict[int | None, float]:
        k = 1.0 if m == "full" else keep
        return {r.seed: r.accuracy for r in results if r.method == m and r.keep == k}

    a, b = by_seed(method), by_seed(other)
    return [a[s] - b[s] for s in sorted(set(a) & set(b), key=str)]


def _pm(values: Sequence[float], scale: float = 100.0) -> str:
    if not values:
        return "-"
    m = scale * float(np.mean(values))
    sd = scale * float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{m:+.1f} ± {sd:.1f}"


def _beyond(d: Sequence[float]) -> str:
    """``yes``/``no``: is the mean paired difference larger than its seed standard deviation (and
    above zero)? ``-`` with fewer than two seeds."""
    if len(d) < 2:
        return "-"
    return "yes" if float(np.mean(d)) > max(float(np.std(d, ddof=1)), 0.0) else "no"


def comparisons(results: Sequence[StudentResult]) -> list[tuple[str, str, list[float]]]:
    """Greedy against every other method at each keep (and the full-chain student), paired by seed."""
    keeps = sorted({r.keep for r in results if r.method == "greedy" and r.keep is not None}, reverse=True)
    others = [m for m in DISTILL_METHODS if m != "greedy" and any(r.method == m for r in results)]
    rows = []
    for k in keeps:
        for m in others:
            rows.append((f"keep {k:g}", m, paired_differences(results, "greedy", m, k)))
    return rows


def summary_markdown(results: Sequence[StudentResult], config: dict[str, Any]) -> str:
    """The results table and the paired comparisons, as Markdown."""
    rows = summarise(results)
    lines = ["| method | keep | seeds | accuracy (%) | reasoning tokens generated | chain tokens trained on | "
             "training loss, last epoch |", "|---|---:|---:|---:|---:|---:|---:|"]
    for s in rows:
        keep = "-" if s.keep is None else f"{s.keep:g}"
        loss = "-" if s.loss_last_epoch is None else f"{s.loss_last_epoch:.3f}"
        lines.append(f"| {s.method} | {keep} | {s.seeds} | {100 * s.accuracy:.1f} ± {100 * s.accuracy_sd:.1f} | "
                     f"{s.reasoning_tokens:.1f} | {s.train_chain_tokens:.1f} | {loss} |")
    tokens = {(s.method, s.keep): s.reasoning_tokens for s in rows}
    comp = ["| greedy vs | at | accuracy difference (points, paired by seed) | beyond the seed spread | "
            "reasoning tokens, greedy / other |", "|---|---|---:|---|---:|"]
    for where, m, d in comparisons(results):
        k = float(where.split()[-1])
        other = tokens.get((m, 1.0 if m == "full" else k))
        ratio = tokens[("greedy", k)] / other if other else float("nan")
        comp.append(f"| {m} | {where} | {_pm(d)} | {_beyond(d)} | {ratio:.2f} |")
    n_eval = len(results[0].generations) if results else 0
    return "\n".join([
        "# Students trained on pruned chains", "",
        f"Student `{config.get('student')}` with LoRA (rank {config['settings']['rank']}, "
        f"{config['settings']['epochs']} epochs, lr {config['settings']['lr']:g}), evaluated by greedy generation "
        f"on {n_eval} held-out questions (at most {config.get('max_new_tokens')} new tokens). "
        "`base` is the model before fine-tuning. A difference is beyond the seed spread when its mean "
        "over seeds is positive and larger than its standard deviation.", "",
        *lines, "", *comp, "",
    ])


def accuracy_figure(results: Sequence[StudentResult]):
    """Accuracy against reasoning tokens generated, one point per method and keep (bars: sd over seeds)."""
    from selfprune.report.figures import new_figure, wrap_title

    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    colours = {"greedy": "C0", "surprisal": "C1", "random": "C2", "uniform": "C3", "full": "k", BASE: "0.5"}
    marks = {BASE: "x", "full": "*"}
    seen = set()
    for s in summarise(results):
        label = s.method if s.method not in seen else None
        seen.add(s.method)
        ax.errorbar(s.reasoning_tokens, 100 * s.accuracy, yerr=100 * s.accuracy_sd, fmt=marks.get(s.method, "o"),
                    color=colours.get(s.method, "C4"), capsize=3, label=label, markersize=8)
        if s.keep is not None and s.method != "full":
            ax.annotate(f"{s.keep:g}", (s.reasoning_tokens, 100 * s.accuracy), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)
    ax.set_xlabel("reasoning tokens generated (mean per held-out question)")
    ax.set_ylabel("held-out answer accuracy (%)")
    ax.set_title(wrap_title("Students fine-tuned on pruned chains (labels: keep ratio)"), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def distill_page(results: Sequence[StudentResult], config: dict[str, Any], *, figure=None,
                 provenance: dict[str, str] | None = None):
    """The distillation report as a :class:`~selfprune.report.html.Page`."""
    from selfprune.report.html import Image, Page, Section, Table, Verdict

    comps = comparisons(results)
    mid = [c for c in comps if c[0] == comps[len(comps) // 2][0]] if comps else []
    if mid:
        where = mid[0][0]
        worst = min(mid, key=lambda c: float(np.mean(c[2])) if c[2] else math.inf)
        gap = 100 * float(np.mean(worst[2])) if worst[2] else float("nan")
        verdict = Verdict(f"greedy-pruned students vs the closest other method ({worst[1]}) at {where}",
                          "good" if gap > 0 else "bad", f"{gap:+.1f} points",
                          [f"greedy vs {m}: {_pm(d)} points" for _, m, d in mid])
    else:
        verdict = Verdict("students trained on pruned chains", "neutral")
    rows = [[s.method, "-" if s.keep is None else f"{s.keep:g}", s.seeds,
             f"{100 * s.accuracy:.1f} ± {100 * s.accuracy_sd:.1f}", f"{s.reasoning_tokens:.1f}",
             f"{s.train_chain_tokens:.1f}"] for s in summarise(results)]
    sections = [
        Section("Accuracy against generated reasoning", [
            Image(figure if figure is not None else accuracy_figure(results),
                  "Held-out answer accuracy against the reasoning tokens the student generates.", alt="accuracy"),
            Table(["method", "keep", "seeds", "accuracy (%)", "reasoning tokens", "chain tokens trained on"], rows),
        ]),
        Section("Greedy against the other methods", [
            Table(["greedy vs", "at", "accuracy difference (points, paired by seed)"],
                  [[m, where, _pm(d)] for where, m, d in comps]),
        ]),
    ]
    return Page(f"Students trained on pruned chains: {config.get('student')}", verdict, sections,
                dict(provenance or {}))


def write_distill_outputs(results: Sequence[StudentResult], out: str | os.PathLike, config: dict[str, Any], *,
                          provenance: dict[str, str] | None = None) -> dict[str, Path]:
    """Write students.parquet, generations.parquet, summary.{md,json}, accuracy.png and report.html."""
    import pyarrow as pa

    from selfprune.io.tables import write_parquet
    from selfprune.report.figures import save_png
    from selfprune.report.html import write_report

    out = Path(out)
    paths = {"students": write_parquet(out / "students.parquet", pa.Table.from_pylist([r.row() for r in results]),
                                       meta=config)}
    gens = [{"student": r.name, "method": r.method, "keep": r.keep, "seed": r.seed, **g}
            for r in results for g in r.generations]
    paths["generations"] = write_parquet(out / "generations.parquet", pa.Table.from_pylist(gens), meta=config)
    write_text_atomic(out / "summary.md", summary_markdown(results, config))
    write_json_atomic(out / "summary.json", {"config": config, "summary": [asdict(s) for s in summarise(results)],
                                             "comparisons": [{"at": w, "greedy_vs": m, "paired_differences": d}
                                                             for w, m, d in comparisons(results)]})
    fig = accuracy_figure(results)
    paths["plot"] = save_png(fig, out / "accuracy.png")
    paths["report"] = write_report(distill_page(results, config, figure=fig, provenance=provenance), out)
    paths.update(summary=out / "summary.md", summary_json=out / "summary.json")
    return paths

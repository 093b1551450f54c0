"""The objective J(S) and its scorers: plain (uncached), naive reference, and the fast exact path.

Layout of every scored sequence (token ids)::

    prefix (fixed: prompt + question) | chain (prunable, the kept tokens S) | tail (connector + answer)

* ``answer``: ``J(S) = log p(answer | prefix, S, connector)``, the summed log-probability of the
  answer tokens.
* ``joint``: ``J(S) = log p(answer | ...) + w * n_answer * mean_{t in S} log p(s_t | prefix, S_<t)``.
  The second term is the mean per-token log-likelihood of the kept chain itself, so the pruned
  chain stays text the model finds likely (a student learns it more easily). A *mean*, not a sum:
  a sum of negative terms rises whenever any token goes, which would reward deleting surprising
  tokens for their own sake; the mean only rewards deletions that leave the rest more fluent.
  It is scaled by the number of answer tokens so that, at ``w = 1``, one nat of mean per-token
  chain likelihood weighs as much as one nat of mean per-token answer likelihood; ``w = 0`` is
  exactly ``answer``.

Three ways to compute candidate scores, which agree to float rounding (tests check 1e-4):

* :func:`score_sequences`: batched, left-padded, uncached forward of whole sequences (used to
  evaluate kept sets and as the independent check of the cache).
* :meth:`ChainScorer.naive_candidates`: the textbook reference, one full forward per candidate.
* :meth:`ChainScorer.candidates`: the fast exact path. The prefix is encoded once per chain; each
  step runs the current sequence once and keeps its key/value cache; the candidate that deletes
  the unit at positions ``[a, b)`` then reuses the cached keys/values of positions ``< a`` (they
  do not depend on anything later) and recomputes only the tokens after the deletion, at their
  shifted positions, batched over candidates with a 2-D mask that hides cached positions ``>= a``.
  Logits are computed only where a scored token is predicted.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfprune.errors import InvalidInputError, require

OBJECTIVES = ("answer", "joint")
PROMPTS = ("auto", "chat", "plain")
UNITS = ("token", "word")
DEFAULT_CONNECTOR = "\nThe answer is"


# ----------------------------------------------------------------------------------------------
# Layout


@dataclass(frozen=True)
class Layout:
    """Token ids of one chain split into fixed prefix, prunable chain and fixed tail.

    ``spans[i]`` is the character span of chain token ``i`` in ``chain_text``; ``units`` are the
    prunable units as ``(start, end)`` chain-token ranges (one per token, or one per word).
    """

    prefix: tuple[int, ...]
    chain: tuple[int, ...]
    tail: tuple[int, ...]
    n_answer: int
    chain_text: str
    spans: tuple[tuple[int, int], ...]
    units: tuple[tuple[int, int], ...]

    def sequence(self, kept_tokens: Sequence[int]) -> list[int]:
        """The full id sequence with only the chain tokens at ``kept_tokens`` (sorted indices)."""
        return [*self.prefix, *(self.chain[i] for i in kept_tokens), *self.tail]

    def unit_tokens(self, kept_units: Sequence[int]) -> list[int]:
        """Chain-token indices covered by the units ``kept_units`` (sorted unit indices)."""
        return [t for u in kept_units for t in range(*self.units[u])]


def _token_spans(tokenizer, text: str, ids: list[int]) -> list[tuple[int, int]]:
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        raw = [tuple(map(int, s)) for s in enc["offset_mapping"]]
        if list(enc["input_ids"]) == list(ids) and len(raw) == len(ids):
            # byte-level tokens that split one character all report that character: give it to
            # the first of them, so the spans tile the text without overlap
            spans, prev = [], 0
            for s, e in raw:
                spans.append((max(s, prev), max(e, prev)))
                prev = max(e, prev)
            return spans
    except (NotImplementedError, TypeError, ValueError, KeyError):
        pass
    # slow tokenizers: spans from incremental decoding
    spans, prev = [], 0
    for k in range(len(ids)):
        end = len(tokenizer.decode(ids[: k + 1], clean_up_tokenization_spaces=False))
        spans.append((min(prev, end), end))
        prev = end
    return spans


def _word_units(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Group tokens into words: a word starts at a token whose text starts with whitespace."""
    units: list[tuple[int, int]] = []
    start = 0
    for k in range(1, len(spans)):
        s, e = spans[k]
        if s < e and text[s].isspace():
            units.append((start, k))
            start = k
    units.append((start, len(spans)))
    return units


def build_layout(tokenizer, question: str, chain: str, answer: str, *, prompt: str = "auto",
                 connector: str = DEFAULT_CONNECTOR, unit: str = "token") -> Layout:
    """Tokenise one record into a :class:`Layout`.

    ``prompt``: ``chat`` wraps the question in the tokenizer's chat template as the user turn (the
    chain is the assistant's reply), ``plain`` uses ``"Question: ...\\nSolution:\\n"``, ``auto``
    picks ``chat`` when the tokenizer has a template. The tail is ``connector`` followed by the
    answer (with a space between unless the connector ends in whitespace).
    """
    if prompt not in PROMPTS:
        raise InvalidInputError(f"build_layout: prompt must be one of {PROMPTS}, got {prompt!r}")
    if unit not in UNITS:
        raise InvalidInputError(f"build_layout: unit must be one of {UNITS}, got {unit!r}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt == "chat" and not has_template:
        raise InvalidInputError("build_layout: prompt='chat' but the tokenizer has no chat template")
    if prompt == "chat" or (prompt == "auto" and has_template):
        text = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                             add_generation_prompt=True, tokenize=False)
        prefix = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        prefix = tokenizer(f"Question: {question}\nSolution:\n", add_special_tokens=True)["input_ids"]
    chain_ids = list(tokenizer(chain, add_special_tokens=False)["input_ids"])
    if not chain_ids:
        raise InvalidInputError("build_layout: the chain has no tokens")
    if not prefix:
        raise InvalidInputError("build_layout: the prompt has no tokens")
    sep = "" if (not connector or connector[-1].isspace()) else " "
    conn_ids = list(tokenizer(connector, add_special_tokens=False)["input_ids"]) if connector else []
    ans_ids = list(tokenizer(sep + answer, add_special_tokens=False)["input_ids"])
    if not ans_ids:
        raise InvalidInputError("build_layout: the answer has no tokens")
    spans = _token_spans(tokenizer, chain, chain_ids)
    units = ([(i, i + 1) for i in range(len(chain_ids))] if unit == "token"
             else _word_units(chain, spans))
    return Layout(prefix=tuple(prefix), chain=tuple(chain_ids), tail=tuple(conn_ids + ans_ids),
                  n_answer=len(ans_ids), chain_text=chain, spans=tuple(spans), units=tuple(units))


# ----------------------------------------------------------------------------------------------
# Objective


@dataclass(frozen=True)
class Objective:
    """Which J to compute: ``answer`` or ``joint`` with weight ``weight`` (see module docstring)."""

    kind: str = "answer"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVES:
            raise InvalidInputError(f"Objective: kind must be one of {OBJECTIVES}, got {self.kind!r}")
        w = float(self.weight)
        if not np.isfinite(w) or w < 0:
            raise InvalidInputError(f"Objective: weight must be a finite number >= 0, got {self.weight!r}")

    @property
    def needs_chain(self) -> bool:
        return self.kind == "joint"

    def combine(self, answer_lp, chain_lp, n_kept, n_answer: int):
        """J from summed answer log-prob, summed kept-chain log-prob and kept-token count."""
        answer_lp = np.asarray(answer_lp, dtype=np.float64)
        if self.kind == "answer":
            return answer_lp
        n = np.asarray(n_kept, dtype=np.float64)
        mean = np.divide(np.asarray(chain_lp, dtype=np.float64), n, out=np.zeros_like(n), where=n > 0)
        return answer_lp + self.weight * n_answer * mean


# ----------------------------------------------------------------------------------------------
# Model plumbing (generic over Hugging Face causal LMs)


class _Runner:
    """Calls a HF causal LM with or without a key/value cache, hiding API differences."""

    def __init__(self, model) -> None:
        self.torch = require("torch", "tokens")
        self.model = model
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.has_keep = "logits_to_keep" in params
        first = next(model.parameters())
        self.device = first.device
        self.dtype = first.dtype
        _contiguous_head(model)

    def __call__(self, ids, mask=None, pos=None, kv=None, keep: int = 0, want_cache=False):
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                                  "use_cache": bool(want_cache or kv is not None)}
        if kv is not None:
            kwargs[self.cache_kw] = self.make_cache(kv, ids.shape[0])
        if self.has_keep:
            kwargs["logits_to_keep"] = keep
        out = self.model(**kwargs)
        logits = out.logits
        if keep and not self.has_keep:
            logits = logits[:, -keep:]
        if not want_cache:
            return logits, None
        cache = out["cache"] if "cache" in out.keys() else out.past_key_values
        return logits, self.cache_to_kv(cache)

    def make_cache(self, kv, batch: int):
        transformers = require("transformers", "tokens")
        data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
        return transformers.DynamicCache(ddp_cache_data=data, config=self.model.config)

    @staticmethod
    def cache_to_kv(cache) -> list[tuple[Any, Any]]:
        if hasattr(cache, "layers"):
            return [(layer.keys, layer.values) for layer in cache.layers]
        if hasattr(cache, "key_cache"):
            return list(zip(cache.key_cache, cache.value_cache, strict=True))
        return [(k, v) for k, v in cache]


def _contiguous_head(model) -> None:
    """Feed the output projection contiguous hidden states (once per model).

    With ``logits_to_keep`` the model slices the last positions of its hidden states, a strided
    view; a matrix product of a strided 3-D input with the 2-D head weight is run as a batched
    product over a materialised copy of the weight per row (B x V x D), which for a 49k vocabulary
    cost more than the rest of a bfloat16 forward. A contiguous input is one plain product, with
    the same values up to float rounding.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or getattr(head, "_selfprune_contiguous", False):
        return
    head.register_forward_pre_hook(lambda _module, args: (args[0].contiguous(), *args[1:]))
    head._selfprune_contiguous = True


def _wide(x):
    """Half-precision logits are widened to float32; float32/float64 stay as they are."""
    return x if x.dtype.itemsize >= 4 else x.float()


def _token_logprobs(torch, logits, targets):
    """log p(targets) under logits (..., V), at least in float32; targets (...,)."""
    logits = _wide(logits)
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def score_sequences(model, seqs: Sequence[Sequence[int]], *, n_prefix: int, n_tail: int,
                    n_answer: int, need_chain: bool = False,
                    batch_tokens: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Summed answer and chain log-probs of full sequences, uncached, left-padded in batches.

    Every sequence is ``prefix (n_prefix) + chain (any length) + tail (n_tail)`` with the answer
    as the last ``n_answer`` tokens. Returns float64 ``(answer_lp, chain_lp)`` of shape (len(seqs),);
    ``chain_lp`` is zeros unless ``need_chain``.
    """
    torch = require("torch", "tokens")
    run = _Runner(model)
    n = len(seqs)
    ans = np.zeros(n, dtype=np.float64)
    chn = np.zeros(n, dtype=np.float64)
    order = sorted(range(n), key=lambda i: len(seqs[i]))
    start = 0
    with torch.inference_mode():
        while start < n:
            stop = start + 1
            while stop < n and (stop - start + 1) * len(seqs[order[stop]]) <= batch_tokens:
                stop += 1
            rows = order[start:stop]
            width = len(seqs[rows[-1]])
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                s = seqs[i]
                ids[r, width - len(s):] = torch.tensor(s)
                mask[r, width - len(s):] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            max_chain = max(len(seqs[i]) for i in rows) - n_prefix - n_tail
            keep = (max_chain + n_tail + 1) if need_chain else (n_answer + 1)
            keep = min(keep, width)
            logits, _ = run(ids.to(run.device), mask.to(run.device), pos.to(run.device), keep=keep)
            # logits[:, j] predicts ids[:, width - keep + j + 1]
            lp = _token_logprobs(torch, logits[:, :-1], ids[:, width - keep + 1:].to(run.device))
            lp = lp.double().cpu().numpy()
            for r, i in enumerate(rows):
                ans[i] = lp[r, -n_answer:].sum()
                if need_chain:
                    k = len(seqs[i]) - n_prefix - n_tail
                    chn[i] = lp[r, lp.shape[1] - n_tail - k: lp.shape[1] - n_tail].sum()
            start = stop
    return ans, chn


# ----------------------------------------------------------------------------------------------
# Per-chain scorer with the cached fast path


@dataclass
class State:
    """The current sequence of one greedy step: its cache, its log-softmax rows and J."""

    kept: list[int]                 # kept unit indices (sorted)
    tokens: list[int]               # kept chain-token indices (sorted)
    unit_bounds: list[tuple[int, int]]  # per kept unit, its [start, end) in the kept token list
    kv: list[tuple[Any, Any]]       # cache of positions [0, N-1)
    rows: Any                       # (K + T, V) log-softmax rows predicting seq[P:] (tensor)
    token_lp: np.ndarray            # (K + T,) log p of seq[P:] (float64)
    answer_lp: float
    chain_lp: float
    value: float                    # J of this state


class ChainScorer:
    """Scores deletions for one chain layout with one model; holds the prefix cache.

    ``batch_tokens`` bounds the new tokens per batched forward; ``cache_mb`` bounds the memory
    of the key/value cache copied for a batch of candidates.
    """

    def __init__(self, model, layout: Layout, objective: Objective, *, batch_tokens: int = 1024,
                 cache_mb: int = 768) -> None:
        self.torch = require("torch", "tokens")
        self.model = model
        self.layout = layout
        self.objective = objective
        self.batch_tokens = int(batch_tokens)
        self.cache_mb = int(cache_mb)
        self.run = _Runner(model)
        self.P = len(layout.prefix)
        self.T = len(layout.tail)
        self.A = layout.n_answer
        self.forward_tokens = 0  # tokens pushed through the model (a cost counter)
        torch = self.torch
        with torch.inference_mode():
            ids = torch.tensor([layout.prefix], device=self.run.device)
            logits, kv = self.run(ids, keep=1, want_cache=True)
            self.forward_tokens += self.P
        self.prefix_kv = kv
        self._grad_prefix: tuple[Any, Any] | None = None
        self.prefix_row = torch.log_softmax(_wide(logits[0, -1]), dim=-1)
        self._kv_bytes_per_token = sum(
            k.shape[1] * k.shape[3] * k.element_size() + v.shape[1] * v.shape[3] * v.element_size()
            for k, v in kv)

    # -- helpers -------------------------------------------------------------------------------

    def _bounds(self, kept: Sequence[int]) -> tuple[list[int], list[tuple[int, int]]]:
        tokens, bounds = [], []
        for u in kept:
            s, e = self.layout.units[u]
            bounds.append((len(tokens), len(tokens) + e - s))
            tokens.extend(range(s, e))
        return tokens, bounds

    def evaluate(self, token_sets: Sequence[Sequence[int]]) -> np.ndarray:
        """J of several kept chain-token sets, uncached (independent of the fast path)."""
        seqs = [self.layout.sequence(t) for t in token_sets]
        ans, chn = score_sequences(self.model, seqs, n_prefix=self.P, n_tail=self.T, n_answer=self.A,
                                   need_chain=self.objective.needs_chain,
                                   batch_tokens=max(self.batch_tokens, max(map(len, seqs))))
        self.forward_tokens += sum(map(len, seqs))
        return self.objective.combine(ans, chn, [len(t) for t in token_sets], self.A)

    # -- the current sequence ------------------------------------------------------------------

    def current(self, kept: Sequence[int]) -> State:
        """Run the sequence with units ``kept`` once on top of the prefix cache."""
        torch = self.torch
        layout = self.layout
        tokens, bounds = self._bounds(kept)
        body = [layout.chain[t] for t in tokens] + list(layout.tail)
        K = len(tokens)
        with torch.inference_mode():
            ids = torch.tensor([body[:-1]], device=self.run.device)
            pos = torch.arange(self.P, self.P + len(body) - 1, device=self.run.device)[None]
            logits, kv = self.run(ids, pos=pos, kv=self.prefix_kv, want_cache=True)
            self.forward_tokens += len(body) - 1
            rows = torch.cat([self.prefix_row[None], torch.log_softmax(_wide(logits[0]), dim=-1)])
            target = torch.tensor(body, device=self.run.device)
            token_lp = rows.gather(-1, target[:, None])[:, 0].double().cpu().numpy()
        answer_lp = float(token_lp[-self.A:].sum())
        chain_lp = float(token_lp[:K].sum())
        value = float(self.objective.combine(answer_lp, chain_lp, K, self.A))
        return State(kept=list(kept), tokens=tokens, unit_bounds=bounds, kv=kv, rows=rows,
                     token_lp=token_lp, answer_lp=answer_lp, chain_lp=chain_lp, value=value)

    # -- exact candidates, fast path -----------------------------------------------------------

    def _batches(self, lengths: Sequence[int], past: int) -> list[list[int]]:
        """Group candidate indices (sorted by new length) into batches within the budgets."""
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        cap_rows = max(1, int(self.cache_mb * 2**20 // max(1, self._kv_bytes_per_token * past)))
        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            width = max([lengths[i]] + [lengths[j] for j in cur])
            if cur and ((len(cur) + 1) * width > self.batch_tokens or len(cur) + 1 > cap_rows):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches

    def candidates(self, state: State, cands: Sequence[int]) -> np.ndarray:
        """Exact J after deleting each kept unit ``state.kept[c]`` for ``c`` in ``cands``."""
        torch = self.torch
        P, T, A = self.P, self.T, self.A
        K = len(state.tokens)
        N = P + K + T
        body = [self.layout.chain[t] for t in state.tokens] + list(self.layout.tail)
        need_chain = self.objective.needs_chain
        ans = np.zeros(len(cands), dtype=np.float64)
        chn = np.zeros(len(cands), dtype=np.float64)
        nkept = np.zeros(len(cands), dtype=np.float64)
        prefix_chain = np.concatenate([[0.0], np.cumsum(state.token_lp[:K])])
        a_s, b_s, n_new = [], [], []
        for c in cands:
            u0, u1 = state.unit_bounds[c]
            a_s.append(P + u0)
            b_s.append(P + u1)
            n_new.append(N - 1 - (P + u1))
        dev = self.run.device
        with torch.inference_mode():
            for rows in self._batches(n_new, N - 1):
                width = max(n_new[r] for r in rows)
                B = len(rows)
                logits = None
                if width > 0:
                    # rows only attend to cached positions < a: pass no more of the cache than that
                    past = max(a_s[r] for r in rows)
                    kv = [(k[:, :, :past], v[:, :, :past]) for k, v in state.kv]
                    ids = torch.zeros((B, width), dtype=torch.long)
                    mask = torch.zeros((B, past + width), dtype=torch.long)
                    pos = torch.zeros((B, width), dtype=torch.long)
                    for j, r in enumerate(rows):
                        a, b, m = a_s[r], b_s[r], n_new[r]
                        mask[j, :a] = 1
                        if m:
                            ids[j, width - m:] = torch.tensor(body[b - P: b - P + m])
                            mask[j, past + width - m:] = 1
                            pos[j, width - m:] = torch.arange(a, a + m)
                            pos[j, : width - m] = a
                    keep = width if need_chain else min(A, width)
                    logits, _ = self.run(ids.to(dev), mask.to(dev), pos.to(dev), kv=kv, keep=keep)
                    self.forward_tokens += sum(n_new[r] for r in rows)
                keep_n = logits.shape[1] if logits is not None else 0
                for j, r in enumerate(rows):
                    a, b, m = a_s[r], b_s[r], n_new[r]
                    # In the candidate, body[b-P:] follows position a-1: its first token is
                    # predicted by the cached row of position a-1, the others by new positions.
                    targets = body[b - P:]
                    pred = np.full(m + 1, np.nan)
                    pred[0] = float(state.rows[a - P][targets[0]])
                    valid = min(keep_n, m)
                    if valid:
                        tgt = torch.tensor(targets[m - valid + 1:], device=dev)
                        pred[m - valid + 1:] = _token_logprobs(
                            torch, logits[j, keep_n - valid:], tgt).double().cpu().numpy()
                    ans[r] = pred[-A:].sum()
                    if need_chain:
                        u0, u1 = state.unit_bounds[cands[r]]
                        chn[r] = prefix_chain[u0] + pred[: K - u1].sum()
                    nkept[r] = K - (b - a)
        return self.objective.combine(ans, chn, nkept, A)

    # -- the textbook reference ----------------------------------------------------------------

    def naive_candidates(self, kept: Sequence[int], cands: Sequence[int]) -> np.ndarray:
        """Exact J after deleting each ``kept[c]``: one full, uncached forward per candidate."""
        torch = self.torch
        P, A = self.P, self.A
        out = np.zeros(len(cands), dtype=np.float64)
        with torch.inference_mode():
            for i, c in enumerate(cands):
                tokens, _ = self._bounds([u for j, u in enumerate(kept) if j != c])
                seq = torch.tensor([self.layout.sequence(tokens)], device=self.run.device)
                logits = self.model(input_ids=seq, use_cache=False).logits[0]
                self.forward_tokens += seq.shape[1]
                lp = torch.log_softmax(_wide(logits[:-1]), dim=-1).gather(
                    -1, seq[0, 1:, None])[:, 0].double().cpu().numpy()
                K = len(tokens)
                chain_lp = lp[P - 1: P - 1 + K].sum()
                out[i] = self.objective.combine(lp[-A:].sum(), chain_lp, K, A)
        return out

    # -- the first-order estimate used to pre-rank candidates (approximate search) --------------

    def gradient_estimate(self, state: State) -> np.ndarray:
        """First-order estimate of J after deleting each kept unit (array over ``state.kept``).

        Deleting a token is, up to the one-position shift of later tokens, hiding its key/value
        from every query in every layer. Give each chain key an additive attention-logit bias
        ``b`` (shared by all layers and heads; ``b = log g`` for a gate ``g`` on its attention
        weight); deletion is ``g: 1 -> 0``, so to first order ``J_after ~ J - dJ/db`` summed over
        the unit's tokens. One forward and one backward of the chain on top of the prefix cache,
        whatever the number of candidates. For ``joint`` the deleted unit's own log-probability
        leaves the chain mean exactly, not to first order.
        """
        torch = self.torch
        P, A = self.P, self.A
        K = len(state.tokens)
        body = [self.layout.chain[t] for t in state.tokens] + list(self.layout.tail)
        n = len(body) - 1
        dev = self.run.device
        dtype = self.run.dtype
        ids = torch.tensor([body[:-1]], device=dev)
        pos = torch.arange(P, P + n, device=dev)[None]
        neg = torch.finfo(dtype).min
        causal = torch.full((n, n), neg, dtype=dtype, device=dev).triu(1)
        bias = torch.zeros(K, dtype=dtype, device=dev, requires_grad=True)  # chain keys only
        if self._grad_prefix is None:  # autograd cannot keep inference-mode tensors: copy once
            self._grad_prefix = ([(k.clone(), v.clone()) for k, v in self.prefix_kv],
                                 self.prefix_row.clone())
        prefix_kv, prefix_row = self._grad_prefix
        with torch.enable_grad():
            cols = torch.cat([bias, torch.zeros(n - K, dtype=dtype, device=dev)])
            mask = torch.cat([torch.zeros((n, P), dtype=dtype, device=dev), causal + cols[None]], dim=1)
            logits, _ = self.run(ids, mask[None, None], pos, kv=prefix_kv)
            rows = torch.cat([prefix_row[None].to(logits.dtype), torch.log_softmax(_wide(logits[0]), -1)])
            lp = rows.gather(-1, torch.tensor(body, device=dev)[:, None])[:, 0]
            answer = lp[-A:].sum()
            value = answer
            if self.objective.needs_chain and K:
                value = answer + self.objective.weight * A * lp[:K].sum() / K
            (grad,) = torch.autograd.grad(value, bias)
        self.forward_tokens += 3 * n  # a backward costs about two forwards
        g = grad[:K].double().cpu().numpy()
        gsum = np.concatenate([[0.0], np.cumsum(g)])
        lsum = np.concatenate([[0.0], np.cumsum(state.token_lp[:K])])
        out = np.empty(len(state.kept), dtype=np.float64)
        for c, (u0, u1) in enumerate(state.unit_bounds):
            est = state.value - (gsum[u1] - gsum[u0])
            if self.objective.needs_chain:
                own = lsum[u1] - lsum[u0]
                before = self.objective.combine(0.0, state.chain_lp, K, A)
                after = self.objective.combine(0.0, state.chain_lp - own, K - (u1 - u0), A)
                est += float(after - before)
            out[c] = est
        return out

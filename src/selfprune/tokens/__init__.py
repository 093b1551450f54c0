"""Token-level pruning of reasoning chains by the model's own likelihood.

Greedy likelihood-preserving deletion: starting from the full chain, repeatedly delete the token
(or word) whose deletion lowers ``J(S) = log p(answer | question, kept chain S)`` the least, and
record the order. Baselines (surprisal, random, uniform), a deterministic category tagger and a
generator of arithmetic word problems come with it.

::

    data.py       read/validate chains JSONL; generate_chains (seeded word problems)
    model.py      load_causal_lm: the packaged SmolLM2-135M (cached) or any local HF causal LM
    objective.py  layout of a chain, J (answer / joint), uncached, naive and cached scorers
    greedy.py     greedy_prune: exact (fast), naive (reference), approx
    baselines.py  surprisal, random, uniform deletion orders
    tagger.py     tag_tokens: symbolic_math, verbal_math, entity_name, function, meta_discourse,
                  coreference
    prune.py      TokenPruner (one chain) and prune_chains (a run with per-chain checkpoints)
    report.py     retention and category tables, curves, output files
    distill.py    students fine-tuned (LoRA) on the chains each method kept, evaluated on held-out
                  questions by greedy generation

Importing this package loads neither torch nor transformers; the modules that need them import
them when called.
"""

from __future__ import annotations

from selfprune.tokens.data import ChainRecord, generate_chains, iter_chains, read_chains, write_chains
from selfprune.tokens.tagger import CATEGORIES, tag_tokens

__all__ = [
    "CATEGORIES",
    "ChainRecord",
    "generate_chains",
    "iter_chains",
    "read_chains",
    "write_chains",
    "tag_tokens",
]

"""Token pruning on generated chains: answer likelihood retained, and which tokens go first.

``--chains`` word problems from ``selfprune tokens-generate`` (seeded) are pruned with the default
model (SmolLM2-135M) and objective (``answer``) by ``--search`` (default ``approx``, the setting
for many chains), down to keep 0.3, beside the surprisal, random and uniform baselines at the same
keep ratios. This is ``selfprune tokens`` on those chains; the run folder (``--out``) is
checkpointed per chain, so a stopped run resumes.

Prints the retention and category tables, writes ``bench/results/tokens_retention.json`` (the
tables, the chain lengths and the search seconds per chain) and the retention plot
``docs/tokens_curves.png``. About 10 minutes for 12 chains on 2 cores with ``--search approx``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from selfprune.io.atomic import atomic_path, write_json_atomic
from selfprune.tokens.data import generate_chains
from selfprune.tokens.model import load_causal_lm
from selfprune.tokens.prune import TokenPruner, prune_chains
from selfprune.tokens.report import (
    category_markdown,
    category_table,
    retention_markdown,
    retention_table,
    write_outputs,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated chains")
    ap.add_argument("--search", default="approx", choices=("approx", "exact"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-tokens-retention"))
    ap.add_argument("--json", type=Path, default=Path("bench/results/tokens_retention.json"))
    ap.add_argument("--plot", type=Path, default=Path("docs/tokens_curves.png"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    lm = load_causal_lm("smollm2-135m", threads=args.threads)
    rows = generate_chains(args.chains, seed=args.seed)
    pruner = TokenPruner(lm, objective="answer", keep=(0.3, 0.5, 0.7), search=args.search)

    def report(i, n, res, reused):
        what = "reused" if reused else f"{res.search.seconds:.1f} s"
        print(f"chain {i + 1}/{n}: {res.n_tokens} tokens, {what}", flush=True)

    results = prune_chains(rows, pruner, args.out, on_chain=report)
    paths = write_outputs(results, args.out, pruner.config())
    table, cats = retention_table(results), category_table(results)
    secs = [r.search.seconds for r in results]
    tokens = [r.n_tokens for r in results]
    print(retention_markdown(table))
    print(category_markdown(cats))
    print(f"{len(results)} chains of {min(tokens)} to {max(tokens)} tokens (mean {np.mean(tokens):.1f}); "
          f"search {np.mean(secs):.1f} s per chain on average (max {max(secs):.1f})")  # fmt: skip
    write_json_atomic(args.json, {
        "setting": {**vars(args), "out": str(args.out), "json": str(args.json), "plot": str(args.plot)},
        "config": pruner.config(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": args.threads},
        "chains": len(results), "tokens": tokens, "search_seconds": secs,
        "retention": table.to_dict(), "categories": [c.to_dict() for c in cats],
        "seconds": round(time.perf_counter() - t0, 1),
    })  # fmt: skip
    with atomic_path(args.plot) as tmp:
        shutil.copyfile(paths["curves_png"], tmp)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()

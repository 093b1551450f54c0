"""Students trained on self-pruned chains: greedy against surprisal, random, uniform and full chains.

Three steps, each resumable (a rerun reuses every finished chain and student):

1. generated word problems (``--steps``: 2 to 3 operations by default, 50 to 110 estimated tokens;
   one-operation problems from 20 tokens): ``--train`` chains to prune and train on,
   ``--heldout`` other problems to evaluate on;
2. ``selfprune tokens`` on the training chains with SmolLM2-135M, approximate greedy search
   (``--prerank``: ``gradient``, the default, with 2 deletions per round and 8 re-scored, as in
   the first measured run; ``stale``: ``selfprune tokens --search approx``'s defaults, which also
   re-score the 2 oldest scores each round), keep 0.3 and 0.5, with the surprisal, random and
   uniform baselines; ``--objective joint`` keeps the chain likely as text as well as the answer;
3. ``selfprune tokens-distill``: one LoRA student per method, keep ratio and seed, plus the
   untrained base model, evaluated by greedy generation on the held-out questions.

Prints the results table and the paired comparisons, and writes ``bench/results/distill.json``.

    python bench/distill.py    # 40 chains, 40 held-out, seeds 0,1: about 45 min to prune, 41 to distill on 2 cores
    python bench/distill.py --train 8 --heldout 8 --seeds 0 --epochs 1   # a quick look
    python bench/distill.py --steps 1,1 --prerank stale --train 64 --heldout 60 \
        --out runs/distill-1step --json bench/results/distill_1step.json    # one-operation problems
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from selfprune.io.atomic import write_json_atomic
from selfprune.tokens.data import generate_chains, read_chains, write_chains
from selfprune.tokens.distill import (
    StudentSettings,
    comparisons,
    distill,
    read_pruned,
    summary_markdown,
    write_distill_outputs,
)
from selfprune.tokens.model import load_causal_lm
from selfprune.tokens.prune import TokenPruner, prune_chains
from selfprune.tokens.report import write_outputs


def problems(steps: str) -> dict[str, int]:
    """Generator settings for ``--steps lo,hi``: 50 to 110 estimated tokens, from 20 for one operation."""
    lo, hi = (int(v) for v in steps.split(","))
    return dict(min_steps=lo, max_steps=hi, min_tokens=50 if lo > 1 else 20, max_tokens=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/distill"), help="working folder (resumed)")
    ap.add_argument("--train", type=int, default=40, help="chains to prune and train on")
    ap.add_argument("--heldout", type=int, default=40, help="held-out questions")
    ap.add_argument("--steps", default="2,3", help="operations per problem: lo,hi")
    ap.add_argument("--prerank", default="gradient", choices=("gradient", "stale"))
    ap.add_argument("--objective", default="answer", choices=("answer", "joint"))
    ap.add_argument("--keeps", default="0.3,0.5")
    ap.add_argument("--methods", default="greedy,surprisal,random,uniform,full")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("bench/results/distill.json"))
    args = ap.parse_args(argv)
    keeps = [float(k) for k in args.keeps.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    t_start = time.perf_counter()

    args.out.mkdir(parents=True, exist_ok=True)
    train_path, held_path = args.out / "train.jsonl", args.out / f"heldout{args.heldout}.jsonl"
    spec = problems(args.steps)
    write_chains(train_path, generate_chains(args.train, seed=0, **spec))
    write_chains(held_path, generate_chains(args.heldout, seed=1, **spec))

    lm = load_causal_lm("smollm2-135m", threads=args.threads)
    approx = {"prerank": "gradient", "per_step": 2, "rescore": 8} if args.prerank == "gradient" else {}
    pruner = TokenPruner(lm, objective=args.objective, keep=keeps, search="approx", curve_step=0, seed=0, **approx)
    t0 = time.perf_counter()

    def pruned(i, n, r, reused):
        print(f"[prune {i + 1}/{n}] {r.id} {'reused' if reused else f'{r.search.seconds:.0f} s'}", flush=True)

    results = prune_chains(read_chains(train_path), pruner, args.out / "tok", on_chain=pruned)
    write_outputs(results, args.out / "tok", pruner.config())
    prune_seconds = time.perf_counter() - t0

    settings = StudentSettings(epochs=args.epochs, lr=args.lr, eval_batch=args.eval_batch)
    t0 = time.perf_counter()
    students = args.out / f"distill-train{args.train}"
    done = distill(read_pruned(args.out / "tok"), students, lm, keeps=keeps,
                   methods=args.methods.split(","), seeds=seeds, heldout=read_chains(held_path), settings=settings,
                   on_student=lambda i, n, r, reused: print(
                       f"[student {i + 1}/{n}] {r.name}: accuracy {100 * r.accuracy:.1f}%, {r.reasoning_tokens:.1f} "
                       f"reasoning tokens, training loss {r.loss_first_epoch} -> {r.loss_last_epoch} "
                       f"({'reused' if reused else f'{r.seconds:.0f} s'})", flush=True))
    write_distill_outputs(done.students, students, done.config)
    distill_seconds = time.perf_counter() - t0

    table = summary_markdown(done.students, done.config)
    print(table)
    write_json_atomic(args.json, {
        "settings": {**vars(args), "out": str(args.out), "json": str(args.json), "problems": spec,
                     "pruning": pruner.config(), "distill": done.config},
        "students": [s.row() for s in done.students],
        "comparisons": [{"at": w, "greedy_vs": m, "paired_differences": d} for w, m, d in comparisons(done.students)],
        "pruning_seconds_per_chain": sum(r.search.seconds for r in results) / len(results),
        "wall_seconds": {"prune": prune_seconds, "distill": distill_seconds, "total": time.perf_counter() - t_start},
        "summary_markdown": table,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "loss_curves": {s.name: s.step_losses for s in done.students if s.step_losses},
        "example_generations": {s.name: s.generations[:3] for s in done.students},
    })
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

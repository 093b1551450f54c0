"""Token pruning benchmark: seconds per chain for naive exact, fast exact and approximate greedy.

Generated word-problem chains of about ``--tokens`` model tokens are pruned to ``--keep`` with the
default model (SmolLM2-135M), every mode on the same chains in one run, so the ratios compare like
with like. Each ``--approx`` setting (``prerank:per_step:rescore``) is measured against exact:
Spearman correlation of the deletion ranks (never-deleted units tied last) and overlap of the
kept sets. Prints a table and writes ``bench/results/tokens.json`` (rewritten after every chain,
so a long run that is stopped keeps what it measured).

The spec setting is ``--chains 20 --tokens 128 --keep 0.5``. Naive greedy costs about L^3/3
token-forwards per chain, so on 2 CPU cores use ``--naive-chains N`` (naive on the first N chains
only) or fewer/shorter chains, e.g.

    python bench/tokens.py --chains 3 --tokens 64 --naive-chains 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from selfprune._checks import resolve_keep
from selfprune.io.atomic import write_json_atomic
from selfprune.tokens.data import generate_chains
from selfprune.tokens.greedy import greedy_prune
from selfprune.tokens.model import load_causal_lm
from selfprune.tokens.objective import ChainScorer, Objective, build_layout


def pick_chains(tokenizer, n: int, target: int, seed: int) -> list[dict]:
    """The ``n`` generated chains whose token count is closest to ``target``."""
    pool = generate_chains(max(200, 20 * n), seed=seed, min_tokens=max(20, target // 2), max_tokens=2 * target)
    lengths = [len(tokenizer(r["chain"], add_special_tokens=False)["input_ids"]) for r in pool]
    order = sorted(range(len(pool)), key=lambda i: (abs(lengths[i] - target), i))[:n]
    return [pool[i] for i in sorted(order)]


def ranks(order: list[int], n: int) -> np.ndarray:
    """Deletion rank per unit; units never deleted share the last rank."""
    r = np.full(n, len(order) + 1.0)
    r[order] = np.arange(1, len(order) + 1)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chains", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=128, help="target chain length in model tokens")
    ap.add_argument("--keep", type=float, default=0.5)
    ap.add_argument("--naive-chains", type=int, default=None, help="run naive on the first N chains only")
    ap.add_argument("--approx", default="stale:1:16,stale:1:8,stale:2:8,stale:4:12,gradient:2:8",
                    help="approximate settings to measure, prerank:per_step:rescore, comma-separated")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tokens.json")
    args = ap.parse_args(argv)

    lm = load_causal_lm(args.model, threads=args.threads)
    import torch

    chains = pick_chains(lm.tokenizer, args.chains, args.tokens, args.seed)
    approx = {}
    for spec in args.approx.split(","):
        prerank, per_step, rescore = spec.strip().split(":")
        approx[f"approx_{prerank}_{per_step}_{rescore}"] = dict(prerank=prerank, per_step=int(per_step),
                                                                rescore=int(rescore))
    naive_n = args.chains if args.naive_chains is None else args.naive_chains
    setting = {
        "chains": args.chains, "target_tokens": args.tokens, "keep": args.keep, "naive_chains": naive_n,
        "approx": approx,
        "model": lm.name, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
        "torch": torch.__version__, "loadavg_start": list(os.getloadavg()),
    }
    rows: list[dict] = []
    print(f"{'chain':>5} {'tokens':>6} {'mode':>22} {'seconds':>9} {'cpu s':>9} {'fwd tokens':>10} {'final J':>8} "
          f"{'spearman':>8} {'kept=':>6}")
    for i, rec in enumerate(chains):
        layout = build_layout(lm.tokenizer, rec["question"], rec["chain"], rec["answer"])
        n = len(layout.units)
        steps = n - resolve_keep(args.keep, n, caller="bench")
        row: dict = {"id": rec["id"], "tokens": n, "steps": steps, "modes": {}}
        modes = {"exact": {}} | ({"naive": {}} if i < naive_n else {}) | approx
        orders = {}
        for mode, kw in modes.items():
            scorer = ChainScorer(lm.model, layout, Objective("answer"))
            t0, c0 = time.perf_counter(), time.process_time()
            res = greedy_prune(scorer, steps, search=mode.split("_")[0], **kw)
            m = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                 "forward_tokens": res.forward_tokens, "final_J": res.values[-1] if steps else res.initial}
            orders[mode] = res.order
            if mode != "exact":
                m["spearman"] = float(spearmanr(ranks(orders["exact"], n), ranks(res.order, n))[0])
                kept_exact, kept_mode = set(range(n)) - set(orders["exact"]), set(range(n)) - set(res.order)
                m["kept_overlap"] = len(kept_exact & kept_mode) / max(1, len(kept_exact))
            row["initial_J"] = res.initial
            row["modes"][mode] = m
            print(f"{i:>5} {n:>6} {mode:>22} {m['seconds']:>9.1f} {m['cpu_seconds']:>9.1f} {m['forward_tokens']:>10} "
                  f"{m['final_J']:>8.3f} "
                  f"{m.get('spearman', 1.0):>8.3f} {m.get('kept_overlap', 1.0):>6.2f}", flush=True)
        if "naive" in orders:
            row["naive_equals_exact"] = orders["naive"] == orders["exact"]
        rows.append(row)
        write_json_atomic(args.out, {"setting": setting, "chains": rows, "summary": summarize(rows)})

    summary = summarize(rows)
    setting["loadavg_end"] = list(os.getloadavg())
    write_json_atomic(args.out, {"setting": setting, "chains": rows, "summary": summary})
    print(json.dumps(summary, indent=2))
    return 0


def summarize(rows: list[dict]) -> dict:
    """Per mode: mean seconds and forward tokens per chain, speedups against exact on the same
    chains, and (approx, naive) Spearman and kept-set overlap with exact."""
    out: dict = {"chains": len(rows), "mean_tokens": float(np.mean([r["tokens"] for r in rows])), "modes": {}}
    for mode in rows[0]["modes"]:
        have = [r for r in rows if mode in r["modes"]]
        ms = [r["modes"][mode] for r in have]
        exact_s = sum(r["modes"]["exact"]["seconds"] for r in have)
        mode_s = sum(m["seconds"] for m in ms)
        exact_cpu = sum(r["modes"]["exact"]["cpu_seconds"] for r in have)
        mode_cpu = sum(m["cpu_seconds"] for m in ms)
        exact_tok = sum(r["modes"]["exact"]["forward_tokens"] for r in have)
        mode_tok = sum(m["forward_tokens"] for m in ms)
        d = {"chains": len(have), "seconds_per_chain": mode_s / len(have),
             "cpu_seconds_per_chain": mode_cpu / len(have), "forward_tokens_per_chain": mode_tok / len(have),
             "speedup_vs_exact": exact_s / mode_s, "cpu_speedup_vs_exact": exact_cpu / mode_cpu,
             "token_speedup_vs_exact": exact_tok / mode_tok,
             "mean_J_drop": float(np.mean([r["initial_J"] - m["final_J"] for r, m in zip(have, ms, strict=True)]))}
        if mode != "exact":
            d["spearman_mean"] = float(np.mean([m["spearman"] for m in ms]))
            d["spearman_min"] = float(np.min([m["spearman"] for m in ms]))
            d["kept_overlap_mean"] = float(np.mean([m["kept_overlap"] for m in ms]))
        out["modes"][mode] = d
    naive = [r for r in rows if "naive_equals_exact" in r]
    if naive:
        out["naive_equals_exact"] = all(r["naive_equals_exact"] for r in naive)
        nv = out["modes"]["naive"]
        out["exact_speedup_vs_naive"] = {"wall": 1.0 / nv["speedup_vs_exact"], "cpu": 1.0 / nv["cpu_speedup_vs_exact"],
                                         "forward_tokens": 1.0 / nv["token_speedup_vs_exact"]}
    return out


if __name__ == "__main__":
    sys.exit(main())

"""Token pruning benchmark: speed and fidelity of the greedy searches against exact.

Generated word-problem chains of about ``--tokens`` model tokens are pruned down to the smallest
``--keep`` ratio with the default model (SmolLM2-135M), every mode on the same chains in one run,
so the ratios compare like with like. Prints a table and writes ``bench/results/tokens.json``
(rewritten after every chain, so a long run that is stopped keeps what it measured).

* **exact** (the reference for everything else).
* **naive vs exact, side by side at the same states**: a full naive run costs about L^3/3
  token-forwards per chain (hours at 128 tokens on 2 cores), so at ``--naive-states`` states spread
  over exact's own trajectory both searches score every candidate of that step (exact: the step's
  current pass and its batched candidates; naive: one uncached forward per candidate) and must pick
  the same unit. The speed-up is the ratio of their summed times. ``--naive-chains N`` also runs
  the whole naive search on the first N chains.
* **perturbed exact** (``--perturbed-chains``): exact, except that the first deletion is the
  runner-up. How far one different early choice moves the deletion order is the floor below which
  no approximate search can be expected to agree with exact on order.
* **approx** settings (``--approx``, ``prerank:per_step:rescore[:refresh]``): seconds, answer
  log-likelihood J of the kept chain at every keep ratio (uncached) against exact's, Spearman
  correlation of the deletion ranks down to ``--order-keep`` (never-deleted units tied last) and
  overlap of the kept sets.

``--reference JSON`` takes exact's orders and J from an earlier run on the same chains (the
chains are generated deterministically), so further approximate settings can be measured without
running exact again; their speed-ups against exact are then left out, since the times would come
from two runs.

The spec setting is ``--chains 20 --tokens 128``; on 2 cores a run of 4 chains takes about an hour.
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
from selfprune.tokens.greedy import distinct_candidates, greedy_prune
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


def kept_at(order: list[int], n: int, counts: dict[float, int]) -> dict[float, list[int]]:
    """The kept units at each keep ratio (``counts``: ratio -> units kept)."""
    return {r: sorted(set(range(n)) - set(order[: n - k])) for r, k in counts.items()}


def naive_vs_exact(lm, layout, order: list[int], n_states: int) -> list[dict]:
    """Time one exact step and one naive step at ``n_states`` states along ``order``."""
    n = len(layout.units)
    steps = np.unique(np.linspace(0, len(order) - 1, n_states).round().astype(int)).tolist()
    out = []
    for t in steps:
        gone = set(order[:t])
        kept = [u for u in range(n) if u not in gone]
        scorer = ChainScorer(lm.model, layout, Objective("answer"))
        t0 = time.perf_counter()
        state = scorer.current(kept)
        cands = distinct_candidates(layout, kept)
        exact_pick = kept[cands[int(np.argmax(scorer.candidates(state, cands)))]]
        t1 = time.perf_counter()
        naive_pick = kept[int(np.argmax(scorer.naive_candidates(kept, list(range(len(kept))))))]
        t2 = time.perf_counter()
        out.append({"step": t + 1, "units": len(kept), "exact_seconds": t1 - t0, "naive_seconds": t2 - t1,
                    "same_pick": exact_pick == naive_pick == order[t]})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chains", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=128, help="target chain length in model tokens")
    ap.add_argument("--keep", default="0.3,0.5", help="keep ratios at which J is compared")
    ap.add_argument("--order-keep", type=float, default=0.5, help="deletion order compared down to this ratio")
    ap.add_argument("--naive-states", type=int, default=4, help="states per chain timed naive vs exact")
    ap.add_argument("--naive-chains", type=int, default=0, help="whole naive runs on the first N chains")
    ap.add_argument("--perturbed-chains", type=int, default=None, help="perturbed exact on the first N chains")
    ap.add_argument("--approx", default="stale:1:8,stale:2:8,stale:2:16,stale:4:16,gradient:2:8",
                    help="approximate settings to measure, prerank:per_step:rescore[:refresh], comma-separated")
    ap.add_argument("--reference", type=Path, default=None,
                    help="a results JSON of an earlier run on the same chains: take exact's order and J "
                         "from it instead of running exact (speed-ups against exact are then not given)")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tokens.json")
    args = ap.parse_args(argv)

    lm = load_causal_lm(args.model, threads=args.threads)
    import torch

    keeps = sorted(float(k) for k in args.keep.split(","))
    chains = pick_chains(lm.tokenizer, args.chains, args.tokens, args.seed)
    approx = {}
    for spec in args.approx.split(","):
        prerank, per_step, rescore, *refresh = spec.strip().split(":")
        name = "_".join(["approx", prerank, per_step, rescore, *refresh])
        approx[name] = dict(search="approx", prerank=prerank, per_step=int(per_step), rescore=int(rescore),
                            refresh=int(refresh[0]) if refresh else 0)
    perturbed_n = args.chains if args.perturbed_chains is None else args.perturbed_chains
    setting = {
        "chains": args.chains, "target_tokens": args.tokens, "keep": keeps, "order_keep": args.order_keep,
        "naive_states": args.naive_states, "naive_chains": args.naive_chains, "perturbed_chains": perturbed_n,
        "approx": approx, "model": lm.name, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
        "torch": torch.__version__, "loadavg_start": list(os.getloadavg()),
    }
    reference = {}
    if args.reference is not None:
        ref = json.loads(args.reference.read_text())
        if ref["setting"]["model"] != lm.name or ref["setting"]["keep"] != keeps:
            raise SystemExit(f"{args.reference}: another model or other keep ratios")
        reference = {r["id"]: r["modes"]["exact"] for r in ref["chains"] if "order" in r["modes"]["exact"]}
        setting["reference"] = str(args.reference)
    rows: list[dict] = []
    print(f"{'chain':>5} {'units':>5} {'mode':>22} {'seconds':>8} {'fwd tokens':>10} "
          + " ".join(f"{'J@' + str(k):>8}" for k in keeps) + f" {'spearman':>8} {'kept=':>5}")
    for i, rec in enumerate(chains):
        layout = build_layout(lm.tokenizer, rec["question"], rec["chain"], rec["answer"])
        n = len(layout.units)
        counts = {k: resolve_keep(k, n, caller="bench") for k in keeps}
        steps = n - min(counts.values())
        order_steps = n - resolve_keep(args.order_keep, n, caller="bench")
        row: dict = {"id": rec["id"], "units": n, "steps": steps, "modes": {}}
        modes: dict[str, dict] = {"exact": {"search": "exact"}}
        if i < args.naive_chains:
            modes["naive"] = {"search": "naive"}
        if i < perturbed_n:
            modes["perturbed"] = {"search": "exact"}
        modes |= approx
        orders: dict[str, list[int]] = {}
        if rec["id"] in reference:  # exact from the earlier run
            if len(reference[rec["id"]]["order"]) != steps:
                raise SystemExit(f"{args.reference}: chain {rec['id']} was pruned to another depth")
            row["modes"]["exact"] = reference[rec["id"]] | {"from_reference": True}
            orders["exact"] = row["modes"]["exact"]["order"]
            del modes["exact"]
        elif reference:
            raise SystemExit(f"{args.reference}: no exact run of chain {rec['id']}")
        for mode, kw in modes.items():
            scorer = ChainScorer(lm.model, layout, Objective("answer"))
            t0, c0 = time.perf_counter(), time.process_time()
            start = []
            if mode == "perturbed":  # the runner-up of exact's first step
                state = scorer.current(list(range(n)))
                cands = distinct_candidates(layout, list(range(n)))
                start = [cands[int(np.argsort(-scorer.candidates(state, cands), kind="stable")[1])]]
            res = greedy_prune(scorer, steps, start=start, **kw)
            m = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                 "forward_tokens": res.forward_tokens, "order": res.order}
            kept = kept_at(res.order, n, counts)
            values = scorer.evaluate([layout.unit_tokens(kept[k]) for k in keeps])
            m["J"] = {str(k): float(v) for k, v in zip(keeps, values, strict=True)}
            orders[mode] = res.order
            if mode != "exact":
                ex = orders["exact"]
                m["spearman"] = float(spearmanr(ranks(ex[:order_steps], n), ranks(res.order[:order_steps], n))[0])
                kept_ex = kept_at(ex, n, counts)
                m["kept_overlap"] = {str(k): len(set(kept[k]) & set(kept_ex[k])) / len(kept_ex[k]) for k in keeps}
                m["J_minus_exact"] = {str(k): m["J"][str(k)] - row["modes"]["exact"]["J"][str(k)] for k in keeps}
            row["initial_J"] = res.initial
            row["modes"][mode] = m
            print(f"{i:>5} {n:>5} {mode:>22} {m['seconds']:>8.1f} {m['forward_tokens']:>10} "
                  + " ".join(f"{m['J'][str(k)]:>8.3f}" for k in keeps)
                  + f" {m.get('spearman', 1.0):>8.3f} {m.get('kept_overlap', {}).get(str(keeps[-1]), 1.0):>5.2f}",
                  flush=True)
        if "naive" in orders:
            row["naive_equals_exact"] = orders["naive"] == orders["exact"]
        if args.naive_states:
            row["naive_vs_exact"] = naive_vs_exact(lm, layout, orders["exact"], args.naive_states)
            for s in row["naive_vs_exact"]:
                print(f"{i:>5} {s['units']:>5} {'naive/exact at step ' + str(s['step']):>22} "
                      f"{s['naive_seconds']:>8.1f} / {s['exact_seconds']:.1f} = "
                      f"{s['naive_seconds'] / s['exact_seconds']:.2f}x, same pick: {s['same_pick']}", flush=True)
        rows.append(row)
        write_json_atomic(args.out, {"setting": setting, "chains": rows, "summary": summarize(rows, keeps)})

    summary = summarize(rows, keeps)
    setting["loadavg_end"] = list(os.getloadavg())
    write_json_atomic(args.out, {"setting": setting, "chains": rows, "summary": summary})
    print(json.dumps(summary, indent=2))
    return 0


def summarize(rows: list[dict], keeps: list[float]) -> dict:
    """Per mode: mean seconds and forward tokens per chain, speed-up against exact on the same
    chains, J against exact at every keep ratio, Spearman and kept-set overlap; naive against
    exact at the timed states."""
    out: dict = {"chains": len(rows), "mean_units": float(np.mean([r["units"] for r in rows])), "modes": {}}
    for mode in rows[0]["modes"]:
        have = [r for r in rows if mode in r["modes"]]
        ms = [r["modes"][mode] for r in have]
        exact_s = sum(r["modes"]["exact"]["seconds"] for r in have)
        same_run = not any(r["modes"]["exact"].get("from_reference") for r in have)
        d = {"chains": len(have), "seconds_per_chain": sum(m["seconds"] for m in ms) / len(have),
             "max_seconds": max(m["seconds"] for m in ms),
             "forward_tokens_per_chain": sum(m["forward_tokens"] for m in ms) / len(have),
             "speedup_vs_exact": exact_s / sum(m["seconds"] for m in ms) if same_run else None,
             "J_mean": {str(k): float(np.mean([m["J"][str(k)] for m in ms])) for k in keeps}}
        if mode != "exact":
            diffs = {str(k): [m["J_minus_exact"][str(k)] for m in ms] for k in keeps}
            d["J_minus_exact_mean"] = {k: float(np.mean(v)) for k, v in diffs.items()}
            d["J_minus_exact_min"] = {k: float(np.min(v)) for k, v in diffs.items()}
            d["spearman_mean"] = float(np.mean([m["spearman"] for m in ms]))
            d["spearman_min"] = float(np.min([m["spearman"] for m in ms]))
            d["kept_overlap_mean"] = {str(k): float(np.mean([m["kept_overlap"][str(k)] for m in ms])) for k in keeps}
        out["modes"][mode] = d
    states = [s for r in rows for s in r.get("naive_vs_exact", [])]
    if states:
        naive_s, exact_s = sum(s["naive_seconds"] for s in states), sum(s["exact_seconds"] for s in states)
        out["naive_vs_exact"] = {"states": len(states), "naive_seconds": naive_s, "exact_seconds": exact_s,
                                 "exact_speedup": naive_s / exact_s,
                                 "per_state_min": min(s["naive_seconds"] / s["exact_seconds"] for s in states),
                                 "same_pick": all(s["same_pick"] for s in states)}
    naive = [r for r in rows if "naive_equals_exact" in r]
    if naive:
        out["naive_equals_exact"] = all(r["naive_equals_exact"] for r in naive)
    return out


if __name__ == "__main__":
    sys.exit(main())

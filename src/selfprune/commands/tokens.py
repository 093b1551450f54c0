"""Token-pruning commands: ``tokens`` (prune reasoning chains) and ``tokens-generate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from selfprune.commands._options import parse_keeps, progress_bar

DEFAULT = "smollm2-135m"


def register(app: typer.Typer) -> None:
    @app.command(
        "tokens",
        epilog="Example: selfprune tokens --chains chains.jsonl --model smollm2-135m --keep 0.3,0.5,0.7 "
        "--out runs/tokens",
    )
    def tokens(
        chains: Annotated[Path, typer.Option(help="JSONL with question, chain, answer per row")],
        out: Annotated[Path, typer.Option(help="output folder (resumed if it holds this run)")],
        model: Annotated[str, typer.Option(help="smollm2-135m (packaged) or a local HF causal LM folder")] = DEFAULT,
        objective: Annotated[str, typer.Option(help="answer: log p(answer | question, kept chain); joint: "
                                               "plus the kept chain's own mean log-likelihood (the one "
                                               "whose chains trained better students, docs/tokens.md)")
                             ] = "answer",
        joint_weight: Annotated[float, typer.Option(help="weight of the chain term for --objective joint")] = 1.0,
        keep: Annotated[str, typer.Option(help="keep ratios of a chain, comma-separated, in (0, 1)")] = "0.3,0.5,0.7",
        unit: Annotated[str, typer.Option(help="prune model tokens or whole words: token, word")] = "token",
        search: Annotated[str, typer.Option(help="exact (the default: about 6 min per 128-token chain on 2 "
                                            "cores), naive (reference), approx (about 1 min, nearly the same "
                                            "answer likelihood, another order)")] = "exact",
        per_step: Annotated[int, typer.Option(help="approx: deletions per round")] = 2,
        rescore: Annotated[int, typer.Option(help="approx: candidates re-scored exactly per round (0 = all)")] = 8,
        prerank: Annotated[str, typer.Option(help="approx: stale (last exact scores) or gradient")] = "stale",
        refresh: Annotated[int, typer.Option(help="approx, stale: also re-score the N oldest scores per round")] = 2,
        prompt: Annotated[str, typer.Option(help="auto, chat (the tokenizer's chat template) or plain")] = "auto",
        connector: Annotated[str, typer.Option(help="text between chain and answer")] = "\nThe answer is",
        baselines: Annotated[bool, typer.Option(help="also run surprisal, random and uniform deletion")] = True,
        curve_step: Annotated[float, typer.Option(help="spacing of extra keep ratios on the curves (0: none)")] = 0.1,
        limit: Annotated[int | None, typer.Option(help="prune only the first N rows")] = None,
        seed: Annotated[int, typer.Option(help="seed of the random baseline")] = 0,
        threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: all available)")] = None,
        batch_tokens: Annotated[int, typer.Option(help="new tokens per batched forward")] = 1024,
        dtype: Annotated[str, typer.Option(help="float32 (default), float64, bfloat16")] = "float32",
        restart: Annotated[bool, typer.Option(help="discard checkpoints of a different earlier run in --out")] = False,
    ) -> None:
        """Prune reasoning chains token by token with the model's own likelihood."""
        started = time.time()
        from selfprune._checks import check_int
        from selfprune.cli import console
        from selfprune.cli import out as stdout
        from selfprune.tokens.data import read_chains
        from selfprune.tokens.model import load_causal_lm
        from selfprune.tokens.prune import TokenPruner, prune_chains
        from selfprune.tokens.report import retention_markdown, write_outputs

        keeps = parse_keeps(keep, caller="tokens")
        records = read_chains(chains)
        if limit is not None:
            records = records[: check_int(limit, caller="selfprune tokens", name="--limit")]
        with console.status(f"loading {model}"):
            lm = load_causal_lm(model, dtype=dtype, threads=threads)
        pruner = TokenPruner(lm, objective=objective, joint_weight=joint_weight, keep=keeps,
                             unit=unit, search=search, per_step=per_step, rescore=rescore, prerank=prerank,
                             refresh=refresh,
                             prompt=prompt, connector=connector, baselines=baselines,
                             curve_step=curve_step, seed=seed, batch_tokens=batch_tokens)

        with progress_bar(transient=True) as bar:
            task = bar.add_task("pruning chains", total=len(records))

            def report(i: int, n: int, res, reused: bool) -> None:
                how = "reused checkpoint" if reused else f"{res.search.seconds:.1f} s"
                bar.console.print(f"[{i + 1}/{n}] {res.id}: {res.n_tokens} tokens, "
                                  f"{res.steps_run} deletions ({how})", highlight=False, markup=False)
                bar.update(task, completed=i + 1)

            results = prune_chains(records, pruner, out, restart=restart, on_chain=report)
        from selfprune.report.html import provenance

        prov = provenance(inputs={"--chains": chains, "--model": model}, seed=seed, started=started)
        paths = write_outputs(results, out, pruner.config(), provenance=prov)
        from selfprune.tokens.report import retention_table

        stdout.print(retention_markdown(retention_table(results)), highlight=False)
        stdout.print(f"wrote {len(results)} pruned chains to {out} "
                     f"({', '.join(p.name for p in paths.values())})", highlight=False)

    @app.command(
        "tokens-generate", epilog="Example: selfprune tokens-generate --n 100 --seed 0 --out chains.jsonl"
    )
    def tokens_generate(
        out: Annotated[Path, typer.Option(help="JSONL file to write")],
        n: Annotated[int, typer.Option(help="number of problems")] = 100,
        seed: Annotated[int, typer.Option(help="random seed")] = 0,
        min_steps: Annotated[int, typer.Option(help="fewest operations per problem")] = 2,
        max_steps: Annotated[int, typer.Option(help="most operations per problem")] = 5,
        min_tokens: Annotated[int, typer.Option(help="shortest chain, in (estimated) tokens")] = 60,
        max_tokens: Annotated[int, typer.Option(help="longest chain, in (estimated) tokens")] = 200,
    ) -> None:
        """Write seeded multi-step arithmetic word problems with worked chains as JSONL."""
        from selfprune.cli import out as stdout
        from selfprune.tokens.data import generate_chains, write_chains

        rows = generate_chains(n, seed=seed, min_steps=min_steps, max_steps=max_steps,
                               min_tokens=min_tokens, max_tokens=max_tokens)
        write_chains(out, rows)
        stdout.print(f"wrote {len(rows)} problems to {out}", highlight=False)

    @app.command(
        "tokens-distill",
        epilog="Example: selfprune tokens-distill --pruned runs/tok --keep 0.5 "
        "--methods greedy,surprisal,random,uniform,full --heldout heldout.jsonl --out runs/distill",
    )
    def tokens_distill(
        pruned: Annotated[Path, typer.Option(help="output folder of selfprune tokens")],
        out: Annotated[Path, typer.Option(help="output folder (resumed if it holds this run)")],
        keep: Annotated[str, typer.Option(help="keep ratios the chains were pruned to, comma-separated")] = "0.5",
        methods: Annotated[str, typer.Option(help="greedy, surprisal, random, uniform, full")] = (
            "greedy,surprisal,random,uniform,full"),
        student: Annotated[str, typer.Option(help="the model that pruned the chains (its tokenizer is "
                                             "needed): smollm2-135m or a local HF folder")] = DEFAULT,
        heldout: Annotated[Path | None, typer.Option(help="chains JSONL of held-out questions (default: a "
                                                     "--holdout share of the pruned chains)")] = None,
        holdout: Annotated[float, typer.Option(help="share of pruned chains held out when --heldout is not "
                                               "given")] = 0.25,
        seeds: Annotated[str, typer.Option(help="student seeds, comma-separated")] = "0,1",
        epochs: Annotated[int, typer.Option(help="passes over the training chains")] = 3,
        lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine decay to zero)")] = 1e-3,
        rank: Annotated[int, typer.Option(help="LoRA rank")] = 8,
        batch_size: Annotated[int, typer.Option(help="chains per training step")] = 8,
        eval_batch: Annotated[int, typer.Option(help="questions generated at once")] = 16,
        max_new_tokens: Annotated[int | None, typer.Option(help="generation budget (default: 1.25 x the "
                                                           "longest chain plus the answer)")] = None,
        threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: all available)")] = None,
        restart: Annotated[bool, typer.Option(help="discard checkpoints of a different earlier run in --out")] = False,
    ) -> None:
        """Fine-tune one student per pruning method on the chains it kept; evaluate them on held-out questions."""
        started = time.time()
        from selfprune.cli import console
        from selfprune.cli import out as stdout
        from selfprune.commands._options import parse_ints
        from selfprune.report.html import provenance
        from selfprune.tokens.data import read_chains
        from selfprune.tokens.distill import (
            StudentSettings,
            check_methods,
            distill,
            read_pruned,
            summary_markdown,
            write_distill_outputs,
        )
        from selfprune.tokens.model import load_causal_lm
        from selfprune.tokens.prune import parse_keep

        keeps = parse_keep(keep)
        method_list = check_methods(methods)
        seed_list = parse_ints(seeds, caller="tokens-distill", option="--seeds")
        settings = StudentSettings(rank=rank, epochs=epochs, lr=lr, batch_size=batch_size, eval_batch=eval_batch,
                                   max_new_tokens=max_new_tokens)
        run = read_pruned(pruned)
        held = read_chains(heldout) if heldout is not None else None
        with console.status(f"loading {student}"):
            lm = load_causal_lm(student, threads=threads)
        with progress_bar(transient=True) as bar:
            task = bar.add_task("training students", total=None)

            def report(i: int, n: int, res, reused: bool) -> None:
                how = "reused checkpoint" if reused else f"{res.seconds:.0f} s"
                bar.console.print(f"[{i + 1}/{n}] {res.name}: accuracy {100 * res.accuracy:.1f}%, "
                                  f"{res.reasoning_tokens:.1f} reasoning tokens ({how})", highlight=False,
                                  markup=False)
                bar.update(task, completed=i + 1, total=n)

            done = distill(run, out, lm, keeps=keeps, methods=method_list, seeds=seed_list, heldout=held,
                           holdout=holdout, settings=settings, restart=restart, on_student=report)
        prov = provenance(inputs={"--pruned": pruned / "tokens.jsonl", "--student": student,
                                  **({"--heldout": heldout} if heldout is not None else {})},
                          seed=seed_list[0], started=started)
        paths = write_distill_outputs(done.students, out, done.config, provenance=prov)
        stdout.print(summary_markdown(done.students, done.config), highlight=False)
        stdout.print(f"wrote {len(done.students)} students to {out} ({', '.join(p.name for p in paths.values())})",
                     highlight=False)

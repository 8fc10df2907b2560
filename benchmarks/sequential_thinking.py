"""Sequential thinking and search against parallel sampling, on a lab model, in one run.

A REAL model (a tiny lab checkpoint through the ``hf`` backend) on a lab task (``arith``: 3-digit
addition by default): accuracy against mean tokens per problem (prompt + completion over every
call) for cot, vote, adaptive, reflect, think, beam, mcts and auto, through the bench runner and
store, then ``ponder report``'s code for the plot with the Pareto frontier and the Markdown table.
Last, where ``auto`` lies relative to the frontier of the other strategies at its token cost.

    python benchmarks/sequential_thinking.py --model hf:DIR [--limit 100] [--seed 0] [--threads 1]

The lab models write one column of the sum per line (``7+5+0=12 > 2``), so the step-level
strategies split at lines (``split=line``) and use ``arith``, the exact equation checker, or the
model's own token confidence as their process verifier. Results are stored, so running the same
command again resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from ponder import __version__
from ponder.bench.plots import plot_accuracy_vs_tokens
from ponder.bench.report import summarize, write_report
from ponder.bench.runner import grid, run_local
from ponder.bench.store import Store
from ponder.budget import Budget
from ponder.models import resolve
from ponder.problems import load_problems
from ponder.think import parse_strategy

T = "max_tokens=128"  # a lab solution is ~55 tokens; the cap only bounds runaway samples
STEP = f"split=line,step_tokens=32,temperature=0.7,{T}"  # 0.7: as vote, adaptive and auto
STRATEGIES = [
    f"cot:{T}",
    f"vote:n=4,{T}",
    f"vote:n=16,{T}",
    f"adaptive:{T}",
    f"reflect:verifier=arith,split=line,{T}",
    f"think:min_think=64,{T}",
    f"beam:verifier=arith,{STEP}",
    f"beam:verifier=prob,{STEP}",  # the mean token probability (the step verifier once named "confidence")
    f"mcts:verifier=arith,{STEP}",
    f"auto:verifier=arith,split=line,probe_tokens=128,tools=off,{T}",  # the lab model writes no code
]
DEFAULT_MODEL = "lab:add3-grpo"  # the shipped lab model after GRPO (ponder/lab/checkpoints)


def short(label: str) -> str:
    """A spec without the settings every strategy here shares (the plot's legend stays narrow)."""
    name, _, params = label.partition(":")
    kept = [p for p in params.split(",") if p and p not in SHARED]
    return name + (":" + ",".join(kept) if kept else "")


SHARED = {T, "split=line", "step_tokens=32", "temperature=0.7", "probe_tokens=128"}


def frontier_at(stats, cost: float) -> tuple[float, str] | None:
    """The best accuracy any configuration reaches for at most ``cost`` mean tokens, and which."""
    within = [s for s in stats if s.mean_tokens <= cost]
    if not within:
        return None
    best = max(within, key=lambda s: (s.accuracy, -s.mean_tokens))
    return best.accuracy, best.label


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="a lab model: lab:NAME or hf:DIR")
    ap.add_argument("--task", default="arith", help="problem generator (default arith)")
    ap.add_argument("--digits", type=int, default=3)
    ap.add_argument("--limit", type=int, default=100, help="problems")
    ap.add_argument("--seed", type=int, default=0, help="problem set and sampling seed")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the CPU may be shared)")
    ap.add_argument("--strategy", action="append", help="run only these specs (repeatable)")
    ap.add_argument("--db", default="runs/sequential.sqlite")
    ap.add_argument("--out", default="reports/sequential-thinking")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    strategies = [parse_strategy(s) for s in (args.strategy or STRATEGIES)]
    specs = [s.spec for s in strategies]
    options = {"digits": args.digits, "op": "add"} if args.task == "arith" else {}
    # Held out: the lab models trained on this generator's seed-0 problems (the shipped ones on
    # its first 5,000), so draw from seed 10,000 + SEED and drop any question seen in training.
    seen = {p.question for p in load_problems(args.task, limit=5000, seed=0, **options)}
    fresh = load_problems(args.task, limit=args.limit + 100, seed=10_000 + args.seed, **options)
    problems = [p for p in fresh if p.question not in seen][: args.limit]
    model = resolve(args.model, device="cpu")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.name).strip("-")
    run = f"seqthink-{name}-{args.task}{args.digits}-heldout-n{args.limit}-s{args.seed}"
    store = Store(args.db)
    config = {"task": f"{args.task}:digits={args.digits}", "model": args.model, "limit": args.limit,
              "seeds": [args.seed], "strategies": specs, "budgets": [0], "threads": args.threads}
    store.open_run(run, config, __version__, model.describe())
    done = store.done(run)
    cells = [c for c in grid(problems, strategies, [Budget()], [args.seed]) if c.key not in done]
    print(f"run {run}: {len(cells)} cells to run ({len(done)} stored)", file=sys.stderr)
    start, count = time.perf_counter(), [0]

    def on_row(row) -> None:
        store.add(row)
        count[0] += 1
        if count[0] % 50 == 0:
            took = time.perf_counter() - start
            print(f"  {count[0]}/{len(cells)} cells, {took:.0f} s", file=sys.stderr)

    asyncio.run(run_local(run, cells, model, on_row, concurrency=1))
    elapsed = time.perf_counter() - start

    rows = store.rows(run)
    stats = summarize(rows)
    by_label = {s.label: s for s in stats}
    seconds = {s: sum(r.latency for r in rows if r.strategy == s) for s in specs}
    print(f"\n{args.model}, {args.task} {args.digits}-digit addition, {len(problems)} problems, "
          f"seed {args.seed}, {args.threads} thread(s); {elapsed:.0f} s this time\n")
    print("| strategy | accuracy % | 95% CI | mean tokens | mean calls | s / problem | Pareto |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for spec in specs:
        s = by_label[spec]
        print(f"| {spec} | {100 * s.accuracy:.1f} | {100 * s.ci_low:.1f}-{100 * s.ci_high:.1f} | "
              f"{s.mean_tokens:,.0f} | {s.mean_calls:.1f} | {seconds[spec] / s.n:.2f} | "
              f"{'★' if s.pareto else ''} |")
    autos = [s for s in stats if s.strategy.startswith("auto")]
    others = [s for s in stats if not s.strategy.startswith("auto")]
    for a in autos:
        front = frontier_at(others, a.mean_tokens)
        if front is None:
            print(f"\n{a.label}: cheaper than every other strategy (nothing at its cost)")
            continue
        acc, label = front
        gap = 100 * (acc - a.accuracy)
        where = "on or above" if gap <= 0 else f"{gap:.1f} points below"
        print(f"\n{a.label}: {100 * a.accuracy:.1f}% at {a.mean_tokens:,.0f} mean tokens; the "
              f"other strategies' frontier at that cost is {100 * acc:.1f}% ({label}): auto is "
              f"{where} it{' (within 2 points)' if 0 < gap <= 2 else ''}.")
        routes = {"easy": 0, "medium": 0, "hard": 0}
        for r in rows:
            if r.strategy == a.strategy:
                for k in routes:
                    routes[k] += r.how.startswith(f"auto: {k}")
        print(f"  routes: {routes}")
    paths = write_report(store, [run], Path(args.out))
    store.close()
    # the same plot with short labels (the shared settings are in the title)
    plot = Path(args.out) / "accuracy_vs_tokens_short.png"
    title = f"{args.model} · {args.digits}-digit addition · {len(problems)} problems\n"
    title += "all: max_tokens=128, temperature 0.7 where sampled; split=line, step_tokens=32"
    plot_accuracy_vs_tokens([(run, [replace(s, label=short(s.label)) for s in stats])], title, plot)
    print(f"\nreport: {paths.markdown}\nplots:  {paths.plots[0]}, {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

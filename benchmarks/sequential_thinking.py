"""Sequential thinking and search against parallel sampling, on a lab model, in one run.

A REAL model (a small lab checkpoint through the ``hf`` backend) on a lab task: accuracy against
mean tokens per problem (prompt + completion over every call) for cot, vote, best_of_n, adaptive,
confidence, reflect, think, beam, mcts and auto, through the bench runner and store, then
``ponder report``'s code for the plot with the Pareto frontier and the Markdown table. Last, where
``auto`` lies relative to the frontier of the other strategies at its token cost.

    python benchmarks/sequential_thinking.py [--task countdown|arith] [--model lab:NAME|hf:DIR]
        [--limit 200] [--seed 0] [--threads 2] [--concurrency 16]

``countdown`` (the default, on ``lab:countdown-grpo``): held-out puzzles of 3 and 4 numbers
(``countdown:count=3-4,split=test``, which no lab run trains on). The model writes a search, one
move per line, so the step-level strategies split at lines and use ``countdown``, the exact step
verifier (every move right, every number still available, no hit missed), as their process
verifier. ``best_of_n`` selects with ``check``, the puzzle's own grader (the expression uses the
given numbers and equals the target: no reference answer needed), because the step verifier
rejects a whole sample for a slip in a branch it abandoned: on the deep GRPO model it kept 69 of
the 103 puzzles some sample solves. ``beam`` runs twice: as Snell et al.'s search (a rejected step
may stay in a beam) and with ``floor=1`` (only steps the verifier passes go on; a rejected one is
sampled again, then the search backs off to a candidate it set aside). A step is one line, up to
about 240 characters (``step_tokens=256``; 64 cut 15.5% of the lines). ``arith`` (on ``lab:add3-grpo``): 3-digit additions,
one column per line, with ``arith``, the exact equation checker. Results are stored, so running
the same command again resumes; the hf backend batches the problems in flight together.
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
from ponder.argtypes import positive_int
from ponder.bench.plots import plot_accuracy_vs_tokens
from ponder.bench.report import summarize, write_report
from ponder.bench.runner import grid, run_local, unseeded
from ponder.bench.store import RunMismatchError, Store
from ponder.budget import Budget
from ponder.errors import UserError
from ponder.models import resolve
from ponder.models.base import ModelError
from ponder.problems import load_problems
from ponder.specs import SpecError, parse_spec
from ponder.think import StrategySpecError, parse_strategy


def strategies_for(task: str) -> tuple[list[str], set[str]]:
    """The specs compared on ``task``, and the settings they share (left out of plot labels)."""
    if task == "countdown":
        # a capped search is at most ~860 characters; the context (1024) clips the rest
        t, v = "max_tokens=900", "verifier=countdown"
        step = f"split=line,step_tokens=256,temperature=0.8,{t}"  # a line is up to ~240 characters
        specs = [
            f"cot:{t}",
            f"vote:n=4,temperature=0.8,{t}",
            f"vote:n=16,temperature=0.8,{t}",
            f"best_of_n:n=16,verifier=check,temperature=0.8,{t}",
            f"adaptive:temperature=0.8,{t}",
            f"confidence:temperature=0.8,{t}",
            f"reflect:{v},split=line,{t}",
            f"think:max_think=512,{t}",
            f"beam:{v},{step}",
            f"beam:{v},floor=1,{step}",  # only verified steps go on; rejected ones are resampled
            f"mcts:{v},{step}",
            # the probe, and the checked waves after a probe it rejects (sample_on, the default),
            # are scored by the puzzle's own checker, as best-of-16 is; the hard path (reflect)
            # by the step verifier (docs/results/countdown_scaling/auto_verified)
            f"auto:{v},split=line,probe_tokens=900,tools=off,verify_probe=check,"
            f"temperature=0.8,{t}",
        ]
        shared = {t, "split=line", "step_tokens=256", "temperature=0.8", "probe_tokens=900", v,
                  "tools=off"}  # fmt: skip
        return specs, shared
    t = "max_tokens=128"  # a lab solution is ~55 tokens; the cap only bounds runaway samples
    step = f"split=line,step_tokens=32,temperature=0.7,{t}"  # 0.7: as vote, adaptive and auto
    specs = [
        f"cot:{t}",
        f"vote:n=4,{t}",
        f"vote:n=16,{t}",
        f"adaptive:{t}",
        f"reflect:verifier=arith,split=line,{t}",
        f"think:min_think=64,{t}",
        f"beam:verifier=arith,{step}",
        f"beam:verifier=prob,{step}",  # the mean token probability
        f"mcts:verifier=arith,{step}",
        f"auto:verifier=arith,split=line,probe_tokens=128,tools=off,{t}",  # the model writes no code
    ]
    return specs, {t, "split=line", "step_tokens=32", "temperature=0.7", "probe_tokens=128"}


# the shipped lab models after GRPO (ponder/lab/checkpoints)
DEFAULT_MODEL = {"countdown": "lab:countdown-grpo", "arith": "lab:add3-grpo"}


def with_task_settings(spec: str, task_specs: list[str], shared: set[str]) -> str:
    """``spec`` with the shared settings it leaves out, taken from the task's own spec of the same
    strategy: ``best_of_n:n=16,verifier=check`` alone runs as the table's row does (900 tokens,
    T 0.8), not at the strategy's defaults. Settings ``spec`` names win; a strategy the task does
    not list is left as written."""
    name, pairs = parse_spec(spec, "strategy")
    given = {key for key, _ in pairs}
    for task_spec in task_specs:
        task_name, task_pairs = parse_spec(task_spec, "strategy")
        if task_name == name:
            added = [f"{k}={v}" for k, v in task_pairs if f"{k}={v}" in shared and k not in given]
            return name + ":" + ",".join([f"{k}={v}" for k, v in pairs] + added) if added else spec
    return spec


def held_out(task: str, limit: int, seed: int, digits: int) -> list:
    """Problems no lab run trained on."""
    if task == "countdown":  # the generator's test split: disjoint from every training draw
        return load_problems("countdown", limit=limit, seed=10_000 + seed, count="3-4", split="test")
    # The add models trained on seed-0 problems (the shipped ones on the first 5,000): draw from
    # seed 10,000 + SEED and drop any question seen in training.
    options = {"digits": digits, "op": "add"}
    seen = {p.question for p in load_problems(task, limit=5000, seed=0, **options)}
    fresh = load_problems(task, limit=limit + 100, seed=10_000 + seed, **options)
    return [p for p in fresh if p.question not in seen][:limit]


def short(label: str, shared: set[str]) -> str:
    """A spec without the settings every strategy here shares (the plot's legend stays narrow)."""
    name, _, params = label.partition(":")
    kept = [p for p in params.split(",") if p and p not in shared]
    return name + (":" + ",".join(kept) if kept else "")


def frontier_at(stats, cost: float) -> tuple[float, str] | None:
    """The best accuracy any configuration reaches for at most ``cost`` mean tokens, and which."""
    within = [s for s in stats if s.mean_tokens <= cost]
    if not within:
        return None
    best = max(within, key=lambda s: (s.accuracy, -s.mean_tokens))
    return best.accuracy, best.label


def auto_against_frontier(auto, others, db: str) -> str:
    """Where ``auto`` lies against the frontier of the other strategies stored in ``db``. Only
    those: a strategy measured into another database is not in it, so the line names how many
    strategies it compared with."""
    front = frontier_at(others, auto.mean_tokens)
    if front is None:
        return f"{auto.label}: cheaper than every other strategy in {db} (nothing at its cost)"
    acc, label = front
    gap = 100 * (acc - auto.accuracy)
    where = "on or above" if gap <= 0 else f"{gap:.1f} points below"
    return (f"{auto.label}: {100 * auto.accuracy:.1f}% at {auto.mean_tokens:,.0f} mean tokens; "
            f"the frontier of the {len(others)} other strategies in {db} at that cost is "
            f"{100 * acc:.1f}% ({label}): auto is {where} it"
            f"{' (within 2 points)' if 0 < gap <= 2 else ''}.")  # fmt: skip


def path_error(out: str, db: str) -> str | None:
    """Why the report folder ``out`` or the database ``db`` cannot be written, or None."""
    if Path(out).exists() and not Path(out).is_dir():
        return f"--out {out} is a file; --out is the folder the report is written to"
    if Path(db).is_dir():
        return f"--db {db} is a folder; --db is the results database file"
    for flag, path in (("--out", Path(out)), ("--db", Path(db))):
        inside = next((p for p in path.absolute().parents if p.exists()), None)
        if inside is not None and not inside.is_dir():
            return f"{flag} {path}: {inside} is a file, so nothing can be made in it"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="countdown", choices=("countdown", "arith"))
    ap.add_argument("--model", help="a lab model: lab:NAME or hf:DIR (default: the task's)")
    ap.add_argument("--digits", type=positive_int, default=3, help="arith: digits per number")
    ap.add_argument("--limit", type=positive_int, default=200, help="problems")
    ap.add_argument("--seed", type=int, default=0, help="problem set and sampling seed")
    ap.add_argument("--threads", type=positive_int, default=2,
                    help="torch threads (the CPU may be shared)")
    ap.add_argument("--concurrency", type=positive_int, default=16,
                    help="problems in flight (batched)")
    ap.add_argument("--strategy", action="append",
                    help="run only these specs (repeatable); the task's shared settings (max_tokens,"
                         " temperature, ...) fill what a spec leaves out")
    ap.add_argument("--db", default="runs/sequential.sqlite")
    ap.add_argument("--out", default="reports/sequential-thinking")
    args = ap.parse_args()
    if (why := path_error(args.out, args.db)) is not None:  # the report is written after every cell
        ap.error(why)
    import torch

    torch.set_num_threads(args.threads)
    model_spec = args.model or DEFAULT_MODEL[args.task]
    all_specs, shared = strategies_for(args.task)
    try:
        chosen = [with_task_settings(s, all_specs, shared) for s in args.strategy or []]
        strategies = unseeded([parse_strategy(s) for s in (chosen or all_specs)])
    except (SpecError, StrategySpecError) as e:
        ap.error(str(e))
    for given, spec in zip(args.strategy or [], chosen):
        if spec != given:
            print(f"--strategy {given}: run as {spec} (the task's shared settings)", file=sys.stderr)
    specs = [s.spec for s in strategies]
    problems = held_out(args.task, args.limit, args.seed, args.digits)
    try:
        model = resolve(model_spec, device="cpu")
    except ModelError as e:
        ap.error(f"--model: {e}")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.name).strip("-")
    size = f"{args.digits}" if args.task == "arith" else ""
    run = f"seqthink-{name}-{args.task}{size}-heldout-n{args.limit}-s{args.seed}"
    try:
        store = Store(args.db)
    except UserError as e:  # not SQLite, another program's database, a path that cannot be one
        ap.error(str(e))
    task_label = "countdown:count=3-4,split=test" if args.task == "countdown" else f"arith:digits={args.digits}"
    config = {"task": task_label, "model": model_spec, "limit": args.limit,
              "seeds": [args.seed], "strategies": specs, "budgets": [0], "threads": args.threads,
              "settings": {s.spec: s.settings for s in strategies}}
    try:
        store.open_run(run, config, __version__, model.describe())
    except RunMismatchError as e:  # a stored strategy whose defaults changed since
        ap.error(str(e))
    done = store.done(run)
    cells = [c for c in grid(problems, strategies, [Budget()], [args.seed]) if c.key not in done]
    print(f"run {run}: {len(cells)} cells to run ({len(done)} stored)", file=sys.stderr)
    start, count, shown = time.perf_counter(), [0], [time.perf_counter()]

    def on_row(row) -> None:  # a line every 50 cells or 30 s, and at the last cell
        store.add(row)
        count[0] += 1
        now = time.perf_counter()
        if count[0] % 50 == 0 or now - shown[0] >= 30 or count[0] == len(cells):
            shown[0] = now
            print(f"  {count[0]}/{len(cells)} cells, {now - start:.0f} s", file=sys.stderr)

    try:
        asyncio.run(run_local(run, cells, model, on_row, concurrency=args.concurrency))
    except KeyboardInterrupt:  # every finished cell is stored already
        print(f"\ninterrupted: {count[0]} of {len(cells)} cells stored in {args.db}; the same "
              "command resumes", file=sys.stderr)
        store.close()
        return 130
    elapsed = time.perf_counter() - start

    rows = store.rows(run)
    stats = summarize(rows)
    by_label = {s.label: s for s in stats}
    seconds = {s: sum(r.latency for r in rows if r.strategy == s) for s in specs}
    what = "countdown (3-4 numbers, held out)" if args.task == "countdown" else f"{args.digits}-digit addition"
    print(f"\n{model_spec}, {what}, {len(problems)} problems, "
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
        print("\n" + auto_against_frontier(a, others, args.db))
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
    title = f"{model_spec} · {what} · {len(problems)} problems\n"
    title += "all: " + ", ".join(sorted(shared))
    plot_accuracy_vs_tokens([(run, [replace(s, label=short(s.label, shared)) for s in stats])], title, plot)
    print(f"\nreport: {paths.markdown}\nplots:  {paths.plots[0]}, {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`ponder bench` and `ponder report`: parse and validate everything, then hand over to the runner.

Every user mistake (unknown task, unreadable data file, malformed strategy or budget, a model that
cannot load) is reported in one line before any model work starts.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ponder import __version__
from ponder.argtypes import positive_int
from ponder.budget import Budget
from ponder.errors import UserError

DEFAULT_DB = "runs/ponder.sqlite"


def add_bench_commands(sub) -> None:
    b = sub.add_parser("bench", help="run strategies x budgets over a problem set, resumably")
    b.add_argument(
        "--task", required=True,
        help="gsm8k, math500, aime24, aime25, amc23, or a generator with options: "
        "arith[:digits=4,op=add|mul|mix], countdown[:count=4]",
    )
    b.add_argument("--data", help="local JSONL (.jsonl or .jsonl.gz) instead of the Hugging Face Hub")
    b.add_argument("--limit", type=positive_int, help="first N problems (generators: how many)")
    b.add_argument("--seed", default="0", help="seed, or comma-separated seeds (one cell per seed)")
    b.add_argument("--level", help="subset by level, where the set has levels (math500: 1-5)")
    b.add_argument("--subject", help="subset by subject, where the set has subjects")
    b.add_argument("--model", help="model spec ($PONDER_MODEL or 'default')")
    b.add_argument(
        "--strategy", action="append", required=True,
        help="comma-separated NAME[:key=value,...] specs, e.g. cot,vote:n=4 (repeatable)",
    )
    b.add_argument("--budget", help="comma-separated caps on total tokens per problem")
    b.add_argument(
        "--concurrency", type=positive_int,
        help="problems in flight (default: 8 for HTTP servers, 1 for in-process models, whose "
        "calls run one at a time anyway and would only queue, inflating measured latency)",
    )
    b.add_argument("--run", help="run name (default: TASK-MODEL); the same name resumes")
    b.add_argument("--db", default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})")
    b.add_argument("--executor", choices=("local", "ray"), default="local")
    b.add_argument("--workers", type=positive_int, default=2, help="Ray workers (--executor ray)")
    b.add_argument("--ray-address", help="an existing Ray cluster (default: start a local one)")
    b.set_defaults(func=cmd_bench)

    r = sub.add_parser("report", help="Markdown + HTML report and plots for one or two runs")
    r.add_argument("runs", nargs="+", metavar="RUN", help="one run, or two to compare")
    r.add_argument("--db", default=DEFAULT_DB)
    r.add_argument("--out", help="output folder (default reports/RUN[-vs-RUN2])")
    r.set_defaults(func=cmd_report)


def split_strategies(values: list[str]) -> list[str]:
    """Split "cot,vote:n=4,temperature=0.5" into ["cot", "vote:n=4,temperature=0.5"]: a piece
    that is key=value without a strategy name continues the previous spec (a value may hold a
    colon: "beam:n=2,verifier=prm:PATH")."""
    specs: list[str] = []
    for value in values:
        for piece in filter(None, (p.strip() for p in value.split(","))):
            key = piece.partition("=")[0]
            if specs and "=" in piece and ":" not in key:
                specs[-1] += "," + piece
            else:
                specs.append(piece)
    return specs


def parse_budgets(text: str | None) -> list[Budget]:
    if text is None:
        return [Budget()]
    out = []
    for piece in text.split(","):
        piece = piece.strip()
        if not re.fullmatch(r"\d+", piece) or int(piece) < 1:
            raise ValueError(f"--budget: {piece!r} is not a positive integer number of tokens")
        out.append(Budget(int(piece)))
    return out


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seed: {text!r} is not an integer or a comma-separated list") from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower()


def cmd_bench(args: argparse.Namespace) -> int:
    from ponder.bench.progress import BenchProgress
    from ponder.bench.runner import grid, run_local
    from ponder.bench.store import Store, budget_column
    from ponder.models import resolve
    from ponder.problems import load_problems
    from ponder.problems.tasks import parse_task
    from ponder.think import parse_strategy

    # --- validate everything before any model work ---
    try:
        budgets, seeds = parse_budgets(args.budget), parse_seeds(args.seed)
    except ValueError as e:
        raise UserError(str(e)) from None
    strategies = [parse_strategy(s) for s in split_strategies(args.strategy)]
    specs = [s.spec for s in strategies]
    task, task_options = parse_task(args.task)
    problems = load_problems(
        task, data=args.data, limit=args.limit, seed=seeds[0], level=args.level,
        subject=args.subject, **task_options,
    )
    if not problems:
        raise UserError(f"no problems selected from {args.task} (check --level/--subject)")
    model = resolve(args.model)
    model_spec = args.model or "default"
    run = args.run or f"{_slug(args.task)}-{_slug(model.name)}"
    config = {
        "task": args.task, "model": model_spec, "data": args.data, "limit": args.limit,
        "level": args.level, "subject": args.subject, "seeds": seeds,
        "strategies": specs, "budgets": [budget_column(b) for b in budgets],
        "executor": args.executor,
    }
    identity = model.describe()
    concurrency = args.concurrency or (8 if identity.get("backend") == "openai" else 1)
    store = Store(args.db)
    store.open_run(run, config, __version__, identity)

    done = store.done(run)
    cells = [c for c in grid(problems, strategies, budgets, seeds) if c.key not in done]
    err = Console(stderr=True, highlight=False)
    total = len(problems) * len(specs) * len(budgets) * len(seeds)
    err.print(
        f"run [bold]{escape(run)}[/bold]: {len(problems)} problems x {len(specs)} strategies x "
        f"{len(budgets)} budgets x {len(seeds)} seeds = {total} cells, {total - len(cells)} already done"
    )
    progress = BenchProgress(len(cells), err)

    def on_row(row) -> None:
        store.add(row)
        progress.add(row)

    try:
        with progress:
            if args.executor == "ray":
                from ponder.bench.ray_executor import RayUnavailable, run_ray

                asyncio.run(model.aclose())  # workers build their own clients
                try:
                    run_ray(run, cells, model_spec, on_row, args.workers, args.ray_address)
                except RayUnavailable as e:
                    raise UserError(str(e)) from None
            else:
                asyncio.run(run_local(run, cells, model, on_row, concurrency))
    except KeyboardInterrupt:
        err.print(
            f"\ninterrupted: {progress.done} cells saved this time; "
            "run the same command again to resume"
        )
        return 130
    finally:
        store.close()
    err.print(progress.summary())
    print(f"run {run} complete: ponder report {run}" + ("" if args.db == DEFAULT_DB else f" --db {args.db}"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ponder.bench.report import ReportError, write_report
    from ponder.bench.store import Store, budget_column

    if len(args.runs) > 2:
        raise UserError("report takes one run, or two to compare")
    if not Path(args.db).is_file():
        raise UserError(f"no results database at {args.db} (run `ponder bench` first or pass --db)")
    out = args.out or str(Path("reports") / "-vs-".join(args.runs))
    store = Store(args.db)
    try:
        paths = write_report(store, args.runs, out)
    except ReportError as e:
        raise UserError(str(e)) from None
    finally:
        store.close()
    print(f"markdown: {paths.markdown}\nhtml:     {paths.html}")
    for p in paths.plots:
        print(f"plot:     {p}")
    sys.stdout.flush()
    return 0

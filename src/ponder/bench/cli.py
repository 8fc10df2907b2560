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
from ponder.argtypes import THREADS_HELP, positive_int
from ponder.budget import Budget
from ponder.errors import UserError
from ponder.problems.mapped import GRADERS

DEFAULT_DB = "runs/ponder.sqlite"


def add_bench_commands(sub) -> None:
    b = sub.add_parser("bench", help="run strategies x budgets over a problem set, resumably")
    b.add_argument(
        "--task",
        help="gsm8k, math500, aime24, aime25, amc23, humaneval, a generator with options "
        "(arith[:digits=4,op=add|mul|mix], countdown[:count=4]), or hf:DATASET[:CONFIG][@SPLIT]: "
        "any Hub dataset, mapped with --question/--answer/--grader; omit it to map your own --data",
    )
    b.add_argument(
        "--data",
        help="local JSONL (.jsonl or .jsonl.gz): a known --task's rows instead of the Hub, or "
        "without --task any rows, mapped with --question/--answer/--grader",
    )
    b.add_argument(
        "--question", metavar="TEMPLATE",
        help="the question from a row's fields, e.g. '{Body} {Question}' (default: its question or "
        "problem field)",
    )
    b.add_argument(
        "--answer", metavar="TEMPLATE",
        help="the reference answer, e.g. '{Answer}' (default: the answer field, else the \\boxed{} "
        "answer of a MATH-style solution field; a \\boxed{} in the text is read out)",
    )
    b.add_argument(
        "--grader", choices=GRADERS,
        help="how mapped rows are graded (default math); choice: a letter A-E; countdown: the "
        "row's nums/numbers and target",
    )
    b.add_argument("--limit", type=positive_int, help="first N problems (generators: how many)")
    b.add_argument("--seed", default="0", help="seed, or comma-separated seeds (one cell per seed)")
    b.add_argument("--level", help="subset by level, where the set has levels (math500: 1-5)")
    b.add_argument("--subject", help="subset by subject, where the set has subjects")
    b.add_argument("--model", help="model spec ($PONDER_MODEL or 'default')")
    b.add_argument(
        "--strategy", action="append",
        help="comma-separated NAME[:key=value,...] specs, e.g. cot,vote:n=4 (repeatable; default cot)",
    )
    b.add_argument("--budget", help="comma-separated caps on total tokens per problem")
    b.add_argument(
        "--concurrency", type=positive_int,
        help="problems in flight (default: 8 for HTTP servers, 16 for hf/lab models, whose "
        "backend batches pending calls together, 1 for llama.cpp models, whose calls run one at "
        "a time and would only queue, inflating measured latency)",
    )
    b.add_argument("--threads", type=positive_int, help=THREADS_HELP)
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
    from ponder.bench.runner import grid, run_local, unseeded
    from ponder.bench.store import Store, budget_column
    from ponder.models import resolve, thread_count
    from ponder.problems import load_problems
    from ponder.problems.tasks import parse_task
    from ponder.think import parse_strategy

    # --- validate everything before any model work ---
    try:
        budgets, seeds = parse_budgets(args.budget), parse_seeds(args.seed)
    except ValueError as e:
        raise UserError(str(e)) from None
    specs_given = split_strategies(args.strategy or ["cot"])
    # operator: the machine's own user
    strategies = unseeded([parse_strategy(s, operator=True) for s in specs_given])
    specs = [s.spec for s in strategies]
    mapped = args.task is None or args.task.strip().lower().startswith("hf:")
    if mapped:
        problems = load_mapped_problems(args)
    else:
        if args.question or args.answer or args.grader:
            raise UserError(
                f"--question/--answer/--grader map your own rows (--data FILE without --task, or "
                f"--task hf:DATASET); {args.task} has its own fields"
            )
        task, task_options = parse_task(args.task)
        problems = load_problems(
            task, data=args.data, limit=args.limit, seed=seeds[0], level=args.level,
            subject=args.subject, **task_options,
        )
    task_name = args.task or Path(args.data).name
    if not problems:
        raise UserError(f"no problems selected from {task_name} (check --level/--subject)")
    model = resolve(args.model, threads=args.threads)
    model_spec = args.model or "default"
    stem = task_name.removesuffix(".gz").removesuffix(".jsonl")
    run = args.run or f"{_slug(stem)}-{_slug(model.name)}"
    config = {
        "task": task_name, "model": model_spec, "data": args.data, "limit": args.limit,
        "level": args.level, "subject": args.subject, "seeds": seeds,
        "strategies": specs, "settings": {s.spec: s.settings for s in strategies},
        "budgets": [budget_column(b) for b in budgets],
        "executor": args.executor,
    }
    if mapped:
        config.update(question=args.question, answer=args.answer, grader=args.grader or "math")
    identity = model.describe()
    # A server takes parallel requests and the hf backend batches pending ones (models.hf); the
    # llama.cpp backend runs one call at a time.
    concurrency = args.concurrency or {"openai": 8, "hf": 16}.get(identity.get("backend"), 1)
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
                    threads = thread_count(args.threads)  # the driver's $PONDER_THREADS too
                    run_ray(run, cells, model_spec, on_row, args.workers, args.ray_address, threads)
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


def load_mapped_problems(args: argparse.Namespace) -> list:
    """``--data FILE`` without ``--task``, or ``--task hf:DATASET``: rows mapped by the templates."""
    from ponder.problems.mapped import Mapping, load_mapped, parse_hf_task

    hub = parse_hf_task(args.task) if args.task is not None else None
    if hub is None and args.data is None:
        raise UserError("pass --task (a known set, a generator or hf:DATASET) or --data FILE")
    if hub is not None and args.data is not None:
        raise UserError(f"--task {args.task} reads the Hub; drop --data, or drop --task to map the file")
    mapping = Mapping(args.question, args.answer, args.grader or "math")
    return load_mapped(
        mapping, data=args.data, hub=hub, limit=args.limit, level=args.level, subject=args.subject
    )


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

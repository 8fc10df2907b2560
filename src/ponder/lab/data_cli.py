"""`ponder data`: make training data. `ponder data synth` samples a model and keeps what the
verifier accepts (``lab.synth``); the rows are ``ponder train sft --data FILE`` input.

Every user mistake (unknown task, malformed strategy, a model that cannot load, an --out that is
not a synth file or was made otherwise: ``lab.synth.MadeWith``) is reported in one line before
any model work starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ponder.argtypes import THREADS_HELP, positive_int
from ponder.problems.tasks import parse_task
from ponder.errors import UserError


def add_data_commands(sub) -> None:
    d = sub.add_parser("data", help="make training data (synth: rejection-sample a model)")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=type(d))
    s = dsub.add_parser(
        "synth", help="STaR-style: sample a model on a task, keep what the verifier accepts (JSONL)"
    )
    s.add_argument(
        "--task", required=True,
        help="a problem set or generator with options, as in bench: arith:digits=3, countdown, gsm8k",
    )
    s.add_argument("--data", help="local JSONL (.jsonl or .jsonl.gz) instead of the Hugging Face Hub")
    s.add_argument("--limit", type=positive_int, help="first N problems (generators: how many)")
    s.add_argument("--seed", type=int, default=0, help="problem generator and sampling seed (default 0)")
    s.add_argument("--model", help="model spec ($PONDER_MODEL or 'default'), e.g. openai:MODEL@URL")
    s.add_argument("--strategy", default="cot", help="NAME[:key=value,...] (default cot), e.g. vote:n=4")
    s.add_argument("--budget", type=positive_int, help="cap on total tokens per problem")
    s.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    s.add_argument("--out", required=True, help="output .jsonl; an existing one is resumed "
                   "(only made the same way: task, model, strategy, --data, --budget, --keep)")
    s.add_argument(
        "--keep", choices=("correct", "all"), default="correct",
        help="correct (default): only accepted samples, rejected problems go to OUT.rejected.jsonl; "
        "all: every problem, with a 'correct' field",
    )
    s.add_argument(
        "--concurrency", type=positive_int,
        help="problems in flight (default: 8 for HTTP servers, 1 for in-process models)",
    )
    s.set_defaults(func=cmd_synth)


class _SynthProgress:
    """kept/seen on a rich progress bar (stderr)."""

    def __init__(self, total: int, console: Console) -> None:
        self._progress = Progress(
            TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"), console=console,
        )
        self._task = self._progress.add_task("synth", total=total, stats="")

    def __enter__(self) -> _SynthProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, stats) -> None:
        rate = 100 * stats.kept / stats.seen if stats.seen else 0.0
        text = f"kept {stats.kept}/{stats.seen} seen ({rate:.0f}%)"
        self._progress.update(self._task, completed=stats.seen, stats=text)


def cmd_synth(args: argparse.Namespace) -> int:
    from ponder.lab.synth import MadeWith, SynthFile, SynthStats, synthesize
    from ponder.models import resolve
    from ponder.problems import load_problems
    from ponder.think import parse_strategy

    # --- validate everything before any model work ---
    strategy = parse_strategy(args.strategy)
    task, task_options = parse_task(args.task)
    problems = load_problems(task, data=args.data, limit=args.limit, seed=args.seed, **task_options)
    if not problems:
        raise UserError(f"no problems selected from {args.task}")
    out = SynthFile(args.out)
    # the spec resolve() will load, so that rows made under another $PONDER_MODEL differ
    model_spec = (args.model or os.environ.get("PONDER_MODEL") or "default").strip()
    made = MadeWith(args.task, model_spec, strategy.spec, args.data, args.budget, args.keep)
    out.check_made_with(made)
    model = resolve(model_spec, threads=args.threads)
    concurrency = args.concurrency or (8 if model.describe().get("backend") == "openai" else 1)

    err = Console(stderr=True, highlight=False)
    todo = sum(p.id not in out.done for p in problems)
    err.print(
        f"synth [bold]{escape(args.task)}[/bold] with {escape(model.name)} / {escape(strategy.spec)}: "
        f"{len(problems)} problems, {len(problems) - todo} already in {escape(str(out.path))}"
    )
    progress = _SynthProgress(todo, err)
    stats = SynthStats()

    def on_result(s: SynthStats) -> None:
        nonlocal stats
        stats = s
        progress.update(s)

    try:
        with progress:
            stats = asyncio.run(
                synthesize(
                    problems, model, strategy, out, made, seed=args.seed,
                    concurrency=concurrency, on_result=on_result,
                )
            )
    except KeyboardInterrupt:
        err.print(
            f"\ninterrupted: {stats.seen} problems saved this time; run the same command to resume"
        )
        return 130
    print(f"kept {stats.kept} of {stats.seen} new problems -> {out.path}"
          + (f" (rejected: {out.rejected_path})" if args.keep == "correct" and stats.seen > stats.kept else ""))
    return 0

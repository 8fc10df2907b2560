"""The `ponder` command. Thin: parse arguments, build objects, run, render.

User mistakes (bad flags, a missing model file, an unreachable server, a malformed strategy spec)
end in one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ponder import __version__
from ponder.argtypes import THREADS_HELP, integer, number, positive_int
from ponder.budget import Budget
from ponder.errors import UserError
from ponder.bench.store import RunMismatchError
from ponder.models import ModelError, resolve, spec_help
from ponder.problems.errors import ProblemSetError
from ponder.think import StrategySpecError, parse_strategy


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ponder", description="Make language models think, and measure what it buys.")
    p.add_argument("--version", action="version", version=f"ponder {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("solve", help="answer one question, streaming the model's reasoning")
    s.add_argument("question", nargs="?", help="the question to answer (or give --messages)")
    s.add_argument("--system", help="a system prompt (the strategy's instructions follow it)")
    s.add_argument(
        "--messages", metavar="FILE",
        help="a conversation as a JSON list of {role, content} messages (OpenAI's format); its "
        "last user message is the question",
    )  # fmt: skip
    s.add_argument("--model", help=f"model spec ($PONDER_MODEL or 'default'); {spec_help()}")
    s.add_argument("--strategy", default="cot", help="NAME[:key=value,...], e.g. cot or vote:n=8")
    s.add_argument("--budget", type=positive_int, help="cap on total tokens (prompt + completion)")
    s.add_argument("--max-tokens", type=integer, help="cap on tokens per sample (default 512)")
    s.add_argument("--temperature", type=number, help="sampling temperature, 0 to 2")
    s.add_argument("--seed", type=integer, help="seed for reproducible sampling")
    s.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    s.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    s.set_defaults(func=cmd_solve)

    from ponder.bench.cli import add_bench_commands
    from ponder.lab.cli import add_train_commands
    from ponder.lab.data_cli import add_data_commands
    from ponder.research.cli import add_research_commands
    from ponder.serve.cli import add_serve_commands
    from ponder.tools.cli import add_sandbox_commands

    add_bench_commands(sub)
    add_train_commands(sub)
    add_data_commands(sub)
    add_research_commands(sub)
    add_serve_commands(sub)
    add_sandbox_commands(sub)
    return p


def strategy_from_args(args: argparse.Namespace):
    """``--strategy`` with ``--max-tokens``, ``--temperature`` and ``--seed`` filling its sampling
    settings; a bad flag value is named as the flag."""
    flags = {"max_tokens": "--max-tokens", "temperature": "--temperature", "seed": "--seed"}
    try:
        return parse_strategy(
            args.strategy, operator=True, max_tokens=args.max_tokens,
            temperature=args.temperature, seed=args.seed,
        )  # fmt: skip
    except StrategySpecError as e:
        if e.field in flags and not e.from_spec:
            raise UserError(f"{flags[e.field]}: {e.detail}") from None
        raise UserError(f"--strategy: {e}") from None


def problem_from_args(args: argparse.Namespace):
    """The question, or the conversation of ``--messages``, with ``--system`` first."""
    from ponder.problems.posed import posed
    from ponder.problems.conversation import ConversationError, parse_conversation

    if args.messages is not None and args.question is not None:
        raise UserError("give the question or --messages, not both")
    if args.messages is None:
        if not (args.question or "").strip():
            raise UserError("the question is empty")
        messages = [{"role": "user", "content": args.question.strip()}]
    else:
        try:
            with open(args.messages, encoding="utf-8") as f:
                messages = json.load(f)
        except OSError as e:
            raise UserError(f"--messages: cannot read {args.messages}: {e.strerror}") from None
        except (ValueError, RecursionError) as e:
            raise UserError(f"--messages: {args.messages} is not JSON ({e})") from None
    if args.system:
        messages = [{"role": "system", "content": args.system}, *messages]
    try:
        question, turns = parse_conversation(messages)
    except ConversationError as e:
        where = f"--messages {args.messages}: {e.param}" if args.messages else e.param
        raise UserError(f"{where}: {e}") from None
    problem = posed("cli", question.strip(), messages=turns)
    if problem.question != question.strip():
        print(f"ponder: read as a countdown puzzle: {problem.question}", file=sys.stderr)
    return problem


def cmd_solve(args: argparse.Namespace) -> int:
    from ponder.terminal import solve_and_render
    from ponder.verify.grade import check_free

    problem = problem_from_args(args)
    strategy = strategy_from_args(args)
    model = resolve(args.model, threads=args.threads)
    result = asyncio.run(
        solve_and_render(problem, model, strategy, Budget(args.budget), json_mode=args.json)
    )
    if args.json:
        out = result.to_dict()
        out.update(question=problem.question, model=model.name, strategy=strategy.spec)
        if (verdict := check_free(problem, result.answer)) is not None:  # a puzzle's own rules
            out["checked"] = {"ok": verdict.ok, "reason": verdict.reason}
        print(json.dumps(out, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UserError, ModelError, StrategySpecError, ProblemSetError, RunMismatchError) as e:
        print(f"ponder: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nponder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Render a strategy's events in the terminal: stream the reasoning, then the answer and usage."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from ponder.budget import Budget, Usage
from ponder.events import Final, Result, Sampled, TextDelta, Voted
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.base import Strategy


def usage_line(usage: Usage) -> str:
    calls = f"{usage.calls} call" + ("s" if usage.calls != 1 else "")
    return (
        f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
        f"{calls}, {usage.seconds:.2f} s, {usage.tokens_per_second:.1f} tok/s"
    )


async def solve_and_render(
    problem: Problem, model: Model, strategy: Strategy, budget: Budget, json_mode: bool = False
) -> Result:
    """Run the strategy; unless ``json_mode``, stream sample 0's text to stdout as it is generated
    and report other samples as they finish."""
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False)
    result: Result | None = None
    sampled: list[Sampled] = []
    try:
        async for ev in strategy.run(problem, model, budget):
            if isinstance(ev, Final):
                result = ev.result
            elif json_mode:
                continue
            elif isinstance(ev, TextDelta) and ev.sample == 0:
                sys.stdout.write(ev.text)
                sys.stdout.flush()
            elif isinstance(ev, Sampled):
                if ev.sample == 0:
                    sys.stdout.write("\n")
                sampled.append(ev)
            elif isinstance(ev, Voted) and ev.tally:
                for smp in sampled if len(sampled) > 1 else ():
                    err.print(
                        f"[dim]sample {smp.sample}: answer {escape(repr(smp.answer))}, "
                        f"{smp.completion_tokens} tokens ({smp.finish_reason})[/dim]"
                    )
                tally = ", ".join(f"{k}: {v:g}" for k, v in sorted(ev.tally.items(), key=lambda kv: -kv[1]))
                err.print(f"[dim]tally: {escape(tally)}[/dim]")
    finally:
        await model.aclose()
    assert result is not None
    if not json_mode:
        out.print()
        out.print("[bold]Answer:[/bold] " + escape(result.answer if result.answer is not None else "(none)"))
        out.print(f"[dim]{escape(result.how)}[/dim]")
        out.print(usage_line(result.usage))
    return result

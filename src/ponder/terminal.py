"""Render a strategy's events in the terminal.

A single chain of thought (`cot`, and `code` with one run) streams its text to stdout as it is
generated. Strategies that sample many times show one live status line on stderr instead (samples
done, the current tally, tokens spent), then print the chosen sample's text. Programs the model runs
(`code`, `auto` routing to it) get a short line each: the call, then how it ended with the first
line of its output. Warnings (``Warned``: steps cut at ``step_tokens``, samples cut off) and a
search's backtracks (``Backtracked``: reflect rewriting a step, beam backing off to a set-aside
node) get a line each too, so a search that goes back is seen going back. Both end with the
answer, how it was chosen, and one usage line.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from ponder.budget import Budget, Usage
from ponder.events import (
    Backtracked,
    Final,
    Guarded,
    Phase,
    Result,
    Sampled,
    Spent,
    Stopped,
    TextDelta,
    ToolCalled,
    ToolResult,
    Voted,
    Warned,
)
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.base import Strategy
from ponder.verify.grade import check_free
from ponder.verify.score import Score


def usage_line(usage: Usage) -> str:
    calls = f"{usage.calls} call" + ("s" if usage.calls != 1 else "")
    return (
        f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
        f"{calls}, {usage.seconds:.2f} s, {usage.tokens_per_second:.1f} tok/s"
    )


def tool_line(ev: ToolCalled | ToolResult) -> str:
    """One short line for a tool call or its result."""
    if isinstance(ev, ToolCalled):
        lines = len(ev.code.strip().splitlines())
        return f"[tool] call {ev.call}: running {lines} line{'s' * (lines != 1)} of {ev.language}"
    ended = f"killed ({ev.killed_by})" if ev.exit_code is None else f"exit status {ev.exit_code}"
    if ev.killed_by and ev.exit_code is not None:
        ended += f" ({ev.killed_by})"
    line, more = ev.first_printed(60)
    first = f": {line}{'…' if more else ''}" if line else ""
    return f"[tool] call {ev.call}: {ended}, {ev.seconds:.2f} s{first}"


def notice_line(ev: Warned | Backtracked) -> str:
    if isinstance(ev, Warned):
        return f"[warning] {ev.message}"
    return f"[back] step {ev.step}, round {ev.round}: {ev.reason}"


class _Status:
    """The live line: what a many-sample strategy has done so far."""

    def __init__(self) -> None:
        self.samples = 0
        self.streaming: set[int] = set()
        self.tally: dict[str, float] = {}
        self.tokens = 0
        self.note = ""

    def update(self, ev) -> None:
        if isinstance(ev, TextDelta):
            self.streaming.add(ev.sample)
        elif isinstance(ev, Sampled):
            self.samples += 1
            self.streaming.discard(ev.sample)
            if ev.answer is not None and not self.tally:
                self.note = f"last answer {ev.answer}"
        elif isinstance(ev, Voted):
            self.tally = ev.tally
        elif isinstance(ev, Spent):
            self.tokens = ev.usage.total_tokens  # Spent carries the usage so far
        elif isinstance(ev, (Stopped, Phase)):
            self.note = ev.reason if isinstance(ev, Stopped) else f"phase {ev.name} {ev.detail}"
        elif isinstance(ev, Guarded):
            self.note = f"guard: {ev.decision} ({ev.reason})"

    def render(self) -> str:
        top = sorted(self.tally.items(), key=lambda kv: -kv[1])[:4]
        tally = ", ".join(f"{escape(k)}: {v:g}" for k, v in top) or "-"
        live = f", {len(self.streaming)} generating" if self.streaming else ""
        note = f" · {escape(self.note)}" if self.note else ""
        return (
            f"[cyan]{self.samples} samples done{live}[/cyan] · tally {tally} · "
            f"{self.tokens:,} tokens spent{note}"
        )


async def solve_and_render(
    problem: Problem, model: Model, strategy: Strategy, budget: Budget, json_mode: bool = False
) -> Result:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False)
    name = getattr(strategy, "name", "")
    stream_text = not json_mode and (name == "cot" or name == "code" and strategy.n == 1)
    status = _Status()
    result: Result | None = None
    live = Live(status.render(), console=err, transient=False, refresh_per_second=8)
    show_live = not json_mode and not stream_text
    try:
        if show_live:
            live.start()
        async for ev in strategy.run(problem, model, budget):
            if isinstance(ev, Final):
                result = ev.result
            elif stream_text and isinstance(ev, TextDelta):
                sys.stdout.write(ev.text)
                sys.stdout.flush()
            elif stream_text and isinstance(ev, (ToolCalled, ToolResult)):
                sys.stdout.write("\n" + tool_line(ev) + "\n")
                sys.stdout.flush()
            elif show_live and isinstance(ev, (ToolCalled, ToolResult)):
                err.print(escape(tool_line(ev)))  # above the live line, which stays last
            elif not json_mode and isinstance(ev, (Warned, Backtracked)):
                err.print(escape(notice_line(ev)), soft_wrap=True)  # one line, whole
            elif show_live:
                status.update(ev)
                live.update(status.render())
    finally:
        if show_live:
            live.stop()
            if not err.is_terminal:  # rich leaves its last frame without a newline there
                err.print()
        await model.aclose()
    if result is None:
        raise RuntimeError(f"strategy {strategy.spec} ended without a result")
    if not json_mode:
        if stream_text:
            sys.stdout.write("\n")
        elif result.text:
            out.print(escape(result.text), highlight=False)
        out.print()
        out.print("[bold]Answer:[/bold] " + escape(result.answer if result.answer is not None else "(none)"))
        out.print(f"[dim]{escape(result.how)}[/dim]")
        if (verdict := check_free(problem, result.answer)) is not None:
            out.print(f"checked against the puzzle's rules: {verdict_words(verdict)}")
        out.print(usage_line(result.usage))
    return result


def verdict_words(verdict: Score) -> str:
    """``right (equals 46)`` or ``wrong (value 35, not 46)``."""
    return f"{'right' if verdict.ok else 'wrong'} ({verdict.reason})"

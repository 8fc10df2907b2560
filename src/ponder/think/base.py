"""The Strategy protocol and the small helpers every strategy shares.

A strategy is ``run(problem, model, budget)``: an async iterator of Events that ends with ``Final``
carrying a Result. It never spends more than ``budget`` (prompt + completion tokens over all of its
calls) and its Result's usage is the sum of its calls' usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Protocol

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Result, TextDelta
from ponder.models.base import Completion, Model, Request, StopCheck
from ponder.problems.base import Problem

SYSTEM_PROMPT = (
    "Solve the problem. Think step by step, then give the final answer on its own line "
    "as \\boxed{ANSWER}."
)


class Strategy(Protocol):
    spec: str  # the canonical NAME:key=value,... string that built it

    def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]: ...


def solve_request(problem: Problem, **sampling) -> Request:
    """The chain-of-thought request every sampling strategy starts from."""
    return Request.chat(problem.question, system=SYSTEM_PROMPT, **sampling)


def fit_to_budget(
    model: Model, request: Request, budget: Budget, spent: Usage
) -> Request | None:
    """Shrink ``request.max_tokens`` so that the call cannot overspend; None if nothing fits.

    The worst case of a call is its prompt charge plus n * max_tokens completion tokens.
    """
    remaining = budget.remaining(spent)
    if remaining is None:
        return request
    per_sample = (remaining - model.count_prompt_tokens(request)) // request.n
    if per_sample < 1:
        return None
    return replace(request, max_tokens=min(request.max_tokens, per_sample))


async def stream_generate(
    model: Model, request: Request, first_index: int = 0, should_stop: StopCheck | None = None
) -> AsyncIterator[TextDelta | Completion]:
    """Run one model call, yielding TextDelta events as text arrives and finally the Completion.

    ``should_stop`` goes to the model (early stopping of single traces). If the consumer stops
    early, the model call is cancelled.
    """
    queue: asyncio.Queue = asyncio.Queue()
    finished = object()

    def on_text(i: int, piece: str) -> None:
        queue.put_nowait(TextDelta(first_index + i, piece))

    kwargs = {"should_stop": should_stop} if should_stop is not None else {}
    task = asyncio.ensure_future(model.generate(request, on_text=on_text, **kwargs))
    task.add_done_callback(lambda _: queue.put_nowait(finished))
    try:
        while (item := await queue.get()) is not finished:
            yield item
        yield task.result()
    finally:
        if not task.done():
            task.cancel()


async def final_result(events: AsyncIterator[Event]) -> Result:
    """Drain a strategy's events and return its Result (for callers that do not stream)."""
    result = None
    async for ev in events:
        if isinstance(ev, Final):
            result = ev.result
    if result is None:
        raise RuntimeError("strategy ended without a Final event")
    return result

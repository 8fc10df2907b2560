"""One request's work: run its strategy, turn the events into reasoning text, settle the answer.

What a response carries:

- ``content`` is the strategy's Result text: the full text of the chosen sample (for ``cot`` the
  one chain of thought; for ``vote`` the first sample that stated the winning answer; for
  ``deepthink`` the chosen agent's solution or the synthesis). Harnesses that extract
  ``\\boxed{...}`` or "The answer is" from ``content`` work unchanged.
- ``reasoning_content`` is a live transcript of all the work (``transcript.Transcript``): every
  sample as it is written, the chosen one included, then votes, scores and phases.
- ``usage`` is the Result's usage, i.e. the sum over every internal model call (samples, judge
  calls, syntheses), prompt tokens included. ``completion_tokens_details.reasoning_tokens`` is what
  did not reach the answer: all completion tokens minus the chosen sample's own completion tokens
  (``Result.chosen``, counted by the backend).
- when the chosen sample answered with tool calls (``Result.tool_calls``), ``content`` is null,
  ``tool_calls`` carries them and ``finish_reason`` is "tool_calls", as OpenAI answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from ponder.events import Event, Final, Guarded, Result, Warned
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.problems.posed import posed
from ponder.problems.conversation import ToolCall
from ponder.serve.protocol import ChatRequest
from ponder.serve.transcript import Transcript


@dataclass
class Progress:
    """A strategy event (None for the transcript's closing text) and the reasoning text it adds."""

    event: Event | None
    reasoning: str


@dataclass
class Answer:
    """How the request ended, ready for an OpenAI response."""

    content: str | None  # None when the answer is tool calls
    # "stop"; "length" when the chosen sample hit max_tokens (or none fit); "tool_calls"
    finish_reason: str
    usage: dict[str, Any]  # OpenAI's usage object
    result: Result
    strategy: str
    tool_calls: tuple[ToolCall, ...] = ()

    def summary(self, model: Model) -> dict[str, Any]:
        """The `ponder` extension field: what was answered and how, with the calls and time, the
        policy guard's decision (with what its deliberation cost) when the run was guarded, and
        the run's warnings (samples the backend cut off, ...) when it had any."""
        r = self.result
        out = {
            "answer": r.answer,
            "how": r.how,
            "strategy": self.strategy,
            "model": model.name,
            "calls": r.usage.calls,
            "seconds": round(r.usage.seconds, 3),
        }
        guarded = [e for e in r.trace if isinstance(e, Guarded)]
        if guarded:
            g, u = guarded[-1], guarded[-1].usage
            out["guard"] = {
                "decision": g.decision,
                "reason": g.reason,
                "usage": {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                          "total_tokens": u.total_tokens},
            }  # fmt: skip
        warnings = [e.message for e in r.trace if isinstance(e, Warned)]
        if warnings:
            out["warnings"] = warnings
        return out


def settle(result: Result, strategy: str) -> Answer:
    usage, chosen = result.usage, result.chosen
    answer_tokens = min(chosen.completion_tokens if chosen else 0, usage.completion_tokens)
    cut = (chosen is not None and chosen.finish_reason == "length") or (
        chosen is None and usage.calls == 0
    )
    calls = result.tool_calls
    return Answer(
        content=None if calls else result.text,
        finish_reason="tool_calls" if calls else "length" if cut else "stop",
        usage={
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "completion_tokens_details": {
                "reasoning_tokens": usage.completion_tokens - answer_tokens
            },
        },
        result=result,
        strategy=strategy,
        tool_calls=calls,
    )


def problem_of(request: ChatRequest) -> Problem:
    """The problem a request poses: its conversation, whose last user message is the question."""
    return posed("serve", request.question, messages=request.messages, tools=request.tools)


async def think(request: ChatRequest, model: Model) -> AsyncIterator[Progress | Answer]:
    """Progress as the strategy works, then the Answer.

    The strategy's generator is closed however this one ends: when the client goes away, the
    consumer is cancelled or closes us, and the strategy's in-flight model calls are cancelled.
    """
    problem = problem_of(request)
    transcript = Transcript()
    result = None
    async with aclosing(request.strategy.run(problem, model, request.budget)) as events:
        async for ev in events:
            if isinstance(ev, Final):  # the last event; the Answer reports it
                result = ev.result
                continue
            yield Progress(ev, transcript.feed(ev))
    if result is None:
        raise RuntimeError(f"strategy {request.strategy.spec} ended without a Final event")
    if tail := transcript.finish():
        yield Progress(None, tail)
    yield settle(result, request.strategy.spec)

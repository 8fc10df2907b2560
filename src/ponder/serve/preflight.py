"""Before a request is answered: will its strategy be able to make even one model call?

A request whose prompt is longer than the model's context, or whose budget (or ``n``) leaves no
room for one call, must be a 400 that says which limit and what would fit, not a 200 with empty
content, and it must be known before a stream's first byte. So the strategy is run once against a
stand-in model that counts prompts like the real one and stops at the first ``generate``: if the
strategy gets that far, the request can be served; if it gives up before calling, its reason is
the 400's message. Planning is pure arithmetic, so this costs no model time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ponder.budget import Budget
from ponder.errors import ProblemMismatch
from ponder.models.base import Completion, Model, Request
from ponder.problems.base import Problem
from ponder.serve.protocol import ApiError, ChatRequest
from ponder.think import Run


VERDICT_TOKENS = 8  # the guard's "Verdict:" continuation (4 tokens) and its marker, rounded up


class _FirstCall(Exception):
    """The strategy reached its first model call: the request can be served."""


class _TooLong(Exception):
    def __init__(self, prompt: int, context: int) -> None:
        self.prompt, self.context = prompt, context


class _StandIn:
    """Counts like ``model``; refuses a prompt beyond its context; stops at the first call."""

    def __init__(self, model: Model) -> None:
        self.model, self.name = model, model.name
        self.exact_usage = getattr(model, "exact_usage", True)
        self.native_tools = getattr(model, "native_tools", False)  # the same tools fallback
        self.first: Request | None = None  # the first call's request

    def count_prompt_tokens(self, request: Request) -> int:
        return self.model.count_prompt_tokens(request)

    async def generate(self, request: Request, on_text=None, should_stop=None) -> Completion:
        context = getattr(self.model, "context_length", None)
        if context is not None:
            prompt = self.model.count_prompt_tokens(replace(request, n=1))
            if prompt >= context:
                raise _TooLong(prompt, context)
        self.first = request
        raise _FirstCall

    def describe(self) -> dict[str, Any]:
        return self.model.describe()

    async def aclose(self) -> None:
        return None


async def preflight(chat: ChatRequest, model: Model, problem: Problem) -> None:
    """Raise the 400 that ``chat`` deserves if its strategy cannot make one model call, or asks a
    verifier that cannot rate the question (a stream would report that after its 200)."""
    try:
        chat.strategy.check_fits(problem)
    except ProblemMismatch as e:
        raise ApiError(400, str(e), param="model") from None
    stand_in = _StandIn(model)
    try:
        result = await chat.strategy.solve(problem, Run(stand_in, chat.budget))
    except _FirstCall:
        await _then_fits(chat, model, problem, stand_in.first)
        return
    except _TooLong as e:
        raise ApiError(
            400,
            f"the prompt is {e.prompt} tokens, and the model's context holds {e.context}: "
            "shorten the conversation",
            param="messages",
            code="context_length_exceeded",
        ) from None
    if result.usage.calls == 0:
        cap = chat.budget.max_tokens
        raise ApiError(
            400,
            f"no model call fits: {result.how} (a budget of {cap} tokens for "
            f"{chat.strategy.spec}; raise ponder.budget, or lower n or max_tokens)",
            param="ponder.budget",
            code="budget_too_small",
        )


async def _then_fits(chat: ChatRequest, model: Model, problem: Problem, first: Request) -> None:
    """A wrapper that answers through another strategy after its own first call (the policy
    guard: a deliberation, then ``then``) must leave that strategy room for one call too: the
    deliberation's worst case (its call and the short verdict call, each re-reading the prompt)
    comes off the budget, and the inner strategy is checked with what is left."""
    inner = getattr(chat.strategy, "answering", None)
    cap = chat.budget.max_tokens
    if inner is None or cap is None:
        return
    call = model.count_prompt_tokens(first) + first.max_tokens
    worst = 2 * call + VERDICT_TOKENS
    left = cap - worst
    if left < 1:
        raise ApiError(
            400,
            f"no model call fits: the guard's deliberation may take {worst} tokens of the budget "
            f"of {cap}, leaving nothing for {inner.spec}; raise ponder.budget",
            param="ponder.budget",
            code="budget_too_small",
        )
    await preflight(replace(chat, strategy=inner, budget=Budget(left)), model, problem)

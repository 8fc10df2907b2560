"""The budget meter: every model and scorer call of a strategy run goes through one.

"A strategy never overspends" is a property of this class, not of each strategy's care:

- ``fit`` plans a call: it shrinks ``max_tokens`` so that the call's worst case (its prompt plus
  ``n * max_tokens``, plus any tokens kept back per sample for scoring it afterwards) fits what is
  left; None is the typed refusal the strategy handles (there is no room for even one token);
- ``generate`` and ``score`` hold the worst case while the call runs (concurrent calls cannot
  together overspend), then charge the call's exact usage;
- after every call the meter checks that the call spent no more than its plan and that the total
  is within the cap. A backend or scorer that spends more than it was allowed is a bug in ponder
  (its token counting is wrong), and ``OverspendError`` says which call did it.

Backends whose prompt counts are estimates (``Model.exact_usage`` False: the OpenAI backend has no
tokenizer) are charged what the server reports and not held to the plan: there the cap holds to
the accuracy of the estimate (which errs high).

``limit(total)`` lowers the cap for a phase of a strategy (deepthink's shares); a strategy that
hands the rest of its work to another strategy shares its meter with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from ponder.budget import Budget, Usage
from ponder.models.base import Completion, Model, Request, StopCheck, TextCallback
from ponder.problems.base import Problem
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt, Scorer


class OverspendError(RuntimeError):
    """A call spent more than the meter allowed it: a bug in a backend's or scorer's counting, or
    a strategy that called without planning."""


class Meter:
    def __init__(self, model: Model, budget: Budget) -> None:
        self.model = model
        self.cap = budget.max_tokens  # None: no cap
        self.spent = Usage()
        self._held = 0  # worst cases of the calls in flight
        self._exact = getattr(model, "exact_usage", True)

    @property
    def remaining(self) -> int | None:
        """Tokens a new call may still plan on (calls in flight held back); None: no cap."""
        if self.cap is None:
            return None
        return self.cap - self.spent.total_tokens - self._held

    def affords(self, tokens: int) -> bool:
        return self.remaining is None or tokens <= self.remaining

    def cost(self, request: Request) -> int:
        """A call's worst case: its prompt charge plus n * max_tokens."""
        return self.model.count_prompt_tokens(request) + request.n * request.max_tokens

    def fit(
        self, request: Request, reserve: Callable[[int], int] | None = None
    ) -> Request | None:
        """``request`` with ``max_tokens`` shrunk to fit what is left, or None if nothing fits.

        ``reserve(m)``: tokens to keep back per sample of m tokens (scoring it afterwards); the
        largest m for which the prompt plus n * (m + reserve(m)) fits is chosen (reserve grows
        with m, so a binary search finds it).
        """
        remaining = self.remaining
        if remaining is None:
            return request
        room = remaining - self.model.count_prompt_tokens(request)
        extra = reserve or (lambda m: 0)

        def fits(m: int) -> bool:
            return request.n * (m + extra(m)) <= room

        if not fits(1):
            return None
        lo, hi = 1, request.max_tokens
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
        return request if lo == request.max_tokens else replace(request, max_tokens=lo)

    @contextmanager
    def limit(self, total: int | None) -> Iterator[None]:
        """Within the block, the cap is at most ``total`` tokens spent in all (None: unchanged)."""
        saved = self.cap
        if total is not None:
            self.cap = total if saved is None else min(saved, total)
        try:
            yield
        finally:
            self.cap = saved

    def _hold(self, tokens: int, what: str) -> None:
        if not self.affords(tokens):
            raise OverspendError(
                f"{what} was not planned: it may spend {tokens} tokens and {self.remaining} are "
                "left (a strategy must plan calls with Meter.fit or price them first)"
            )
        self._held += tokens

    def charge(self, usage: Usage, planned: int, what: str) -> None:
        """Add a finished call's usage; a call over its plan, or a total over the cap, is a bug."""
        self.spent = self.spent + usage
        if not self._exact:
            return
        if usage.total_tokens > planned:
            raise OverspendError(
                f"{what} spent {usage.total_tokens} tokens but was planned at most {planned}"
            )
        if self.cap is not None and self.spent.total_tokens > self.cap:
            raise OverspendError(
                f"{what} took the total to {self.spent.total_tokens} tokens, over the cap {self.cap}"
            )

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        """One model call, held to its worst case and charged its exact usage."""
        planned = self.cost(request)
        what = f"a call to {self.model.name}"
        self._hold(planned, what)
        try:
            kwargs = {"should_stop": should_stop} if should_stop is not None else {}
            completion = await self.model.generate(request, on_text=on_text, **kwargs)
        finally:
            self._held -= planned
        self.charge(completion.usage, planned, what)
        return completion

    def score_cost(self, scorer: Scorer, problem: Problem, attempts: Sequence[Attempt]) -> int:
        return sum(scorer.max_cost(problem, a, self.model) for a in attempts)

    async def score(self, scorer: Scorer, problem: Problem, attempt: Attempt) -> Score | None:
        """Rate one attempt, or None when the budget cannot pay for it."""
        scores = await self.score_all(scorer, problem, [attempt])
        return None if scores is None else scores[0]

    async def score_all(
        self, scorer: Scorer, problem: Problem, attempts: Sequence[Attempt]
    ) -> list[Score] | None:
        """Rate every attempt (concurrently), or none when the budget cannot pay for all of them
        (scoring only some would favour them arbitrarily)."""
        costs = [scorer.max_cost(problem, a, self.model) for a in attempts]
        if not self.affords(sum(costs)):
            return None
        what = f"scoring with {scorer.name}"
        self._hold(sum(costs), what)
        try:
            scores = await asyncio.gather(
                *(scorer.score(problem, a, self.model) for a in attempts)
            )
        finally:
            self._held -= sum(costs)
        for s, c in zip(scores, costs):
            self.charge(s.usage, c, what)
        return list(scores)

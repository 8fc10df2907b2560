"""`cot`: one chain-of-thought sample (Wei et al. 2022), the baseline every strategy is measured against."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Result, Sampled, Spent
from ponder.models.base import Completion, Model
from ponder.problems.base import Problem
from ponder.think.base import fit_to_budget, solve_request, stream_generate
from ponder.verify.extract import extract_answer


@dataclass
class Cot:
    """One sample. ``temperature=0`` is greedy decoding."""

    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None

    spec_name = "cot"

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("cot: max_tokens must be a positive integer")
        if self.temperature < 0:
            raise ValueError("cot: temperature must be >= 0")

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        req = solve_request(
            problem, max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed
        )
        req = fit_to_budget(model, req, budget, Usage())
        if req is None:
            yield Final(Result(None, "", "budget too small for the prompt", Usage()))
            return
        completion = None
        async for item in stream_generate(model, req):
            if isinstance(item, Completion):
                completion = item
            else:
                yield item
        sample = completion.samples[0]
        answer = extract_answer(sample.text)
        sampled = Sampled(0, sample.text, answer, sample.completion_tokens, sample.finish_reason)
        spent = Spent(completion.usage)
        yield sampled
        yield spent
        how = "single chain of thought" + ("" if answer else "; no answer found in the text")
        trace = [sampled.to_dict(), spent.to_dict()]
        yield Final(Result(answer, sample.text, how, completion.usage, trace))

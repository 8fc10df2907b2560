"""`vote`: self-consistency (Wang et al. 2022) — n sampled chains of thought, majority answer wins.

The n samples are one batched request (the llama.cpp backend decodes them sharing the prompt's KV
cache). Answers are compared after ``normalize_answer``; ties go to the answer that reached its count
first. Departure from the paper: samples that state no answer abstain instead of counting as a vote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Result, Sampled, Spent, Voted
from ponder.models.base import Completion, Model
from ponder.problems.base import Problem
from ponder.think.base import fit_to_budget, solve_request, stream_generate
from ponder.verify.extract import extract_answer
from ponder.verify.normalize import normalize_answer


@dataclass
class Vote:
    n: int = 5
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int | None = None

    spec_name = "vote"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("vote: n must be a positive integer")
        if self.max_tokens < 1:
            raise ValueError("vote: max_tokens must be a positive integer")
        if self.temperature < 0:
            raise ValueError("vote: temperature must be >= 0")

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        req = solve_request(
            problem,
            n=self.n,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
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
        tally: Counter[str] = Counter()
        first_text: dict[str, str] = {}
        trace = []
        for i, s in enumerate(completion.samples):
            raw = extract_answer(s.text)
            key = normalize_answer(raw)
            ev = Sampled(i, s.text, raw, s.completion_tokens, s.finish_reason)
            trace.append(ev.to_dict())
            yield ev
            if key is not None:
                tally[key] += 1
                first_text.setdefault(key, s.text)
        leader = tally.most_common(1)[0][0] if tally else None  # Counter keeps first-seen order on ties
        voted = Voted({k: float(v) for k, v in tally.items()}, leader)
        trace.append(voted.to_dict())
        yield voted
        yield Spent(completion.usage)
        if leader is None:
            how = f"no answer in any of {len(completion.samples)} samples"
            yield Final(Result(None, completion.samples[0].text, how, completion.usage, trace))
            return
        how = f"majority vote: {tally[leader]}/{len(completion.samples)} samples agree"
        yield Final(Result(leader, first_text[leader], how, completion.usage, trace))

"""`vote`: self-consistency (Wang et al. 2022) — n sampled chains of thought, majority answer wins.

The n samples are one batched request (the llama.cpp backend decodes them sharing the prompt's KV
cache). Answers are compared after ``normalize_answer``; ties go to the answer seen first.
Departure from the paper: samples that state no answer abstain instead of counting as a vote.

``weighted`` turns it into weighted voting: each vote counts its sample's score, from the scorer
named by ``verifier`` (an LLM judge: the paper's "weighted sum" variant with a verifier, its tokens
charged to the budget and kept back before sampling) or from DeepConf trace confidence (Fu et al.
2025, confidence-weighted majority voting; the samples carry top logprobs, scoring is free).
Departures: only answered samples are scored; when the budget cannot pay for scoring all of them
(even with the samples shortened to make room), none is scored and the plain count decides.
Negative scores count as 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Result, Spent, Voted
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.sampling import (
    Batch,
    Scoring,
    first_text,
    leader,
    logged,
    plan_batch,
    plan_scored_batch,
    sample_batch,
    score_candidates,
    tally,
)
from ponder.verify.scorers import SCORERS, make_scorer

WEIGHTINGS = ("none", "verifier", "confidence")


@dataclass
class Vote:
    n: int = 5
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int | None = None
    weighted: str = "none"  # none | verifier (scores of `verifier`) | confidence (DeepConf)
    verifier: str = "judge"  # the scorer weighted=verifier uses (a name in verify.scorers.SCORERS)

    spec_name = "vote"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("vote: n must be a positive integer")
        if self.max_tokens < 1:
            raise ValueError("vote: max_tokens must be a positive integer")
        if self.temperature < 0:
            raise ValueError("vote: temperature must be >= 0")
        if self.weighted not in WEIGHTINGS:
            raise ValueError(
                f"vote: weighted={self.weighted!r} is not one of {', '.join(WEIGHTINGS)}"
            )
        if self.verifier not in SCORERS:
            raise ValueError(
                f"vote: unknown verifier {self.verifier!r}; known: {', '.join(SCORERS)}"
            )

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        scorer = None
        if self.weighted != "none":
            scorer = make_scorer("confidence" if self.weighted == "confidence" else self.verifier)
        args = dict(
            n=self.n, max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed
        )
        if scorer is None:
            req = plan_batch(problem, model, budget, Usage(), **args)
        else:
            req = plan_scored_batch(problem, model, budget, Usage(), scorer, **args)
        if req is None:
            yield Final(Result(None, "", "budget too small for the prompt", Usage()))
            return
        trace, batch = [], None
        async for item in sample_batch(model, req):
            if isinstance(item, Batch):
                batch = item
                continue
            yield logged(trace, item)
        spent = batch.usage
        yield logged(trace, Spent(spent))
        cands = batch.candidates

        weights, unweighted = None, ""
        if scorer is not None:
            scoring = None
            async for item in score_candidates(problem, model, scorer, cands, budget, spent):
                if isinstance(item, Scoring):
                    scoring = item
                    continue
                yield logged(trace, item)
            if scoring.usage.calls or scoring.usage.total_tokens:
                spent = spent + scoring.usage
                yield logged(trace, Spent(spent))
            if scoring.scores:
                weights = {i: max(s, 0.0) for i, s in scoring.scores.items()}
            else:
                unweighted = f" (too little budget to weight by {scorer.name})"

        votes = tally(cands, weights)
        if weights is not None and not any(votes.values()):
            weights, votes = None, tally(cands)  # every scored vote weighs 0: the count decides
            unweighted = f" (every {scorer.name} weight was 0)"
        best = leader(votes)
        yield logged(trace, Voted({k: float(v) for k, v in votes.items()}, best))
        if best is None:
            how = f"no answer in any of {len(cands)} samples"
            yield Final(Result(None, cands[0].sample.text, how, spent, trace))
            return
        agree = sum(c.key == best for c in cands)
        if weights is None:
            how = f"majority vote: {agree}/{len(cands)} samples agree{unweighted}"
        else:
            share = votes[best] / sum(votes.values())
            how = (
                f"{scorer.name}-weighted vote: {share:.0%} of the weight, "
                f"{agree}/{len(cands)} samples agree"
            )
        yield Final(Result(best, first_text(cands, best), how, spent, trace))

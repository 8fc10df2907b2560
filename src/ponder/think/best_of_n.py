"""`best_of_n`: sample n chains of thought, keep the one a scorer rates highest.

Best-of-N with a verifier (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems";
Lightman et al. 2023), here with a reference-free test-time scorer: an LLM judge (a generative
verifier, its calls charged to the budget) or DeepConf trace confidence (free).

Departures:
- The n samples are one batched request; its ``max_tokens`` is planned so that n scoring calls
  still fit the budget afterwards (each is priced again with ``scorer.max_cost`` before it is paid).
- Only samples that state an answer are scored, and an answerless sample is never chosen.
- Ties on score go to the answer more samples agree on, then to the earlier sample. When the budget
  cannot pay for scoring every answered sample (even with the samples shortened to make room), none
  is scored and the answer most samples agree on wins: a vote rather than nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Result, Spent
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.sampling import (
    Batch,
    Scoring,
    logged,
    plan_scored_batch,
    sample_batch,
    score_candidates,
    tally,
)
from ponder.verify.scorers import SCORERS, make_scorer


@dataclass
class BestOfN:
    n: int = 8
    verifier: str = "judge"  # the scorer that rates candidates (a name in verify.scorers.SCORERS)
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int | None = None

    spec_name = "best_of_n"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("best_of_n: n must be a positive integer")
        if self.verifier not in SCORERS:
            raise ValueError(
                f"best_of_n: unknown verifier {self.verifier!r}; known: {', '.join(SCORERS)}"
            )
        if self.max_tokens < 1:
            raise ValueError("best_of_n: max_tokens must be a positive integer")
        if self.temperature < 0:
            raise ValueError("best_of_n: temperature must be >= 0")

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        scorer = make_scorer(self.verifier)
        req = plan_scored_batch(
            problem,
            model,
            budget,
            Usage(),
            scorer,
            n=self.n,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
        )
        if req is None:
            how = "budget too small for the prompt"
            yield Final(Result(None, "", how, Usage()))
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

        scoring = None
        async for item in score_candidates(problem, model, scorer, cands, budget, spent):
            if isinstance(item, Scoring):
                scoring = item
                continue
            yield logged(trace, item)
        if scoring.usage.calls or scoring.usage.total_tokens:
            spent = spent + scoring.usage
            yield logged(trace, Spent(spent))

        answered = [c for c in cands if c.key is not None]
        if not answered:
            how = f"no answer in any of {len(cands)} samples"
            yield Final(Result(None, cands[0].sample.text, how, spent, trace))
            return
        votes = tally(cands)
        scores = scoring.scores
        # max() keeps the first of equal keys: the earlier sample wins the last tie.
        best = max(answered, key=lambda c: (scores.get(c.index, 0.0), votes[c.key]))
        agree = f"{int(votes[best.key])}/{len(cands)} samples agree"
        if best.index in scores:
            how = (
                f"best of {len(cands)}: sample {best.index} scored {scores[best.index]:.3f} "
                f"by {scorer.name} ({agree})"
            )
        else:
            how = (
                f"best of {len(cands)}: too little budget to score by {scorer.name}; "
                f"most votes ({agree})"
            )
        yield Final(Result(best.answer, best.sample.text, how, spent, trace))

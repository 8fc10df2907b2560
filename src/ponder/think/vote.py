"""`vote`: self-consistency (Wang et al. 2022) — n sampled chains of thought, majority answer wins.

The n samples are one batched request (the llama.cpp backend decodes them sharing the prompt's KV
cache). Answers are compared in ``verify.grade.answer_key``'s form (``normalize_answer``; a
countdown expression up to the order of its terms and factors); ties go to the answer seen first.
Departure from the paper: samples that state no answer abstain instead of counting as a vote.
With client tools (OpenAI function calling) a sample that answered with tool calls votes for its
calls: the same functions with equal arguments after JSON normalisation (``calls_key``); calls and
text answers then compete in one plain majority, and a winning call set is the answer.

``weighted`` turns it into weighted voting: each vote counts its sample's score, from the scorer
named by ``verifier`` (an LLM judge: the paper's "weighted sum" variant with a verifier, its tokens
charged to the budget and kept back before sampling) or from DeepConf trace confidence (Fu et al.
2025, confidence-weighted majority voting; the samples carry top logprobs, scoring is free).
Departures: only answered samples are scored; when the budget cannot pay for scoring all of them
(even with the samples shortened to make room), none is scored and the plain count decides.
Negative scores count as 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Result
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase
from ponder.think.sampling import (
    first_with,
    leader,
    plan_batch,
    sample_batch,
    score_candidates,
    tally,
    voted,
)
from ponder.verify.scorers import resolve_scorer
from ponder.verify.scoring import Scorer

WEIGHTINGS = ("none", "verifier", "confidence")


@dataclass
class Vote(StrategyBase):
    n: int = 5
    weighted: str = "none"  # none | verifier (scores of `verifier`) | confidence (DeepConf)
    verifier: str | Scorer = "judge"  # the scorer weighted=verifier uses (verify.scorers)
    temperature: float = 0.7

    name = "vote"
    client_tools = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 1:
            raise ValueError("vote: n must be a positive integer")
        if self.weighted not in WEIGHTINGS:
            raise ValueError(
                f"vote: weighted={self.weighted!r} is not one of {', '.join(WEIGHTINGS)}"
            )
        self._verifier = self.scorer_for("answer")
        self._confidence = resolve_scorer("confidence", "answer")

    def scorers_on(self, problem: Problem) -> list[Scorer]:
        return [self._verifier] if self.weighted == "verifier" else []

    async def solve(self, problem: Problem, run: Run) -> Result:
        scorer = None
        if self.weighted != "none":
            scorer = self._confidence if self.weighted == "confidence" else self._verifier
        req = plan_batch(run, problem, self.sampling, self.n, scorer=scorer)
        if req is None:
            return run.result(None, None, "budget too small for the prompt")
        cands = (await sample_batch(run, req, problem=problem)).candidates

        weights, unweighted = None, ""
        if scorer is not None:
            scoring = await score_candidates(run, scorer, problem, cands)
            if scoring.scores:
                weights = {i: max(s, 0.0) for i, s in scoring.scores.items()}
            else:
                unweighted = f" (too little budget to weight by {scorer.name})"

        votes = tally(cands, weights)
        if weights is not None and not any(votes.values()):
            weights, votes = None, tally(cands)  # every scored vote weighs 0: the count decides
            unweighted = f" (every {scorer.name} weight was 0)"
        best = leader(votes)
        run.emit(voted(votes, cands))
        if best is None:
            return run.result(None, cands[0].chosen, f"no answer in any of {len(cands)} samples")
        agree = sum(c.key == best for c in cands)
        if weights is None:
            how = f"majority vote: {agree}/{len(cands)} samples agree{unweighted}"
        else:
            share = votes[best] / sum(votes.values())
            how = (
                f"{scorer.name}-weighted vote: {share:.0%} of the weight, "
                f"{agree}/{len(cands)} samples agree"
            )
        winner = first_with(cands, best)
        return run.result(winner.answer, winner.chosen, how)

"""`best_of_n`: sample n chains of thought, keep the one a scorer rates highest.

Best-of-N with a verifier (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems";
Lightman et al. 2023), here with a reference-free test-time scorer: an LLM judge (a generative
verifier, its calls charged to the budget) or DeepConf trace confidence (free).

Departures:
- The n samples are one batched request; its ``max_tokens`` is planned so that n scoring calls
  still fit the budget afterwards (the meter prices each again before it is paid).
- Only samples that state an answer are scored, and an answerless sample is never chosen.
- Ties on score go to the answer more samples agree on, then to the earlier sample. When the budget
  cannot pay for scoring every answered sample (even with the samples shortened to make room), none
  is scored and the answer most samples agree on wins: a vote rather than nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Result
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase
from ponder.think.sampling import plan_batch, sample_batch, score_candidates, tally
from ponder.verify.scoring import Scorer


@dataclass
class BestOfN(StrategyBase):
    n: int = 8
    verifier: str | Scorer = "judge"  # the scorer that rates candidates (verify.scorers)
    temperature: float = 0.7

    name = "best_of_n"
    client_tools = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 1:
            raise ValueError("best_of_n: n must be a positive integer")
        self._scorer = self.scorer_for("answer")

    async def solve(self, problem: Problem, run: Run) -> Result:
        scorer = self._scorer
        req = plan_batch(run, problem, self.sampling, self.n, scorer=scorer)
        if req is None:
            return run.result(None, None, "budget too small for the prompt")
        cands = (await sample_batch(run, req, problem=problem)).candidates
        scores = (await score_candidates(run, scorer, problem, cands)).scores

        answered = [c for c in cands if c.key is not None]
        if not answered:
            return run.result(None, cands[0].chosen, f"no answer in any of {len(cands)} samples")
        votes = tally(cands)
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
        return run.result(best.answer, best.chosen, how)

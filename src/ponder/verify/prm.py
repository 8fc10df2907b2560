"""``prm:PATH``: a process reward model (``models.prm``) as a scorer.

A step is scored where the PRM reads it, after the steps before it; a finished solution scores its
weakest step (min), the usual PRM aggregate. Each score is charged as one call whose prompt is the
PRM's input (its own tokenizer's count).
"""

from __future__ import annotations

import asyncio

from ponder.budget import Usage
from ponder.models.base import Model
from ponder.models.prm import ProcessRewardModel
from ponder.problems.base import Problem
from ponder.verify.score import PASS, Score
from ponder.verify.scoring import Attempt
from ponder.verify.steps import split_steps


class PRMScorer:
    levels = frozenset({"answer", "step"})
    logprobs = False
    top_logprobs = 0
    needs_sample = False
    calls_model = False  # it runs its own model, charged as its input tokens
    checks_answer = False  # a learned estimate

    def __init__(self, path: str, separator: str = "\n\n", device: str = "cpu") -> None:
        self.name = f"prm:{path}"
        self.prm = ProcessRewardModel(path, separator, device)

    def _steps(self, attempt: Attempt) -> list[str]:
        if attempt.step is None:
            return split_steps(attempt.text) or [""]
        return [*split_steps(attempt.prefix), attempt.step]

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model) -> int:
        return len(self.prm.input_ids(problem.question, self._steps(attempt))[0])

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score:
        scores, n = await asyncio.to_thread(
            self.prm.step_scores, problem.question, self._steps(attempt)
        )
        usage = Usage(prompt_tokens=n, calls=1)
        if attempt.step is not None:
            return Score(scores[-1] >= PASS, scores[-1], f"PRM {scores[-1]:.3f}", usage)
        worst = min(scores)
        return Score(worst >= PASS, worst, f"PRM weakest step {worst:.3f}", usage)

"""`cot`: one chain-of-thought sample (Wei et al. 2022), the baseline every strategy is measured against."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Result
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase
from ponder.think.sampling import plan_batch, sample_batch


@dataclass
class Cot(StrategyBase):
    """One sample. ``temperature=0`` (the default) is greedy decoding."""

    temperature: float = 0.0

    name = "cot"
    client_tools = True

    async def solve(self, problem: Problem, run: Run) -> Result:
        req = plan_batch(run, problem, self.sampling, 1)
        if req is None:
            return run.result(None, None, "budget too small for the prompt")
        (c,) = (await sample_batch(run, req, problem=problem)).candidates
        how = "single chain of thought" + ("" if c.answer else "; no answer found in the text")
        return run.result(c.answer, c.chosen, how)

"""Test-time scorers: how strategies rate a candidate when the reference answer is unknown.

A Scorer rates one sampled candidate for a problem, possibly by asking a model (an LLM judge), and
reports what that cost, so that the calling strategy can charge it to its budget. Grading against
a reference (``verify.check``) is a different thing: it is for benchmarks and RL rewards, never for
choosing answers at test time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ponder.budget import Usage
from ponder.models.base import Model, Sample
from ponder.problems.base import Problem


@dataclass
class Scored:
    score: float  # higher is better; comparable across candidates of one problem
    reason: str
    usage: Usage = field(default_factory=Usage)  # what scoring cost (zero for logprob scorers)


class Scorer(Protocol):
    name: str
    top_logprobs: int  # k the samples must carry (Request.top_logprobs); 0 if none

    def max_cost(self, problem: Problem, sample: Sample, model: Model) -> int:
        """Worst-case tokens one ``score`` call may spend (0 for scorers that call no model)."""
        ...

    async def score(self, problem: Problem, sample: Sample, model: Model) -> Scored: ...

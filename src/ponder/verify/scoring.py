"""The one scoring protocol: a Scorer rates an Attempt at a problem and returns a Score.

An Attempt is a finished solution (its answer already read) or, for process verification, a
partial solution whose latest ``step`` is to be rated. The same objects serve the three uses of a
verifier (STYLE.md 4):

- grading: ``ponder bench`` grades each cell with the ``check`` scorer (``bench.runner.run_cell``);
- selection at test time: strategies rate candidates through their budget meter
  (``think.meter.Meter.score``), which prices a call with ``max_cost`` before paying for it;
- rewards: ``lab.rewards.scorer_reward(scorer)`` turns any free scorer into a TRL reward function.

A scorer declares what it can rate (``levels``: ``answer`` for finished solutions, ``step`` for the
latest step of a partial one) and what the sampled candidates must carry for it (logprobs, top-k
logprobs, the sample itself). Reference-free scorers may select at test time; ``check`` reads the
reference answer where the task has one (math, numeric, exact), so selecting with it there is an
oracle (pass@n), and its reasons say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ponder.errors import ProblemMismatch
from ponder.models.base import Model, Sample
from ponder.problems.base import Problem
from ponder.verify.score import Score

LEVELS = ("answer", "step")


@dataclass(frozen=True)
class Attempt:
    """What is scored.

    ``text``: the solution so far (the whole solution when finished; it ends with ``step`` when a
    step is rated); ``answer``: its final answer as the strategy read it (None: none stated);
    ``step``: the latest step, when one step is to be rated (None: the whole solution);
    ``sample``: the sample that wrote the step, or the solution, for scorers that read logprobs.
    """

    text: str
    answer: str | None = None
    step: str | None = None
    sample: Sample | None = None

    @property
    def prefix(self) -> str:
        """The solution before the rated step (the whole text when no step is rated)."""
        if self.step is None:
            return self.text
        return self.text[: len(self.text) - len(self.step)] if self.text.endswith(self.step) else ""


class Scorer(Protocol):
    name: str
    levels: frozenset[str]  # what it rates: "answer" and/or "step"
    logprobs: bool  # the candidate samples must carry logprobs
    top_logprobs: int  # k top logprobs the candidate samples must carry (0: none)
    needs_sample: bool  # reads ``attempt.sample``
    calls_model: bool  # asks the model being scored (a judge); its calls are charged to the run
    # an answer it passes was checked against the problem itself (its numbers and target, its
    # examples, its reference), not only read for slips or judged likely: a pass settles it
    checks_answer: bool

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model) -> int:
        """Worst-case tokens one ``score`` call may spend (0 for scorers that call no model)."""
        ...

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score: ...


def refuse_mismatch(scorer: Scorer, problem: Problem) -> None:
    """Raise ProblemMismatch when ``scorer`` cannot rate ``problem`` at all (``countdown`` on a
    math question, ``check`` on a question with no reference answer). Strategies call it before
    they sample, so the user's pairing costs no tokens; the scorers call it too. A scorer says so
    through an optional ``mismatch(problem)`` (the reason, or None): it is not part of the
    Protocol, so a scorer written without it fits every problem."""
    mismatch = getattr(scorer, "mismatch", None)
    reason = mismatch(problem) if mismatch is not None else None
    if reason:
        raise ProblemMismatch(reason)


def settles_answers(scorer: Scorer) -> bool:
    """Whether a pass by ``scorer`` settles an answer at no model call: what rejection sampling
    (``best_of_n:wave``) and ``auto``'s checked probe need of a checker."""
    return scorer.checks_answer and not scorer.calls_model


@dataclass
class FreeScorer:
    """What the scorers that read only the text share (check, arith, countdown, tests): no
    logprobs, no sample, no model call, so no cost. Subclasses set ``name`` and ``levels``, and
    ``checks_answer`` when they do."""

    logprobs: bool = field(default=False, init=False)
    top_logprobs: int = field(default=0, init=False)
    needs_sample: bool = field(default=False, init=False)
    calls_model: bool = field(default=False, init=False)
    checks_answer: bool = field(default=False, init=False)

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model | None) -> int:
        return 0

    def mismatch(self, problem: Problem) -> str | None:
        """Why this scorer cannot rate ``problem`` at all, or None (``refuse_mismatch``)."""
        return None

"""``judge``: the model asked whether a solution (or its latest step) is correct.

The generative-verifier idea (an LLM asked "is this solution correct? Yes/No", scored by the
probability of its verdict, as in Zhang et al. 2024, "Generative Verifiers"), at two levels: a
finished solution is judged as a whole (an outcome judge); a step is judged with the solution so
far (a process judge, as in Lightman et al. 2023's step labels, asked of the model itself).
Departures:

- The Model protocol returns the sampled tokens' logprobs but not their strings, so the score is
  the probability of the judge's *chosen* first token: ``p = exp(logprob)`` when it said Yes,
  ``1 - p`` when it said No. This treats the remaining mass as going to the other word, an
  approximation (a "Yes" split over several tokens, or mass on other replies, is not seen).
- Without logprobs the reply text is parsed: Yes -> 1.0, No -> 0.0, anything else -> 0.5.
- The judge sees the problem and the candidate, never the reference answer.
- An answer's verdict passes (``ok``) above 0.5, so an unclear reply does not pass; a step's
  passes at 0.5 (``score.PASS``), so an unclear reply does not make a search backtrack.

Each verdict is one short greedy call to the model being judged; its tokens are charged by the
strategy's budget meter, which prices the call with ``max_cost`` first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ponder.models.base import Model, Request, Sample
from ponder.problems.base import Problem
from ponder.verify.score import PASS, Score
from ponder.verify.scoring import Attempt

JUDGE_SYSTEM = (
    "You are a careful grader. Decide whether the candidate solution's final answer to the "
    "problem is correct. Reply with exactly one word: Yes or No."
)
STEP_JUDGE_SYSTEM = (
    "You are a careful grader of step-by-step solutions. Decide whether the LATEST step of the "
    "partial solution is correct: right reasoning and arithmetic, consistent with the problem and "
    "the steps before it. Reply with exactly one word: Yes or No."
)
_AT_START = re.compile(r"\s*(yes|no)\b", re.IGNORECASE)  # verdict is the reply's first token
_ANYWHERE_LEADING = re.compile(r"\W*(yes|no)\b", re.IGNORECASE)  # "**Yes**", '"No."'


def judge_request(problem: Problem, candidate_text: str, max_tokens: int = 8) -> Request:
    """The greedy, logprob-carrying chat request the outcome judge sends."""
    question = (
        f"Problem:\n{problem.as_text()}\n\n"
        f"Candidate solution:\n{candidate_text}\n\n"
        "Is the candidate's final answer correct? Answer Yes or No."
    )
    return Request.chat(
        question, system=JUDGE_SYSTEM, max_tokens=max_tokens, temperature=0.0, logprobs=True
    )


def step_judge_request(problem: Problem, prefix: str, step: str, max_tokens: int = 8) -> Request:
    """The greedy, logprob-carrying chat request the step judge sends."""
    question = (
        f"Problem:\n{problem.as_text()}\n\n"
        f"Solution so far:\n{prefix.strip() or '(nothing yet)'}\n\n"
        f"Latest step:\n{step.strip()}\n\n"
        "Is the latest step correct? Answer Yes or No."
    )
    return Request.chat(
        question, system=STEP_JUDGE_SYSTEM, max_tokens=max_tokens, temperature=0.0, logprobs=True
    )


def read_verdict(sample: Sample) -> Score:
    """Turn the judge's reply into a Score (see the module docstring for the scoring rule)."""
    m = _AT_START.match(sample.text)
    if m and sample.logprobs:
        word = m.group(1).capitalize()
        p = min(1.0, math.exp(sample.logprobs[0]))
        score, reason = (p if word == "Yes" else 1.0 - p), f"judge said {word} (p={p:.3f})"
    elif m := m or _ANYWHERE_LEADING.match(sample.text):
        word = m.group(1).capitalize()
        score, reason = (1.0 if word == "Yes" else 0.0), f"judge said {word}"
    else:
        score, reason = 0.5, "judge gave no verdict"
    return Score(score > 0.5, score, reason)


@dataclass
class Judge:
    """Rates a solution, or its latest step, by asking the model (one short greedy call)."""

    max_tokens: int = 8  # the verdict is one word; a few more tokens let it finish cleanly
    name: str = field(default="judge", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer", "step"}), init=False)
    logprobs: bool = field(default=False, init=False)
    top_logprobs: int = field(default=0, init=False)
    needs_sample: bool = field(default=False, init=False)
    calls_model: bool = field(default=True, init=False)
    checks_answer: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"judge max_tokens must be >= 1, got {self.max_tokens}")

    def request(self, problem: Problem, attempt: Attempt) -> Request:
        if attempt.step is None:
            return judge_request(problem, attempt.text, self.max_tokens)
        return step_judge_request(problem, attempt.prefix, attempt.step, self.max_tokens)

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model) -> int:
        return model.count_prompt_tokens(self.request(problem, attempt)) + self.max_tokens

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score:
        completion = await model.generate(self.request(problem, attempt))
        v = read_verdict(completion.samples[0])
        ok = v.ok if attempt.step is None else v.value >= PASS
        return Score(ok, v.value, v.reason, completion.usage)

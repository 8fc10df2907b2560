"""Test-time scorers that need no reference answer: an LLM judge and DeepConf trace confidence.

The judge is the generative-verifier idea (an LLM asked "is this solution correct? Yes/No", scored
by the probability of its verdict, as in Zhang et al. 2024, "Generative Verifiers"). Departures:

- The Model protocol returns the sampled tokens' logprobs but not their strings, so the score is
  the probability of the judge's *chosen* first token: ``p = exp(logprob)`` when it said Yes,
  ``1 - p`` when it said No. This treats the remaining mass as going to the other word, an
  approximation (a "Yes" split over several tokens, or mass on other replies, is not seen).
- Without logprobs the reply text is parsed: Yes -> 1.0, No -> 0.0, anything else -> 0.5.
- The judge sees the problem and the candidate, never the reference answer.

The confidence scorer wraps ``verify.confidence`` (costless: it reads the candidate's own logprobs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ponder.budget import Usage
from ponder.models.base import Model, ModelError, Request, Sample
from ponder.problems.base import Problem
from ponder.verify import confidence as conf
from ponder.verify.scoring import Scored
from ponder.verify.verdict import Verdict

JUDGE_SYSTEM = (
    "You are a careful grader. Decide whether the candidate solution's final answer to the "
    "problem is correct. Reply with exactly one word: Yes or No."
)
_AT_START = re.compile(r"\s*(yes|no)\b", re.IGNORECASE)  # verdict is the reply's first token
_ANYWHERE_LEADING = re.compile(r"\W*(yes|no)\b", re.IGNORECASE)  # "**Yes**", '"No."'


def judge_request(problem: Problem, candidate_text: str, max_tokens: int = 8) -> Request:
    """The greedy, logprob-carrying chat request the judge sends."""
    question = (
        f"Problem:\n{problem.question}\n\n"
        f"Candidate solution:\n{candidate_text}\n\n"
        "Is the candidate's final answer correct? Answer Yes or No."
    )
    return Request.chat(
        question, system=JUDGE_SYSTEM, max_tokens=max_tokens, temperature=0.0, logprobs=True
    )


def read_verdict(sample: Sample) -> Verdict:
    """Turn the judge's reply into a Verdict (see the module docstring for the scoring rule)."""
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
    return Verdict(score > 0.5, score, reason)  # an unclear reply (0.5) does not pass


async def judge(
    problem: Problem, candidate_text: str, model: Model, max_tokens: int = 8
) -> tuple[Verdict, Usage]:
    """Ask ``model`` whether ``candidate_text`` answers ``problem`` correctly.

    Returns the Verdict (``score`` in [0, 1], ``correct = score > 0.5``) and the call's usage.
    """
    completion = await model.generate(judge_request(problem, candidate_text, max_tokens))
    return read_verdict(completion.samples[0]), completion.usage


@dataclass
class JudgeScorer:
    """Scores a candidate by asking the model to judge it (one short greedy call)."""

    max_tokens: int = 8  # the verdict is one word; a few more tokens let it finish cleanly
    name: str = field(default="judge", init=False)
    top_logprobs: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"judge max_tokens must be >= 1, got {self.max_tokens}")

    def max_cost(self, problem: Problem, sample: Sample, model: Model) -> int:
        request = judge_request(problem, sample.text, self.max_tokens)
        return model.count_prompt_tokens(request) + self.max_tokens

    async def score(self, problem: Problem, sample: Sample, model: Model) -> Scored:
        verdict, usage = await judge(problem, sample.text, model, self.max_tokens)
        return Scored(verdict.score, verdict.reason, usage)


MEASURES = ("mean", "lowest_group", "bottom10", "tail")


@dataclass
class ConfidenceScorer:
    """Scores a candidate by its own DeepConf confidence; costs nothing.

    The candidate must have been sampled with ``Request(top_logprobs=self.top_logprobs)``.
    """

    measure: str = "tail"  # one of MEASURES
    # group / tail size in tokens (the paper's 2048 is longer than the small models here write)
    window: int = 256
    top_logprobs: int = 5  # k asked of the model
    name: str = field(default="confidence", init=False)

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(
                f"unknown confidence measure {self.measure!r}; choose one of {', '.join(MEASURES)}"
            )
        if self.window < 1:
            raise ValueError(f"confidence window must be >= 1 token, got {self.window}")
        if not 1 <= self.top_logprobs <= 20:
            raise ValueError(f"confidence top_logprobs must be in [1, 20], got {self.top_logprobs}")

    def value(self, sample: Sample) -> float:
        if self.measure == "mean":
            return conf.mean_confidence(sample)
        if self.measure == "lowest_group":
            return conf.lowest_group_confidence(sample, self.window)
        if self.measure == "bottom10":
            return conf.bottom_percent_confidence(sample, 10, self.window)
        return conf.tail_confidence(sample, self.window)

    def max_cost(self, problem: Problem, sample: Sample, model: Model) -> int:
        return 0

    async def score(self, problem: Problem, sample: Sample, model: Model) -> Scored:
        if sample.top_logprobs is None:  # the backend cannot provide them: a setup problem
            raise ModelError(
                f"the confidence scorer needs top logprobs, and the model {model.name} returned "
                "none (use gguf, hf, or an OpenAI-compatible server that returns logprobs)"
            )
        c = self.value(sample)
        return Scored(c, f"{self.measure} confidence {c:.3f}")

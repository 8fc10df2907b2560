"""DeepConf trace confidence from top-k logprobs (Fu et al. 2025, "Deep Think with Confidence").

The paper's definitions, all computed from the k highest log-probabilities at each generated
position (``Sample.top_logprobs``):

- token confidence ``C_i = -(1/k) * sum_{j=1..k} log P_i(j)``: high when the model is sure (the
  top token takes nearly all the mass, so the other top-k log-probabilities are very negative);
- average trace confidence: the mean of ``C_i`` over the trace (``mean_confidence``);
- group confidence: the mean of ``C_i`` over a sliding window of ``window`` tokens, stride 1
  (``group_confidences``); a trace is then scored by its lowest group (``lowest_group_confidence``),
  the mean of its bottom 10% of groups (``bottom_percent_confidence``) or the mean over its last
  ``tail`` tokens (``tail_confidence``);
- online early stopping: a trace whose current window falls below a threshold is cut off
  (``RunningGroupConfidence``, O(1) per token).

Where this version departs from the paper:

- Windows default to the paper's 2048 tokens, but the models here are small and write short traces,
  so callers pass smaller windows. A trace shorter than the window is one group (its mean), so the
  group measures stay defined for every trace.
- ``k`` is the number of logprobs the backend returned at that position (normally the requested k;
  fewer where the vocabulary or the server gave fewer).
- An empty trace (no tokens generated) has confidence 0.0, the lowest any trace can have, since
  ``C_i >= 0`` always.
- The bottom-percent measure averages the lowest ``ceil(n * percent / 100)`` groups (at least one).

The scorers at the end read these numbers off a candidate: ``confidence`` (DeepConf, answers) and
``prob`` (mean token probability, answers and steps).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from dataclasses import dataclass, field

from ponder.models.base import Model, ModelError, Sample
from ponder.problems.base import Problem
from ponder.verify.score import PASS, Score
from ponder.verify.scoring import Attempt

PAPER_WINDOW = 2048


def token_confidence(top_logprobs_at_i: Sequence[float]) -> float:
    """``C_i = -(1/k) * sum_j log P_i(j)`` over the top-k logprobs of one position."""
    if not top_logprobs_at_i:
        raise ValueError("a position has no top logprobs: token confidence needs k >= 1 of them")
    return -sum(top_logprobs_at_i) / len(top_logprobs_at_i)


def token_confidences(top_logprobs: Sequence[Sequence[float]]) -> list[float]:
    """One confidence per generated token. ``top_logprobs``: [n_tokens][k], highest first."""
    return [token_confidence(row) for row in top_logprobs]


def _sample_confidences(sample: Sample) -> list[float]:
    if sample.top_logprobs is None:
        raise ValueError(
            "trace confidence needs top_logprobs: ask the model with Request(top_logprobs=k)"
        )
    return token_confidences(sample.top_logprobs)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _check_window(window: int, what: str = "window") -> None:
    if window < 1:
        raise ValueError(f"{what} must be >= 1 token, got {window}")


def mean_confidence(sample: Sample) -> float:
    """Average trace confidence: the mean token confidence (0.0 for an empty trace)."""
    return _mean(_sample_confidences(sample))


def group_confidences(confs: Sequence[float], window: int = PAPER_WINDOW) -> list[float]:
    """Means of every ``window`` consecutive token confidences (stride 1), in O(n).

    ``len(confs) - window + 1`` groups; a trace shorter than the window is one group (its mean);
    an empty trace has no groups.
    """
    _check_window(window)
    if not confs:
        return []
    if len(confs) <= window:
        return [_mean(confs)]
    total = sum(confs[:window])
    groups = [total / window]
    for i in range(window, len(confs)):
        total += confs[i] - confs[i - window]
        groups.append(total / window)
    return groups


def lowest_group_confidence(sample: Sample, window: int = PAPER_WINDOW) -> float:
    """The lowest group confidence of the trace: its least confident stretch."""
    groups = group_confidences(_sample_confidences(sample), window)
    return min(groups) if groups else 0.0


def bottom_percent_confidence(
    sample: Sample, percent: float = 10, window: int = PAPER_WINDOW
) -> float:
    """The mean of the lowest ``percent``% of the trace's group confidences (at least one group)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    groups = group_confidences(_sample_confidences(sample), window)
    if not groups:
        return 0.0
    count = max(1, math.ceil(len(groups) * percent / 100))
    return _mean(sorted(groups)[:count])


def tail_confidence(sample: Sample, tail: int = PAPER_WINDOW) -> float:
    """The mean token confidence over the last ``tail`` tokens (where the answer is written)."""
    _check_window(tail, "tail")
    return _mean(_sample_confidences(sample)[-tail:])


class RunningGroupConfidence:
    """Group confidence of a trace as it is generated, for online early stopping; O(1) per token.

    ``push(row)`` takes the top-k logprobs of the newest token and returns the mean confidence of
    the last ``window`` tokens, or None while fewer than ``window`` tokens have been seen (warm-up:
    a partial window is too noisy to stop a trace on). The values ``push`` returns are exactly
    ``group_confidences`` of the stream so far. ``current`` is the mean of the window so far (the
    whole trace during warm-up) and ``lowest`` the lowest group so far, which at the end of a trace
    equal the last group and ``lowest_group_confidence`` of the finished trace.
    """

    def __init__(self, window: int = PAPER_WINDOW) -> None:
        _check_window(window)
        self.window = window
        self.tokens = 0
        self._confs: deque[float] = deque()
        self._total = 0.0
        self._lowest: float | None = None

    def push(self, top_logprobs_at_i: Sequence[float]) -> float | None:
        return self.push_confidence(token_confidence(top_logprobs_at_i))

    def push_confidence(self, conf: float) -> float | None:
        """As ``push``, given the token confidence itself."""
        self.tokens += 1
        self._confs.append(conf)
        self._total += conf
        if len(self._confs) > self.window:
            self._total -= self._confs.popleft()
        if len(self._confs) < self.window:
            return None
        mean = self._total / self.window
        self._lowest = mean if self._lowest is None else min(self._lowest, mean)
        return mean

    @property
    def current(self) -> float:
        """Mean of the current window (of the whole trace during warm-up; 0.0 when empty)."""
        return self._total / len(self._confs) if self._confs else 0.0

    @property
    def lowest(self) -> float:
        """Lowest full-window mean so far; during warm-up the trace's mean, as for a short trace."""
        return self.current if self._lowest is None else self._lowest


# --- scorers that read the candidate's own token probabilities (free: no model call) ---

MEASURES = ("mean", "lowest_group", "bottom10", "tail")


def _needs(what: str, sample: Sample | None, model: Model) -> Sample:
    """The attempt's sample, carrying ``what``; a backend that returned none is a setup problem."""
    if sample is None:
        raise ValueError(f"the {what} scorer needs the sample that wrote the candidate")
    if (sample.top_logprobs if what == "confidence" else sample.logprobs) is None:
        raise ModelError(
            f"the {what} scorer needs {'top ' if what == 'confidence' else ''}logprobs, and the "
            f"model {model.name} returned none (use gguf, hf, or an OpenAI-compatible server that "
            "returns logprobs)"
        )
    return sample


@dataclass
class ConfidenceScorer:
    """``confidence``: a finished candidate scored by its own DeepConf confidence (see above).

    The candidate must have been sampled with ``Request(top_logprobs=self.top_logprobs)``. Values
    are not probabilities (``C_i >= 0`` is unbounded), so it rates answers, not steps.
    """

    measure: str = "tail"  # one of MEASURES
    # group / tail size in tokens (the paper's 2048 is longer than the small models here write)
    window: int = 256
    top_logprobs: int = 5  # k asked of the model
    name: str = field(default="confidence", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer"}), init=False)
    logprobs: bool = field(default=False, init=False)
    needs_sample: bool = field(default=True, init=False)
    calls_model: bool = field(default=False, init=False)
    checks_answer: bool = field(default=False, init=False)

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
            return mean_confidence(sample)
        if self.measure == "lowest_group":
            return lowest_group_confidence(sample, self.window)
        if self.measure == "bottom10":
            return bottom_percent_confidence(sample, 10, self.window)
        return tail_confidence(sample, self.window)

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model) -> int:
        return 0

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score:
        c = self.value(_needs("confidence", attempt.sample, model))
        return Score(True, c, f"{self.measure} confidence {c:.3f}")


@dataclass
class TokenProb:
    """``prob``: the geometric-mean token probability ``exp(mean logprob)`` of the sample that
    wrote the step (or the solution), in [0, 1]; a step passes at ``score.PASS``.

    Needs the sample itself: a step cut out of a longer sample has no logprobs of its own (so
    ``reflect``, which cuts steps out of whole solutions, cannot use it).
    """

    name: str = field(default="prob", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer", "step"}), init=False)
    logprobs: bool = field(default=True, init=False)
    top_logprobs: int = field(default=0, init=False)
    needs_sample: bool = field(default=True, init=False)
    calls_model: bool = field(default=False, init=False)
    checks_answer: bool = field(default=False, init=False)

    def max_cost(self, problem: Problem, attempt: Attempt, model: Model) -> int:
        return 0

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score:
        lps = _needs("prob", attempt.sample, model).logprobs
        if not lps:
            return Score(True, 1.0, "empty step")
        p = math.exp(sum(lps) / len(lps))
        return Score(p >= PASS, p, f"mean token probability {p:.3f}")

"""`adaptive`: self-consistency that stops sampling once the vote is settled.

Adaptive-Consistency (Aggarwal et al. 2023) and early-stopping self-consistency (Li et al. 2024):
draw samples in waves (one batched request each) and stop as soon as more samples are unlikely to
change the majority answer.

The stopping rule is Adaptive-Consistency's Beta criterion. Let ``a`` be the votes of the leading
answer and ``b`` those of the runner-up (0 when no rival has appeared). Treat the leader's share of
the top two answers as an unknown ``θ`` with a uniform prior; after ``a`` and ``b`` votes its
posterior is ``Beta(a+1, b+1)``, and the leader is truly ahead when ``θ > 1/2``. We stop when

    P(θ > 1/2 | a, b) ≥ confidence.

This probability has an exact closed form (the Beta–binomial identity
``P(Beta(α, β) ≤ x) = P(Bin(α+β-1, x) ≥ α)``):

    P(θ > 1/2) = P(Bin(a+b+1, 1/2) ≤ a) = Σ_{i=0..a} C(a+b+1, i) / 2^(a+b+1),

computed with integers (``math.comb``), no numerical integration. Examples: 4 votes to 0 give
31/32 ≈ 0.969 (settled at the default 0.95); 3 to 0 give 15/16 = 0.9375 (not yet); a tie always
gives exactly 1/2, so an evenly split vote never stops early.

Departures: only the top two answers enter the rule (the paper defines this Beta criterion next to
a Dirichlet one over all answers; we use the Beta one, exact and cheap); samples without an answer
abstain; waves have a fixed size and the rule is checked only between waves (one request
per wave keeps the backend's batching), so a stream can overshoot the settling point by up to
``wave - 1`` samples. A wave the budget cannot pay for in full is shrunk: fewer samples first, then
a shorter single sample; when not even that fits, sampling stops.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Result, Spent, Stopped, Voted
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.sampling import (
    Batch,
    first_text,
    leader,
    logged,
    plan_batch,
    sample_batch,
    tally,
)


def leader_probability(a: int, b: int) -> Fraction:
    """P(θ > 1/2) for θ ~ Beta(a+1, b+1), exactly: P(Bin(a+b+1, 1/2) ≤ a)."""
    if a < 0 or b < 0:
        raise ValueError(f"vote counts must be >= 0, got a={a}, b={b}")
    n = a + b + 1
    return Fraction(sum(math.comb(n, i) for i in range(a + 1)), 2**n)


def top_two(votes: dict[str, float]) -> tuple[int, int]:
    """Votes of the leader and of the runner-up (0 if there is none)."""
    counts = sorted((int(v) for v in votes.values()), reverse=True) + [0, 0]
    return counts[0], counts[1]


@dataclass
class Adaptive:
    wave: int = 4  # samples per batched request
    max_samples: int = 16  # never more samples than this
    confidence: float = 0.95  # stop when P(leader truly ahead of the runner-up) reaches this
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int | None = None  # wave w starts at seed + samples drawn so far

    spec_name = "adaptive"

    def __post_init__(self) -> None:
        if self.wave < 1:
            raise ValueError("adaptive: wave must be a positive integer")
        if self.max_samples < 1:
            raise ValueError("adaptive: max_samples must be a positive integer")
        if not 0.5 < self.confidence < 1:
            raise ValueError(
                "adaptive: confidence must be in (0.5, 1): at 0.5 a tie counts as settled, "
                "at 1 nothing ever does"
            )
        if self.max_tokens < 1:
            raise ValueError("adaptive: max_tokens must be a positive integer")
        if self.temperature < 0:
            raise ValueError("adaptive: temperature must be >= 0")

    def _plan_wave(self, problem: Problem, model: Model, budget: Budget, spent: Usage, drawn: int):
        """The next wave's request: as many full-length samples as fit (up to ``wave``), else one
        shorter sample; None when not even that fits."""
        n = min(self.wave, self.max_samples - drawn)
        seed = None if self.seed is None else self.seed + drawn
        args = dict(max_tokens=self.max_tokens, temperature=self.temperature, seed=seed)
        req = plan_batch(problem, model, budget, spent, n=n, **args)
        remaining = budget.remaining(spent)
        if req is None or remaining is None or req.max_tokens == self.max_tokens:
            return req
        full = (remaining - model.count_prompt_tokens(req)) // self.max_tokens
        return plan_batch(problem, model, budget, spent, n=max(1, min(n, full)), **args)

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        spent, cands, trace = Usage(), [], []
        votes: dict[str, float] = {}
        p = Fraction(0)
        while True:
            drawn = len(cands)
            if drawn >= self.max_samples:
                reason = "max_samples reached"
                break
            req = self._plan_wave(problem, model, budget, spent, drawn)
            if req is None:
                reason = f"budget exhausted after {drawn} samples"
                break
            batch = None
            async for item in sample_batch(model, req, first_index=drawn):
                if isinstance(item, Batch):
                    batch = item
                    continue
                yield logged(trace, item)
            spent = spent + batch.usage
            yield logged(trace, Spent(spent))
            cands += batch.candidates
            votes = tally(cands)
            yield logged(trace, Voted({k: float(v) for k, v in votes.items()}, leader(votes)))
            a, b = top_two(votes)
            p = leader_probability(a, b)
            if a > 0 and p >= Fraction(self.confidence):
                reason = f"settled after {len(cands)} samples: P={float(p):.2f}"
                break

        yield logged(trace, Stopped(reason))
        best = leader(votes)
        if best is None:
            how = f"{reason}; no answer in any of {len(cands)} samples"
            text = cands[0].sample.text if cands else ""
            yield Final(Result(None, text, how, spent, trace))
            return
        how = f"{reason}; {int(votes[best])}/{len(cands)} samples agree"
        if not reason.startswith("settled"):
            how += f" (P={float(p):.2f})"
        yield Final(Result(best, first_text(cands, best), how, spent, trace))

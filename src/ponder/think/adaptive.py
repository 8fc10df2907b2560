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
from dataclasses import dataclass
from fractions import Fraction

from ponder.events import Result, Stopped
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase, seed_at
from ponder.think.sampling import (
    Candidate,
    first_with,
    leader,
    plan_batch,
    sample_batch,
    tally,
    voted,
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
class Adaptive(StrategyBase):
    wave: int = 4  # samples per batched request
    max_samples: int = 16  # never more samples than this
    confidence: float = 0.95  # stop when P(leader truly ahead of the runner-up) reaches this
    temperature: float = 0.7  # wave w starts at seed + samples drawn so far

    name = "adaptive"
    client_tools = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.wave < 1:
            raise ValueError("adaptive: wave must be a positive integer")
        if self.max_samples < 1:
            raise ValueError("adaptive: max_samples must be a positive integer")
        if not 0.5 < self.confidence < 1:
            raise ValueError(
                "adaptive: confidence must be in (0.5, 1): at 0.5 a tie counts as settled, "
                "at 1 nothing ever does"
            )

    def _plan_wave(self, problem: Problem, run: Run, drawn: int):
        """The next wave's request: as many full-length samples as fit (up to ``wave``), else one
        shorter sample; None when not even that fits."""
        n = min(self.wave, self.max_samples - drawn)
        seed = seed_at(self.sampling, drawn)
        req = plan_batch(run, problem, self.sampling, n, seed=seed)
        full_length = self.sampling.max_tokens
        if req is None or run.meter.remaining is None or req.max_tokens == full_length:
            return req
        room = run.meter.remaining - run.model.count_prompt_tokens(req)
        return plan_batch(run, problem, self.sampling, max(1, min(n, room // full_length)), seed=seed)

    async def solve(
        self, problem: Problem, run: Run, first: list[Candidate] | None = None, lead: str = ""
    ) -> Result:
        """Adaptive voting; ``first``: samples already drawn (``auto``'s probe), counted as the
        first wave; ``lead`` starts the ``how`` line."""
        cands = list(first or [])
        votes = tally(cands)
        p = leader_probability(*top_two(votes)) if cands else Fraction(0)
        while True:
            drawn = len(cands)
            if cands and votes and p >= Fraction(self.confidence):
                reason = f"settled after {drawn} samples: P={float(p):.2f}"
                break
            if drawn >= self.max_samples:
                reason = "max_samples reached"
                break
            req = self._plan_wave(problem, run, drawn)
            if req is None:
                reason = f"budget exhausted after {drawn} samples"
                break
            cands += (await sample_batch(run, req, first_index=drawn, problem=problem)).candidates
            votes = tally(cands)
            run.emit(voted(votes, cands))
            p = leader_probability(*top_two(votes))

        run.emit(Stopped(reason))
        best = leader(votes)
        if best is None:
            how = f"{lead}{reason}; no answer in any of {len(cands)} samples"
            return run.result(None, cands[0].chosen if cands else None, how)
        how = f"{lead}{reason}; {int(votes[best])}/{len(cands)} samples agree"
        if not reason.startswith("settled"):
            how += f" (P={float(p):.2f})"
        winner = first_with(cands, best)
        return run.result(winner.answer, winner.chosen, how)

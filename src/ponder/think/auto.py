"""`auto`: decide how long to think — a cheap probe estimates difficulty, then a strategy and its
budget are chosen.

Compute-optimal test-time scaling (Snell et al. 2024) allocates compute by difficulty: easy
problems need one look, medium ones profit from more parallel samples, hard ones from sequential
revision or search. Snell et al. estimate difficulty with a verifier's scores over samples; here
the probe is ``probe`` samples drawn as one batched request (with logprobs):

- agreement: the share of the probe that states the leading answer (samples without one count
  against it);
- confidence: the probe's mean token probability (``exp`` of the mean token logprob), when the
  backend gives logprobs.

Then:

- easy (agreement >= ``easy`` and confidence >= ``confident``): answer from the probe, no more
  calls — the cheap path;
- hard (agreement < ``hard``): hand the remaining budget to ``hard_with`` (``reflect``,
  ``deepthink``, ``beam`` or ``mcts``), which starts afresh: a split probe's leader is not worth
  repairing (reflect's first solution is greedy, the model's best single guess);
- medium (in between): adaptive voting that continues from the probe — its samples are the first
  wave, and waves of ``wave`` more are drawn until the Beta criterion of ``adaptive`` settles the
  vote or ``max_samples`` are reached.

The Result's ``how`` says which path was taken and why; its usage includes the probe.

Departures: difficulty comes from agreement (and confidence) of a few samples, not from a
learned or verifier-based predictor; the thresholds are parameters, not fitted per model; the
hard strategy's verifier is ``verifier`` for reflect, beam and mcts, and deepthink (whose
verifiers are outcome scorers) uses the judge unless ``verifier`` is one of those. Tools will join
the choices when ponder has them.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction

from ponder.budget import Budget, Usage
from ponder.events import Event, Final, Phase, Result, Spent, Stopped, Voted
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.adaptive import leader_probability, top_two
from ponder.think.base import fit_to_budget, solve_request
from ponder.think.beam import Beam
from ponder.think.deepthink import DeepThink
from ponder.think.mcts import Mcts
from ponder.think.reflect import Reflect
from ponder.think.sampling import (
    Batch,
    Candidate,
    first_text,
    leader,
    logged,
    plan_batch,
    sample_batch,
    tally,
)
from ponder.think.steps import check_split
from ponder.verify.process import make_step_scorer
from ponder.verify.scorers import SCORERS

HARD = ("reflect", "deepthink", "beam", "mcts")


@dataclass
class Auto:
    probe: int = 4  # samples in the probe (one batched request)
    probe_tokens: int = 512  # per probe sample
    easy: float = 1.0  # agreement at or above this (and confidence): answer from the probe
    hard: float = 0.5  # agreement below this: the hard strategy
    confident: float = 0.0  # easy also needs the probe's mean token probability at this (0: off)
    hard_with: str = "reflect"  # reflect | deepthink | beam | mcts
    verifier: str = "judge"  # the hard strategy's verifier (verify.process names)
    split: str = "auto"  # step boundaries for reflect, beam and mcts
    wave: int = 4  # medium: samples per further wave
    max_samples: int = 16  # medium: samples at most, the probe's included
    settle: float = 0.95  # medium: stop when P(leader truly ahead) reaches this (adaptive)
    max_tokens: int = 512  # per sample of the medium and hard paths
    temperature: float = 0.7
    seed: int | None = None

    spec_name = "auto"

    def __post_init__(self) -> None:
        for name in ("probe", "probe_tokens", "wave", "max_samples", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"auto: {name} must be a positive integer")
        if not 0 <= self.hard <= self.easy <= 1:
            raise ValueError("auto: need 0 <= hard <= easy <= 1 (agreement thresholds)")
        if not 0 <= self.confident <= 1:
            raise ValueError("auto: confident must be in [0, 1] (a mean token probability)")
        if not 0.5 < self.settle < 1:
            raise ValueError("auto: settle must be in (0.5, 1)")
        if self.temperature <= 0:
            raise ValueError("auto: temperature must be > 0 (a greedy probe always agrees)")
        if self.hard_with not in HARD:
            raise ValueError(f"auto: hard_with must be one of {', '.join(HARD)}")
        check_split("auto", self.split)
        try:
            self._hard_strategy()
        except ValueError as e:
            raise ValueError(f"auto: {e}") from None

    def _hard_strategy(self):
        common = {"max_tokens": self.max_tokens, "temperature": self.temperature, "seed": self.seed}
        if self.hard_with == "deepthink":
            verifier = self.verifier if self.verifier in SCORERS else "judge"
            return DeepThink(verifier=verifier, **common)
        make_step_scorer(self.verifier)
        cls = {"reflect": Reflect, "beam": Beam, "mcts": Mcts}[self.hard_with]
        return cls(verifier=self.verifier, split=self.split, **common)

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        trace: list[dict] = []
        # 1. the probe
        req = solve_request(
            problem, n=self.probe, max_tokens=self.probe_tokens, temperature=self.temperature,
            seed=self.seed, logprobs=True,
        )  # fmt: skip
        req = fit_to_budget(model, req, budget, Usage())
        if req is None:
            yield Final(Result(None, "", "budget too small for the prompt", Usage()))
            return
        batch = None
        async for item in sample_batch(model, req):
            if isinstance(item, Batch):
                batch = item
            else:
                yield logged(trace, item)
        spent, cands = batch.usage, batch.candidates
        votes = tally(cands)
        top = leader(votes)
        agreement = (votes[top] if top else 0) / len(cands)
        confidence = _confidence(cands)
        seen = f"{int(votes[top]) if top else 0}/{len(cands)} probe samples agree" + (
            f", confidence {confidence:.2f}" if confidence is not None else ""
        )
        yield logged(trace, Voted({k: float(v) for k, v in votes.items()}, top))
        yield logged(trace, Phase("probe", spent, seen))
        yield logged(trace, Spent(spent))

        # 2. route
        confident = confidence is None or confidence >= self.confident
        if top is not None and agreement >= self.easy and confident:
            how = f"auto: easy ({seen}) -> answered from the probe"
            yield Final(Result(top, first_text(cands, top), how, spent, trace))
            return
        if agreement >= self.hard and top is not None:
            async for ev in self._medium(problem, model, budget, spent, cands, seen, trace):
                yield ev
            return
        async for ev in self._hard(problem, model, budget, spent, cands, top, seen, trace):
            yield ev

    async def _medium(
        self, problem, model, budget, spent, cands, seen, trace
    ) -> AsyncIterator[Event]:
        """Adaptive voting whose first wave is the probe."""
        votes = tally(cands)
        p = leader_probability(*top_two(votes))
        while True:
            if p >= Fraction(self.settle):
                reason = f"settled after {len(cands)} samples: P={float(p):.2f}"
                break
            if len(cands) >= self.max_samples:
                reason = f"max_samples reached (P={float(p):.2f})"
                break
            n = min(self.wave, self.max_samples - len(cands))
            seed = None if self.seed is None else self.seed + len(cands)
            req = plan_batch(problem, model, budget, spent, n=n, max_tokens=self.max_tokens,
                             temperature=self.temperature, seed=seed)
            if req is None:
                reason = f"budget ended after {len(cands)} samples (P={float(p):.2f})"
                break
            batch = None
            async for item in sample_batch(model, req, first_index=len(cands)):
                if isinstance(item, Batch):
                    batch = item
                else:
                    yield logged(trace, item)
            spent = spent + batch.usage
            cands = cands + batch.candidates
            votes = tally(cands)
            yield logged(trace, Voted({k: float(v) for k, v in votes.items()}, leader(votes)))
            yield logged(trace, Spent(spent))
            p = leader_probability(*top_two(votes))
        yield logged(trace, Stopped(reason))
        top = leader(votes)
        how = (
            f"auto: medium ({seen}) -> adaptive voting: {reason}; "
            f"{int(votes[top])}/{len(cands)} samples agree"
        )
        yield Final(Result(top, first_text(cands, top), how, spent, trace))

    async def _hard(
        self, problem, model, budget, spent, cands, top, seen, trace
    ) -> AsyncIterator[Event]:
        strategy = self._hard_strategy()
        remaining = budget.remaining(spent)
        if remaining is not None and remaining < 1:
            text = first_text(cands, top) if top else cands[0].sample.text
            how = f"auto: hard ({seen}) but no budget left -> the probe's leading answer"
            yield Final(Result(top, text, how, spent, trace))
            return
        result = None
        async for ev in strategy.run(problem, model, Budget(remaining)):
            if isinstance(ev, Final):
                result = ev.result
            else:
                if isinstance(ev, Spent):  # usage so far: the probe's included
                    ev = Spent(spent + ev.usage)
                yield logged(trace, ev)
        why = "no answer"
        if top is not None:
            why = f"agreement {agreement_votes(cands, top)}/{len(cands)} < {self.hard:g}"
        how = f"auto: hard ({seen}; {why}) -> {self.hard_with}: {result.how}"
        answer, text = result.answer, result.text
        if answer is None and top is not None:  # the search found nothing: the probe still did
            answer, text = top, first_text(cands, top)
            how += "; so the probe's leading answer"
        yield Final(Result(answer, text, how, spent + result.usage, trace))


def agreement_votes(cands: list[Candidate], key: str | None) -> int:
    return sum(c.key == key for c in cands) if key else 0  # the leader's votes


def _confidence(cands: list[Candidate]) -> float | None:
    """Mean over the probe samples of each one's mean token probability (None without logprobs)."""
    values = [
        math.exp(sum(c.sample.logprobs) / len(c.sample.logprobs))
        for c in cands
        if c.sample.logprobs
    ]
    return sum(values) / len(values) if values else None

"""`confidence`: DeepConf online (Fu et al. 2025, "Deep Think with Confidence").

Self-consistency that reads the model's own token confidences (from top-k logprobs, see
``verify.confidence``) to stop unpromising traces early and to weight the vote:

1. warm-up: ``warmup`` full traces; each one's lowest group confidence (sliding window of
   ``window`` tokens). The stopping threshold ``s`` is the ``(100 - keep_percent)``-th percentile of
   those (linear interpolation, as ``numpy.percentile``). The paper's two settings:
   DeepConf-low keeps the top 10% (``keep_percent=10``: aggressive, ``s`` = 90th percentile),
   DeepConf-high keeps 90% (``keep_percent=90``: conservative, ``s`` = 10th percentile; default).
2. waves of ``wave`` samples, each followed token by token: as soon as a trace's current group
   confidence (the mean over its last ``window`` tokens) falls below ``s`` it is cut
   (finish_reason "cancelled", a ``Stopped(..., sample=i)`` event) and does not vote.
3. answer: a confidence-weighted vote over every trace that was not cut, warm-up traces included;
   a trace's weight is its lowest group confidence (the same measure the threshold is set on).

Where this version departs from the paper:

- Windows are small (64 tokens, not 2048): the models here write short traces. A trace shorter
  than the window is never cut (its group is not full yet) and is weighted by its mean confidence.
- All warm-up traces vote, also those below ``s``: they ran before the threshold existed and are
  not cut after the fact (a stricter variant would drop them too).
- The paper's early stop (consensus ``tau`` over the weighted vote) is checked after each wave only,
  from warm-up + one wave on: when the leader holds at least ``settle`` of the voting weight,
  sampling stops. ``settle=None`` turns it off.
- What cutting saved cannot be known (the trace might have ended one token later), so the strategy
  reports what cut traces cost instead.
- Samples that state no answer abstain; answers are compared as votes compare them
  (``verify.grade.answer_key``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ponder.events import Result, Sampled, Scored, Stopped
from ponder.models.base import ModelError, Sample, StopCheck
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase, seed_at, solve_request
from ponder.think.sampling import Candidate, candidate, first_with, leader, tally, voted
from ponder.verify.confidence import RunningGroupConfidence, lowest_group_confidence


@dataclass
class Confidence(StrategyBase):
    warmup: int = 4  # full traces that set the threshold (and vote)
    max_samples: int = 16  # traces in all, warm-up included
    wave: int = 4  # traces per batched request after warm-up
    keep_percent: float = 90  # % of warm-up traces at or above the threshold (10: low, 90: high)
    window: int = 64  # tokens per confidence group
    top_k: int = 5  # top logprobs per position that token confidence is computed from
    settle: float | None = 0.95  # stop once the leader holds this share of the weight; None: never
    temperature: float = 0.7

    name = "confidence"
    client_tools = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("warmup", "wave", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"confidence: {name} must be a positive integer")
        if self.max_samples < self.warmup:
            raise ValueError("confidence: max_samples must be >= warmup (warm-up traces count)")
        if not 0 < self.keep_percent <= 100:
            raise ValueError(
                "confidence: keep_percent must be in (0, 100] (10: DeepConf-low, 90: DeepConf-high)"
            )
        if not 1 <= self.top_k <= 20:
            raise ValueError("confidence: top_k must be in [1, 20]")
        if self.settle is not None and not 0.5 < self.settle <= 1:
            raise ValueError("confidence: settle must be in (0.5, 1], or none to never stop early")

    async def solve(self, problem: Problem, run: Run) -> Result:
        voters: list[Candidate] = []  # traces that were not cut, warm-up included
        weights: dict[int, float] = {}  # trace index -> its lowest group confidence
        first_voter = None
        drawn = n_cut = cut_tokens = 0
        threshold: float | None = None

        while drawn < self.max_samples:
            warm = threshold is None
            n = self.warmup if warm else min(self.wave, self.max_samples - drawn)
            req = solve_request(
                problem, self.sampling, n=n, top_logprobs=self.top_k, seed=seed_at(self.sampling, drawn)
            )
            req = run.meter.fit(req)
            if req is None:
                if warm:
                    return run.result(None, None, "budget too small for the prompt")
                run.emit(Stopped(f"budget spent after {drawn} traces"))
                break
            cut: dict[int, float] = {}  # index in this call -> group confidence that cut it
            should_stop = None if warm else _cutter(threshold, self.window, cut)
            completion = await run.generate(req, drawn, should_stop)
            for j, sample in enumerate(completion.samples):
                if sample.top_logprobs is None:
                    raise ModelError(
                        f"confidence: the model {run.model.name} returned no top logprobs; this "
                        "strategy needs a backend that provides them (gguf, hf, or an "
                        "OpenAI-compatible server with logprobs)"
                    )
                i = drawn + j
                if j in cut:  # a cut trace states no final answer and does not vote
                    n_cut += 1
                    tokens = sample.completion_tokens
                    cut_tokens += tokens
                    run.emit(Sampled(i, sample.text, None, tokens, sample.finish_reason))
                    run.emit(
                        Stopped(
                            f"low confidence: group confidence {cut[j]:.3f} fell below the "
                            f"threshold {threshold:.3f} after {tokens} tokens",
                            sample=i,
                        )
                    )
                    continue
                c = candidate(i, sample, problem)
                weights[i] = lowest_group_confidence(sample, self.window)
                voters.append(c)
                first_voter = first_voter or c
                run.emit(c.sampled)
                run.emit(Scored(i, weights[i], f"lowest group confidence (window {self.window})"))
            drawn += n
            votes = tally(voters, weights)
            top = leader(votes)
            run.emit(voted(votes, voters))
            if warm:
                threshold = percentile(list(weights.values()), 100 - self.keep_percent)
                continue
            total = sum(votes.values())
            more = drawn < self.max_samples
            if self.settle is not None and top is not None and total > 0 and more:
                share = votes[top] / total
                if share >= self.settle:
                    said = first_with(voters, top).answer
                    run.emit(Stopped(f"vote settled: {said} holds {share:.0%} of the weight"))
                    break

        how_cut = (
            f"; {n_cut} cut below confidence {threshold:.3f} ({cut_tokens} tokens spent on them)"
            if n_cut
            else ""
        )
        votes = tally(voters, weights)
        top = leader(votes)
        if top is None:
            how = f"no answer in any of {drawn} traces{how_cut}"
            return run.result(None, first_voter.chosen if first_voter else None, how)
        total = sum(votes.values())
        share = votes[top] / total if total > 0 else 1.0
        answered = sum(c.key is not None for c in voters)
        best = max((c for c in voters if c.key == top), key=lambda c: weights[c.index])
        how = (
            f"confidence-weighted vote of {answered} answered traces ({drawn} drawn, "
            f"{min(self.warmup, drawn)} warm-up){how_cut}: {best.answer} holds {share:.0%} of the "
            "weight"
        )
        return run.result(best.answer, best.chosen, how)


def _cutter(threshold: float, window: int, cut: dict[int, float]) -> StopCheck:
    """A ``should_stop`` that cuts trace i once its group confidence falls below ``threshold``,
    recording the group that cut it in ``cut[i]``. Its running windows live in this closure, one
    call's worth (never on the strategy object)."""
    running: dict[int, RunningGroupConfidence] = {}
    seen: dict[int, int] = {}  # rows of trace i already pushed

    def should_stop(i: int, partial: Sample) -> bool:
        rows = partial.top_logprobs
        if rows is None:
            return False  # reported as a setup error once the call returns
        rc = running.setdefault(i, RunningGroupConfidence(window))
        for row in rows[seen.get(i, 0) :]:
            group = rc.push(row)
            if group is not None and group < threshold:
                cut[i] = group
                break
        seen[i] = len(rows)
        return i in cut

    return should_stop


def percentile(xs: list[float], q: float) -> float:
    """The q-th percentile of xs, interpolating linearly between ranks (``numpy.percentile``'s
    default); 0.0 for no values."""
    if not xs:
        return 0.0
    xs = sorted(xs)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

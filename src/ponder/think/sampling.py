"""Pieces the sampling strategies share (vote, best_of_n, adaptive).

- ``plan_batch``: one batched request of n chains of thought, shrunk so that it (and, when asked, a
  scoring call per sample) cannot overspend the budget;
- ``sample_batch``: run it, streaming TextDelta and Sampled events, ending with a ``Batch``;
- ``tally`` / ``leader``: answers compared after ``normalize_answer``, samples without an answer
  abstain, ties go to the answer seen first;
- ``score_candidates``: rate the answered candidates with a Scorer when the budget covers it.

The async generators here yield Events and, last, one plain value (``Batch`` / ``Scoring``) that the
calling strategy keeps instead of forwarding.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace

from ponder.budget import Budget, Usage
from ponder.events import Event, Sampled, Scored, Stopped, TextDelta
from ponder.models.base import Completion, Model, Request, Sample
from ponder.problems.base import Problem
from ponder.think.base import fit_to_budget, solve_request, stream_generate
from ponder.verify.extract import extract_answer
from ponder.verify.normalize import normalize_answer
from ponder.verify.scoring import Scorer


@dataclass
class Candidate:
    """One sample and the answer it states (``key``: the normalised form votes compare)."""

    index: int
    sample: Sample
    answer: str | None
    key: str | None


@dataclass
class Batch:
    """What one batched request produced."""

    candidates: list[Candidate]
    usage: Usage


@dataclass
class Scoring:
    """Scores of the candidates that were scored (by candidate index) and what scoring cost."""

    scores: dict[int, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


def scoring_cost(scorer: Scorer, problem: Problem, model: Model) -> Callable[[int], int]:
    """Worst-case cost of scoring one sample of ``m`` completion tokens, before it exists.

    The scorer prices a concrete sample, so we price a stand-in of ``m`` one-word tokens. It is a
    plan, not the guarantee: ``score_candidates`` prices every real sample again before paying.
    """

    def cost(m: int) -> int:
        stand_in = Sample(" x" * m, 0, m, "length", [0.0] * m, [[0.0]] * m)
        return scorer.max_cost(problem, stand_in, model)

    return cost


def logged(trace: list[dict], event: Event) -> Event:
    """``event``, recorded in ``trace`` unless it is a TextDelta (the trace keeps whole steps)."""
    if not isinstance(event, TextDelta):
        trace.append(event.to_dict())
    return event


def plan_batch(
    problem: Problem,
    model: Model,
    budget: Budget,
    spent: Usage,
    *,
    n: int,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    top_logprobs: int = 0,
    extra_per_sample: Callable[[int], int] | None = None,
) -> Request | None:
    """The request for n samples, its ``max_tokens`` shrunk to fit what is left; None if none fits.

    ``extra_per_sample(m)``: tokens to keep back per sample of m tokens (a scoring call after it);
    the largest m for which the prompt plus n * (m + extra(m)) fits is chosen (extra grows with m).
    """
    request = solve_request(
        problem,
        n=n,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        top_logprobs=top_logprobs,
    )
    request = fit_to_budget(model, request, budget, spent)
    remaining = budget.remaining(spent)
    if request is None or extra_per_sample is None or remaining is None:
        return request
    room = remaining - model.count_prompt_tokens(request)

    def fits(m: int) -> bool:
        return n * (m + extra_per_sample(m)) <= room

    if not fits(1):
        return None
    lo, hi = 1, request.max_tokens  # binary search for the largest m that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return replace(request, max_tokens=lo)


def plan_scored_batch(
    problem: Problem, model: Model, budget: Budget, spent: Usage, scorer: Scorer, **sampling
) -> Request | None:
    """``plan_batch`` for samples that ``scorer`` will rate: room to score each one is kept back.

    When even one-token samples leave no room for that, this is the plain plan: the caller samples
    anyway and goes without scores (``score_candidates`` will then decline), rather than nothing.
    """
    cost = scoring_cost(scorer, problem, model)
    sampling["top_logprobs"] = scorer.top_logprobs
    planned = plan_batch(problem, model, budget, spent, extra_per_sample=cost, **sampling)
    return planned or plan_batch(problem, model, budget, spent, **sampling)


async def sample_batch(
    model: Model, request: Request, first_index: int = 0
) -> AsyncIterator[Event | Batch]:
    """Run one batched request: TextDelta events as text arrives, a Sampled event per sample, then
    the Batch (samples numbered from ``first_index``)."""
    completion = None
    async for item in stream_generate(model, request, first_index):
        if isinstance(item, Completion):
            completion = item
        else:
            yield item
    candidates = []
    for i, s in enumerate(completion.samples):
        raw = extract_answer(s.text)
        c = Candidate(first_index + i, s, raw, normalize_answer(raw))
        candidates.append(c)
        yield Sampled(c.index, s.text, raw, s.completion_tokens, s.finish_reason)
    yield Batch(candidates, completion.usage)


def tally(
    candidates: Iterable[Candidate], weights: dict[int, float] | None = None
) -> dict[str, float]:
    """Answer key -> votes (or summed weights), in first-seen order; answerless samples abstain,
    and with ``weights`` so do samples that have none."""
    votes: dict[str, float] = {}
    for c in candidates:
        if c.key is None:
            continue
        if weights is None:
            votes[c.key] = votes.get(c.key, 0) + 1
        elif c.index in weights:
            votes[c.key] = votes.get(c.key, 0) + weights[c.index]
    return votes


def leader(votes: dict[str, float]) -> str | None:
    """The answer with the most votes; ties go to the one seen first (as Counter.most_common)."""
    best = None
    for key, v in votes.items():
        if best is None or v > votes[best]:
            best = key
    return best


def first_text(candidates: Iterable[Candidate], key: str) -> str:
    """The text of the first sample that stated ``key``."""
    return next(c.sample.text for c in candidates if c.key == key)


async def score_candidates(
    problem: Problem,
    model: Model,
    scorer: Scorer,
    candidates: list[Candidate],
    budget: Budget,
    spent: Usage,
) -> AsyncIterator[Event | Scoring]:
    """Score the candidates that state an answer, yielding a Scored event each, then the Scoring.

    All or none: the calls are priced with ``scorer.max_cost`` first, and if the budget cannot pay
    for every one of them none is made (a Stopped event says so) — scoring only some candidates
    would favour them arbitrarily. The paid calls run concurrently.
    """
    answered = [c for c in candidates if c.key is not None]
    remaining = budget.remaining(spent)
    if remaining is not None:
        cost = sum(scorer.max_cost(problem, c.sample, model) for c in answered)
        if cost > remaining:
            yield Stopped(
                f"budget left no room to score the {len(answered)} answered samples with "
                f"{scorer.name} ({cost} tokens needed, {remaining} left)"
            )
            yield Scoring()
            return
    results = await asyncio.gather(*(scorer.score(problem, c.sample, model) for c in answered))
    scoring = Scoring()
    for c, r in zip(answered, results):
        scoring.scores[c.index] = r.score
        scoring.usage = scoring.usage + r.usage
        yield Scored(c.index, r.score, r.reason)
    yield scoring

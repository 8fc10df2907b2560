"""Pieces the sampling strategies share (vote, best_of_n, adaptive, auto).

- ``plan_batch``: one batched request of n chains of thought, shrunk by the meter so that it (and,
  when asked, a scoring call per sample) cannot overspend the budget;
- ``sample_batch``: run it, emitting a Sampled event per sample, and return the Batch (each
  sample's answer read by ``verify.read_answer``: the final answer, or a code problem's code);
- ``tally`` / ``leader`` / ``voted``: answers compared in ``verify.grade.answer_key``'s form (after
  ``normalize_answer``; a countdown expression up to the order of its terms and factors), samples
  without an answer abstain, ties go to the answer seen first; a sample that answered with tool
  calls votes for its calls (``calls_key``: the same functions with equal arguments after JSON
  normalisation), so a vote between calls and text answers is a plain majority over both;
- ``score_candidates``: rate the answered candidates with a Scorer when the budget covers it;
- ``draw_in_waves``: draw and score batches until n samples, or (rejection sampling) until a batch
  holds one the scorer passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ponder.budget import Usage
from ponder.events import Chosen, Sampled, Scored, Stopped, Voted
from ponder.models.base import Request, Sample
from ponder.problems.base import Problem
from ponder.problems.conversation import calls_key
from ponder.think.base import Run, seed_at, solve_request
from ponder.think.config import Sampling
from ponder.verify.grade import answer_key, read_answer
from ponder.verify.scoring import Attempt, Scorer
from ponder.verify.steps import states_answer


@dataclass
class Candidate:
    """One sample and the answer it states (``key``: the form votes compare, ``answer_key``; for a
    sample that answered with tool calls both are ``calls_key`` of its calls)."""

    index: int
    sample: Sample
    answer: str | None
    key: str | None

    @property
    def chosen(self) -> Chosen:
        s = self.sample
        return Chosen(self.index, s.text, s.completion_tokens, s.finish_reason, s.tool_calls)

    @property
    def sampled(self) -> Sampled:
        """The Sampled event that reports this candidate."""
        s = self.sample
        return Sampled(self.index, s.text, self.answer, s.completion_tokens, s.finish_reason,
                       s.tool_calls)  # fmt: skip

    @property
    def attempt(self) -> Attempt:
        return Attempt(self.sample.text, self.answer, sample=self.sample)


@dataclass
class Batch:
    """What one batched request produced."""

    candidates: list[Candidate]
    usage: Usage


@dataclass
class Scoring:
    """Scores of the candidates that were scored, by candidate index (empty: none was), and the
    indices of those the scorer passed (``Score.ok``)."""

    scores: dict[int, float] = field(default_factory=dict)
    passed: set[int] = field(default_factory=set)


def candidate(index: int, sample: Sample, problem: Problem) -> Candidate:
    """A sample and its answer, read as ``problem`` states answers (``verify.grade.read_answer``).

    A sample that was cut off (by the backend, or at max_tokens) carries an answer only if it
    states one (``\\boxed`` or an "Answer:" line): the last number of a fragment is no answer,
    and must not vote. A sample that answered with (complete) tool calls answers with them."""
    if sample.tool_calls:
        key = calls_key(sample.tool_calls)
        return Candidate(index, sample, key, key)
    cut = sample.finish_reason == "incomplete" or (
        sample.finish_reason == "length" and problem.kind != "code"
    )
    if cut and not states_answer(sample.text):
        return Candidate(index, sample, None, None)
    raw = read_answer(problem, sample.text)
    return Candidate(index, sample, raw, answer_key(problem, raw))


def scoring_reserve(run: Run, scorer: Scorer, problem: Problem):
    """Worst-case cost of scoring one sample of ``m`` completion tokens, before it exists.

    The scorer prices a concrete sample, so we price a stand-in of ``m`` one-word tokens. It is a
    plan, not the guarantee: the meter prices every real sample again before paying.
    """

    def cost(m: int) -> int:
        stand_in = Sample(" x" * m, 0, m, "length", [0.0] * m, [[0.0]] * m)
        return scorer.max_cost(problem, Attempt(stand_in.text, "x", sample=stand_in), run.model)

    return cost


def plan_batch(
    run: Run,
    problem: Problem,
    sampling: Sampling,
    n: int,
    *,
    scorer: Scorer | None = None,
    **changes,
) -> Request | None:
    """The request for n samples, fitted to what is left; None if not one token fits.

    With ``scorer``, room to score each sample is kept back; when even one-token samples leave no
    room for that, this is the plain plan: the caller samples anyway and goes without scores
    (``score_candidates`` will then decline), rather than nothing.
    """
    if scorer is not None:
        changes.setdefault("top_logprobs", scorer.top_logprobs)
        changes.setdefault("logprobs", scorer.logprobs)
    request = solve_request(problem, sampling, n=n, **changes)
    if scorer is not None:
        planned = run.meter.fit(request, scoring_reserve(run, scorer, problem))
        if planned is not None:
            return planned
    return run.meter.fit(request)


async def sample_batch(
    run: Run, request: Request, first_index: int = 0, *, problem: Problem
) -> Batch:
    """Run one batched request, streaming its text; a Sampled event per sample (numbered from
    ``first_index``), its answer read as ``problem`` states answers."""
    completion = await run.generate(request, first_index)
    candidates = []
    for i, s in enumerate(completion.samples):
        c = candidate(first_index + i, s, problem)
        candidates.append(c)
        run.emit(c.sampled)
    return Batch(candidates, completion.usage)


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


def voted(votes: dict[str, float], candidates: list[Candidate]) -> Voted:
    """The Voted event of a tally, each answer in the words of the first sample that gave it (the
    keys votes compare are for comparing, not for showing: ``3+7+25`` was ``(25+7)+3``)."""
    shown = {key: first_with(candidates, key).answer or key for key in votes}
    top = leader(votes)
    return Voted({shown[k]: float(v) for k, v in votes.items()}, shown[top] if top else None)


def first_with(candidates: Iterable[Candidate], key: str) -> Candidate:
    """The first sample that stated ``key``."""
    return next(c for c in candidates if c.key == key)


async def score_candidates(
    run: Run, scorer: Scorer, problem: Problem, candidates: list[Candidate]
) -> Scoring:
    """Score the candidates that state an answer, emitting a Scored event each.

    All or none: when the budget cannot pay for every call, none is made (a Stopped event says
    so) — scoring only some candidates would favour them arbitrarily. The calls run concurrently.
    """
    answered = [c for c in candidates if c.key is not None]
    scores = await run.score_all(scorer, problem, [c.attempt for c in answered])
    if scores is None:
        cost = run.meter.score_cost(scorer, problem, [c.attempt for c in answered])
        run.emit(
            Stopped(
                f"budget left no room to score the {len(answered)} answered samples with "
                f"{scorer.name} ({cost} tokens needed, {run.meter.remaining} left)"
            )
        )
        return Scoring()
    scoring = Scoring()
    for c, s in zip(answered, scores):
        scoring.scores[c.index] = s.value
        if s.ok:
            scoring.passed.add(c.index)
        run.emit(Scored(c.index, s.value, s.reason))
    return scoring


async def draw_in_waves(
    run: Run,
    problem: Problem,
    sampling: Sampling,
    scorer: Scorer,
    n: int,
    size: int,
    *,
    until_pass: bool,
    drawn: list[Candidate] | None = None,
) -> tuple[list[Candidate], Scoring]:
    """Draw samples in batches of ``size`` until ``n`` are drawn (``drawn``, already scored,
    counting towards them), scoring each batch with ``scorer`` as it comes; with ``until_pass``,
    stop after the first batch holding a sample the scorer passes. Each batch has its own seed (the
    seed plus the samples drawn before it), so no batch repeats another's draws. A budget that
    cannot pay for another batch ends the draw. Returns every candidate and the new batches'
    scores."""
    cands = list(drawn or [])
    scoring = Scoring()
    while len(cands) < n:
        k = min(size, n - len(cands))
        req = plan_batch(run, problem, sampling, k, scorer=scorer,
                         seed=seed_at(sampling, len(cands)))  # fmt: skip
        if req is None:
            break
        batch = (await sample_batch(run, req, len(cands), problem=problem)).candidates
        scored = await score_candidates(run, scorer, problem, batch)
        cands += batch
        scoring.scores.update(scored.scores)
        scoring.passed |= scored.passed
        if until_pass and scored.passed:
            break
    return cands, scoring

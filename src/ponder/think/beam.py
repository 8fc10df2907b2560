"""`beam`: step-level beam search guided by a process verifier (Snell et al. 2024, "Scaling LLM
Test-Time Compute Optimally..."; the search-and-learn recipe), and its diverse variant DVTS
(``diverse=true``: Diverse Verifier Tree Search, Beeching et al. 2024).

A beam is a partial solution cut at a step boundary (``think.steps``). The search starts with
``beams * expand`` first steps (one batched request), then, at each depth, every live beam is
extended by ``expand`` candidate next steps (one batched request per beam, continuing its text
and stopping at the step boundary). Each candidate step is rated by the step verifier
(``verify.scorers``: ``judge``, ``prob``, ``arith``, ``countdown``, ``prm:PATH``; the default
``auto`` is ``countdown`` on a countdown puzzle, else ``judge``); a beam's score aggregates
its steps' scores (``aggregate``: min, last or mean). Of all candidates the ``beams`` best are kept
(ties: higher mean token logprob, then the earlier sample); a kept candidate that states an answer
(or ends the text) is finished and set aside, and its slot is not refilled. With ``diverse`` the
first ``beams * expand`` steps are dealt into ``beams`` independent subtrees, and each subtree keeps
only its own best candidate: the beams cannot all collapse onto one promising prefix.

With an exact step verifier a score of 0 means a wrong step, and keeping it wastes a slot on a
solution that is already wrong. ``floor`` drops every candidate whose score is below it (``floor=1``
with ``countdown`` or ``arith``: only partial solutions whose every step passed go on), and a level
that keeps fewer than ``beams`` live beams is refilled from the reserve: the candidates above the
floor that earlier levels did not keep, best first. A beam whose every sampled next step was
rejected goes back to the reserve itself, ``retries`` times at most, so that a step the model gets
right only now and then is sampled again before the branch is given up. So when a beam cannot go
on, the search backs off to the best alternative it set aside, the way a depth-first search
returns to an earlier branch (Yao et al. 2023, "Tree of Thoughts", prunes with its evaluator the
same way). With a floor, identical partial solutions are merged (the first is kept): sampled at a
temperature, a deterministic line such as a search's list of moves comes back many times, and each
copy would only repeat its twin's search. ``floor=0`` (the default) drops nothing and keeps
duplicates, as Snell et al.'s beam search does. DVTS subtrees are pruned by the floor but not
refilled.

The answer (``pick``): ``vote`` is a score-weighted majority over the finished beams (Snell et
al.'s "weighted best-of-N" over the final beams), ``best`` the best-scored finished beam.

Budget: each depth is priced before it starts (the prompts, ``expand`` samples of ``step_tokens``
per beam, and a verifier call per candidate); when it does not fit, the weakest beams are dropped
until it does. When the search ends with no finished beam (the budget or ``max_steps`` ran out),
the best live beam is completed in one call with what is left (at most ``max_tokens``).

Departures: steps are sampled with a stop string, so one sample is at most one step, and a step
cut by ``step_tokens`` counts as a step; finished beams whose text states no answer rank below
every beam that may still give one; the verifier sees one step at a time (the PRM reads the
whole prefix), and nothing is cached across calls except what the backend caches itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from ponder.events import Backtracked, Chosen, Expanded, Kept, Result, Sampled, Stopped
from ponder.models.base import Sample
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase, seed_at, solve_request
from ponder.think.sampling import leader
from ponder.think.steps import (
    check_split,
    cut_steps_warning,
    ends_solution,
    sampling_split,
    separator,
    step_request,
)
from ponder.verify.extract import extract_answer
from ponder.verify.grade import answer_key
from ponder.verify.scoring import Attempt, Scorer

AGGREGATES = ("min", "last", "mean")
PICKS = ("vote", "best")


@dataclass
class Node:
    """A partial (or finished) solution in a step-level search."""

    id: int
    parent: int | None
    text: str  # the solution so far; ends with a separator unless finished
    depth: int
    scores: list[float] = field(default_factory=list)  # one per step
    logprob: float = 0.0  # summed over the solution's tokens
    tokens: int = 0  # completion tokens of its steps
    finished: bool = False
    answer: str | None = None
    subtree: int = 0  # DVTS: which independent subtree it grows in
    retried: int = 0  # times it went back to the reserve because every continuation was rejected

    def score(self, aggregate: str) -> float:
        if not self.scores:
            return 0.0
        if aggregate == "min":
            return min(self.scores)
        if aggregate == "last":
            return self.scores[-1]
        return sum(self.scores) / len(self.scores)

    def rank(self, aggregate: str) -> tuple:
        alive = not self.finished or self.answer is not None
        return (alive, self.score(aggregate), self.logprob / max(1, self.tokens))

    @property
    def chosen(self) -> Chosen:
        return Chosen(self.id, self.text, self.tokens, "stop")


def child(parent: Node, id: int, sample: Sample, split: str) -> Node:
    """The node one sampled step below ``parent``."""
    done = ends_solution(sample)
    text = parent.text + sample.text + ("" if done else separator(split))
    lp = sum(sample.logprobs or ())
    return Node(
        id, parent.id, text, parent.depth + 1, list(parent.scores), parent.logprob + lp,
        parent.tokens + sample.completion_tokens, done,
        extract_answer(text) if done and sample.text.strip() else None, parent.subtree,
    )  # fmt: skip


@dataclass
class Search:
    """What one ``solve`` carries from depth to depth."""

    nodes: list[Node]  # every node, by id
    live: list[Node] = field(default_factory=list)  # the beams the next depth expands
    finished: list[Node] = field(default_factory=list)
    reserve: list[Node] = field(default_factory=list)  # above the floor, not kept: to back off to
    texts: set[str] = field(default_factory=set)  # with a floor: every partial solution seen
    sound: list[Node] = field(default_factory=list)  # every candidate at or above the floor
    rejected: list[Node] = field(default_factory=list)  # below the floor
    draws: int = 0  # samples drawn so far: the next call's seed offset
    sampled: list[Sample] = field(default_factory=list)  # every sampled step (cut-step warning)


def stand_in(tokens: int) -> str:
    """A step of ``tokens`` one-word tokens: what pricing a verifier call before the step exists
    uses (as ``sampling.scoring_reserve`` does)."""
    return " x" * tokens


@dataclass
class Beam(StrategyBase):
    beams: int = 4  # partial solutions kept at each depth
    expand: int = 4  # candidate next steps per beam
    max_steps: int = 12  # rounds of expansion: the depth limit (a round that backs off counts too)
    verifier: str | Scorer = "auto"  # auto | judge | prob | arith | countdown | prm:PATH (steps)
    diverse: bool = False  # DVTS: beams independent subtrees, each keeping its best
    split: str = "auto"  # auto | blank | line (verify.steps; auto is line under verifier=countdown)
    step_tokens: int = 128  # per step
    aggregate: str = "min"  # a beam's score from its steps': min | last | mean
    pick: str = "vote"  # vote (score-weighted over finished beams) | best
    floor: float = 0.0  # candidates scored below it are dropped; the reserve refills the level
    retries: int = 2  # with a floor: re-expansions of a beam whose every next step was rejected
    # max_tokens: completing a beam that the search left unfinished
    temperature: float = 0.8

    name = "beam"
    auto_verifier = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("beams", "expand", "max_steps", "step_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"beam: {name} must be a positive integer")
        if self.retries < 0:
            raise ValueError("beam: retries must be 0 or more")
        self.sampling.require_temperature("beam", "greedy candidates would all agree")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"beam: aggregate must be one of {', '.join(AGGREGATES)}")
        if self.pick not in PICKS:
            raise ValueError(f"beam: pick must be one of {', '.join(PICKS)}")
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError("beam: floor must be between 0 and 1 (a step score's range)")
        check_split("beam", self.split)
        self._scorer = self.scorer_for("step")

    async def solve(self, problem: Problem, run: Run) -> Result:
        scorer = self.scorer_on(problem)
        split = sampling_split(self.split, scorer.name)
        base = solve_request(problem, self.sampling)
        search = Search([Node(0, None, "", 0)])
        search.live = list(search.nodes)
        reason = ""
        for depth in range(self.max_steps):
            if not search.live:
                break
            plans = self._plan(problem, run, scorer, base, search.live, split)
            if not plans:
                reason = f"budget ended at depth {depth}"
                break
            if len(plans) < len(search.live):
                dropped = len(search.live) - len(plans)
                run.emit(Stopped(f"budget: the {dropped} weakest beams dropped"))
            candidates = await self._expand(run, plans, search, depth, split)
            await self._rate(problem, run, scorer, plans, candidates, search.nodes)
            kept = self._select(run, search, plans, [k for k, _ in candidates], depth)
            run.emit(Kept(depth, [k.id for k in kept], [k.score(self.aggregate) for k in kept]))
            search.live = []
            for k in kept:
                if k.finished:
                    search.finished.append(k)
                    run.emit(Sampled(k.id, k.text, k.answer, k.tokens, "stop"))
                else:
                    search.live.append(k)
        if not reason:
            if search.live:
                reason = f"max_steps={self.max_steps} reached"
            elif search.finished or not search.rejected:
                reason = "every kept beam finished"
            else:
                reason = f"no candidate at or above floor={self.floor:g} left"
        if (warning := cut_steps_warning(search.sampled, self.step_tokens)) is not None:
            run.emit(warning)
        return await self._conclude(problem, run, base, search, reason)

    async def _expand(
        self, run: Run, plans, search: "Search", depth: int, split: str
    ) -> list[tuple[Node, Sample]]:
        """Sample every planned beam's next steps (concurrently; the backend batches each beam's
        samples): (candidate node, its step) pairs, the nodes added to ``search.nodes``."""
        reqs = []
        for _, req in plans:
            reqs.append(replace(req, seed=seed_at(self.sampling, search.draws)))
            search.draws += req.n
        completions = await asyncio.gather(*(run.call(r) for r in reqs))
        candidates: list[tuple[Node, Sample]] = []
        for (parent, _), c in zip(plans, completions):
            search.sampled += c.samples
            for s in c.samples:
                kid = child(parent, len(search.nodes), s, split)
                if depth == 0 and self.diverse:  # deal the first steps into subtrees
                    kid.subtree = len(candidates) // self.expand
                search.nodes.append(kid)
                candidates.append((kid, s))
        return candidates

    async def _rate(self, problem: Problem, run: Run, scorer: Scorer, plans, candidates, nodes) -> None:
        """Score every candidate step (concurrently): all or none, priced exactly first. An empty
        step (the text ended) gets no score."""
        to_score = [(k, s) for k, s in candidates if s.text.strip()]
        attempts = [Attempt(nodes[k.parent].text + s.text, step=s.text, sample=s) for k, s in to_score]
        scored = await run.meter.score_all(scorer, problem, attempts)
        if scored is None:
            run.emit(Stopped(f"budget: no room to score {len(to_score)} steps"))
            scored = []
        for (kid, _), r in zip(to_score, scored):
            kid.scores.append(r.value)
        for parent, _ in plans:
            kids = [k for k, _ in candidates if k.parent == parent.id]
            new = [k.scores[-1] if len(k.scores) > len(parent.scores) else None for k in kids]
            steps = [k.text[len(parent.text):] for k in kids]
            run.emit(Expanded(parent.id, [k.id for k in kids], steps, new))
        run.spent()

    def _select(self, run: Run, search: "Search", plans, candidates: list[Node], depth: int) -> list[Node]:
        """The candidates that go on (or finish) from this depth. With a floor: those below it are
        rejected, duplicates of a text already seen are merged, a beam whose every next step was
        rejected goes back to the reserve (``retries`` times), and a level left short of beams is
        refilled from the reserve, best first, each refill a ``Backtracked`` event."""
        score = lambda k: k.score(self.aggregate)  # noqa: E731
        passed = [k for k in candidates if score(k) >= self.floor]
        if self.floor > 0:  # one node per text: a duplicate would only repeat its twin's search
            unique = []
            for k in passed:
                if k.text not in search.texts:
                    search.texts.add(k.text)
                    unique.append(k)
            passed = unique
        search.sound += passed
        for parent, _ in plans:  # every next step rejected: sample this beam's step again
            kids = [k for k in candidates if k.parent == parent.id]
            if kids and all(score(k) < self.floor for k in kids) and parent.retried < self.retries:
                parent.retried += 1
                search.reserve.append(parent)
        search.rejected += [k for k in candidates if score(k) < self.floor]
        kept = self._keep(passed, len(search.finished))
        search.reserve += [k for k in passed if k not in kept and not k.finished]
        short = self.beams - len(search.finished) - len(kept)
        if short > 0 and search.reserve and not self.diverse:  # back off to set-aside candidates
            search.reserve.sort(key=lambda n: n.rank(self.aggregate), reverse=True)
            back, search.reserve = search.reserve[:short], search.reserve[short:]
            for n in back:
                why = f"depth {depth} kept too few steps at or above the floor; back to node {n.id}"
                run.emit(Backtracked(n.depth, depth, why))
            kept += back
        return kept

    async def _conclude(
        self, problem: Problem, run: Run, base, search: "Search", reason: str
    ) -> Result:
        """The result: the pick among the finished beams that state an answer; with none, the best
        live beam completed in one call with what is left; failing that, the best partial solution
        (with a floor and nothing left above it, the deepest sound one, not a rejected step)."""
        nodes, live, finished = search.nodes, search.live, search.finished
        answered = [n for n in finished if n.answer is not None]
        completed = ""
        if not answered and live:  # complete the best unfinished beam with what is left
            best = max(live, key=lambda n: n.rank(self.aggregate))
            req = run.meter.fit(base.continuing(best.text))
            if req is not None:
                req = replace(req, seed=seed_at(self.sampling, search.draws))
                s = (await run.generate(req, len(nodes))).samples[0]
                done = Node(len(nodes), best.id, best.text + s.text, best.depth + 1,
                            list(best.scores), best.logprob, best.tokens + s.completion_tokens,
                            True, extract_answer(best.text + s.text))  # fmt: skip
                nodes.append(done)
                answered = [done] if done.answer is not None else []
                run.emit(Sampled(done.id, done.text, done.answer, done.tokens, s.finish_reason))
                completed = f"; beam {best.id} completed in one call"
        if len(nodes) == 1:
            return run.result(None, None, "budget too small for the prompt")
        if not answered:  # the best partial solution stands, cut off where the search ended
            if finished or live or not self.floor:
                top = max(finished + live, key=lambda n: n.rank(self.aggregate))
            else:
                top = max(search.sound or search.rejected, key=lambda n: (n.depth, n.rank(self.aggregate)))
            finish = "stop" if top.finished else "length"
            run.emit(Sampled(top.id, top.text, None, top.tokens, finish))
            chosen = Chosen(top.id, top.text, top.tokens, finish)
            return run.result(None, chosen, f"{reason}; no beam states an answer")
        top, why = self._pick(problem, answered)
        how = f"{'DVTS' if self.diverse else 'beam search'}: {reason}{completed}; {why}"
        return run.result(top.answer, top.chosen, how)

    def _plan(self, problem: Problem, run: Run, scorer: Scorer, base, live, split: str):
        """(beam, request) for the next depth, the weakest beams dropped until all of it fits."""
        ordered = sorted(live, key=lambda n: n.rank(self.aggregate), reverse=True)
        plans = []
        for node in ordered:
            n = self.beams * self.expand if node.depth == 0 else self.expand
            req = step_request(
                base, node.text, split, n=n, max_tokens=self.step_tokens, logprobs=True
            )
            step = stand_in(self.step_tokens)
            cost = run.meter.cost(req)
            cost += n * scorer.max_cost(problem, Attempt(node.text + step, step=step), run.model)
            plans.append((node, req, cost))
        while plans and not run.meter.affords(sum(c for *_, c in plans)):
            plans.pop()
        return [(node, req) for node, req, _ in plans]

    def _keep(self, candidates: list[Node], n_finished: int) -> list[Node]:
        """The candidates that go on (or finish): the best ``beams - finished`` of all, or with
        ``diverse`` the best of each subtree."""
        key = lambda n: n.rank(self.aggregate)
        if not self.diverse:
            return sorted(candidates, key=key, reverse=True)[: max(0, self.beams - n_finished)]
        best: dict[int, Node] = {}
        for n in candidates:
            if n.subtree not in best or key(n) > key(best[n.subtree]):
                best[n.subtree] = n
        return list(best.values())

    def _pick(self, problem: Problem, answered: list[Node]) -> tuple[Node, str]:
        """(the chosen beam, why) from the finished beams that state an answer."""
        if self.pick == "best":
            top = max(answered, key=lambda n: n.rank(self.aggregate))
            why = f"best of {len(answered)} finished beams, score {top.score(self.aggregate):.3f}"
            return top, why
        weights = [(n.answer, n.score(self.aggregate)) for n in answered]
        top, share, weighted = weighted_vote(problem, weights)
        best = max((n for n in answered if vote_key(problem, n.answer) == top),
                   key=lambda n: n.rank(self.aggregate))  # fmt: skip
        kind = "score-weighted vote" if weighted else "vote (every score 0)"
        why = f"{kind} of {len(answered)} finished beams: {share:.0%} for {best.answer}"
        return best, why


def vote_key(problem: Problem, answer: str) -> str:
    """What votes compare (``verify.grade.answer_key``, or the answer itself where that gives
    nothing)."""
    return answer_key(problem, answer) or answer


def weighted_vote(problem: Problem, weighted: list[tuple[str, float]]) -> tuple[str, float, bool]:
    """The answer with the most weight (negative weights count as 0; the first seen on a tie),
    its share of the weight, and whether weights decided: when every weight is 0, a plain count
    decides."""
    votes: dict[str, float] = {}
    keys = [vote_key(problem, answer) for answer, _ in weighted]
    for key, (_, w) in zip(keys, weighted, strict=True):
        votes[key] = votes.get(key, 0.0) + max(0.0, w)
    by_weight = any(votes.values())
    if not by_weight:
        votes = {}
        for key in keys:
            votes[key] = votes.get(key, 0.0) + 1
    top = leader(votes)
    return top, votes[top] / sum(votes.values()), by_weight

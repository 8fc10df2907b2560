"""`mcts`: Monte Carlo tree search over solution steps, rollouts scored by a verifier.

UCT (Kocsis & Szepesvári 2006) over partial solutions cut at step boundaries, as in rStar-Math
(Guan et al. 2025) and other step-level MCTS for reasoning, without their trained policy and
reward models. A node is a partial solution; its children are sampled next steps. Each of
``simulations`` simulations:

1. selection: from the root, repeatedly the child with the highest UCT value
   ``Q + c * sqrt(ln N_parent / N_child)`` (``Q``: the child's mean value; unvisited children
   first, the earlier sampled on a tie), down to a node that has no children yet;
2. expansion: unless that node ends its solution or sits at ``max_steps``, ``expand`` next steps
   are sampled for it (one batched request), and the first of them becomes the node to roll out
   from (the others wait their turn through UCT's unvisited-first rule);
3. rollout: the solution is completed from that node in one sample (a node whose step already
   ends the solution is its own rollout) and rated by the step verifier's ``score_solution``
   (``arith``: every equation in the whole text; ``judge``: the outcome judge; ``prob``: the
   rollout's mean token probability; ``prm:PATH``: its weakest step; ``countdown``: every line
   and the answer; the default ``auto`` is ``countdown`` on a countdown puzzle, else ``judge``),
   a value in [0, 1];
4. backpropagation: every node on the path gets one visit and the value.

Visit counts therefore add up: the root's visits are the simulations done, and every node's
visits are the rollouts started at it plus the sum of its children's visits (the trace's final
``Tree`` event carries visits, rollouts and mean values; the tests check this).

The answer: a value-weighted vote over all rollouts (each rollout's answer weighs its value; a
count when every value is 0), the text of its best-valued rollout. Departures: no prior from the
policy in the selection rule (plain UCT, not PUCT), one rollout per simulation, a finished node
is scored once and re-used when selected again, and no cache of rollouts across the tree.

Budget: each simulation is priced before it starts (expansion, rollout and scoring at their
worst); when it does not fit, the search stops and the answer is made from what was rolled out.
A scoring call is priced again exactly before it is paid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ponder.events import Chosen, Expanded, Result, Sampled, Simulated, Stopped, Tree
from ponder.models.base import Sample
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase, seed_at, solve_request
from ponder.think.beam import stand_in, vote_key, weighted_vote
from ponder.think.steps import (
    check_split,
    cut_steps_warning,
    ends_solution,
    sampling_split,
    separator,
    step_request,
)
from ponder.verify.extract import extract_answer
from ponder.verify.scoring import Attempt, Scorer


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    text: str  # the solution so far; ends with a separator unless terminal
    step: str = ""
    children: list[int] = field(default_factory=list)
    visits: int = 0
    value: float = 0.0  # summed over the visits
    rollouts: int = 0  # rollouts started at this node
    terminal: bool = False  # its step ends the solution
    answer: str | None = None
    sample: Sample | None = None  # the sample that wrote its step (for terminal nodes' scores)
    score: float | None = None  # a terminal node's cached value

    def mean(self) -> float:
        return self.value / self.visits if self.visits else 0.0


@dataclass
class Rollout:
    node: int
    text: str
    answer: str | None
    value: float
    index: int = 0  # its sample: the Simulated event's simulation number
    tokens: int = 0
    finish: str = "stop"


@dataclass
class Mcts(StrategyBase):
    simulations: int = 16
    expand: int = 3  # children per expansion
    c: float = 1.0  # UCT exploration constant (values are in [0, 1])
    verifier: str | Scorer = "auto"  # auto | judge | prob | arith | countdown | prm:PATH
    max_steps: int = 12  # nodes deeper than this are not expanded
    split: str = "auto"  # auto | blank | line (verify.steps; auto is line under verifier=countdown)
    step_tokens: int = 128
    temperature: float = 0.8  # max_tokens: per rollout

    name = "mcts"
    auto_verifier = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("simulations", "expand", "max_steps", "step_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"mcts: {name} must be a positive integer")
        if self.c < 0:
            raise ValueError("mcts: c must be >= 0")
        self.sampling.require_temperature("mcts", "greedy children would all agree")
        check_split("mcts", self.split)
        self._scorer = self.scorer_for("step")

    async def solve(self, problem: Problem, run: Run) -> Result:
        scorer = self.scorer_on(problem)
        split = sampling_split(self.split, scorer.name)
        base = solve_request(problem, self.sampling, logprobs=scorer.logprobs)
        nodes = [Node(0, None, 0, "")]
        rollouts: list[Rollout] = []
        draws = 0  # samples drawn so far: the next call's seed offset
        sampled: list[Sample] = []  # every sampled step, for the cut-step warning
        reason = f"{self.simulations} simulations done"

        def seeded(req):
            nonlocal draws
            seed = seed_at(self.sampling, draws)
            draws += req.n
            return replace(req, seed=seed)

        for sim in range(self.simulations):
            # 1. selection
            path = [nodes[0]]
            while path[-1].children and not path[-1].terminal:
                parent = path[-1]
                kids = [nodes[i] for i in parent.children]
                path.append(max(kids, key=lambda n: self._uct(parent, n)))  # first on a tie
            leaf = path[-1]
            grow = not leaf.terminal and not leaf.children and leaf.depth < self.max_steps
            if not self._fits(problem, run, scorer, base, leaf, grow, split):
                reason = f"budget ended after {sim} simulations"
                break
            # 2. expansion
            if grow:
                req = step_request(base, leaf.text, split, n=self.expand,
                                   max_tokens=self.step_tokens, logprobs=scorer.logprobs)
                c = await run.call(seeded(req))
                sampled += c.samples
                for s in c.samples:
                    done = ends_solution(s)
                    text = leaf.text + s.text + ("" if done else separator(split))
                    answer = extract_answer(text) if done and s.text.strip() else None
                    kid = Node(len(nodes), leaf.id, leaf.depth + 1, text, s.text,
                               terminal=done, answer=answer, sample=s)
                    nodes.append(kid)
                    leaf.children.append(kid.id)
                kids = [nodes[i] for i in leaf.children]
                steps = [k.step for k in kids]
                run.emit(Expanded(leaf.id, leaf.children, steps, [None] * len(kids)))
                leaf = kids[0]
                path.append(leaf)
            # 3. rollout
            if leaf.terminal:
                text, answer, sample = leaf.text, leaf.answer, leaf.sample
            else:
                req = run.meter.fit(seeded(base.continuing(leaf.text)))
                if req is None:
                    reason = f"budget ended in simulation {sim}"
                    break
                sample = (await run.call(req)).samples[0]
                text = leaf.text + sample.text
                answer = extract_answer(text)
            if leaf.terminal and leaf.score is not None:
                value = leaf.score
            elif not text.strip() or answer is None:
                value = 0.0  # nothing stated: nothing to score
            else:
                r = await run.meter.score(scorer, problem, Attempt(text, answer, sample=sample))
                if r is None:
                    reason = f"budget ended before simulation {sim}'s rollout could be scored"
                    run.spent()
                    break
                value = r.value
            if leaf.terminal:
                leaf.score = value
            # 4. backpropagation
            leaf.rollouts += 1
            for n in path:
                n.visits += 1
                n.value += value
            tokens = sample.completion_tokens if sample is not None else 0
            finish = sample.finish_reason if sample is not None else "stop"
            rollouts.append(Rollout(leaf.id, text, answer, value, sim, tokens, finish))
            run.emit(Sampled(sim, text, answer, tokens, finish))  # the rollout, as a sample
            run.emit(Simulated(sim, [n.id for n in path], value, answer))
            run.spent()

        run.emit(Stopped(reason))
        if (warning := cut_steps_warning(sampled, self.step_tokens)) is not None:
            run.emit(warning)
        run.emit(Tree([
            {"id": n.id, "parent": n.parent, "depth": n.depth, "step": n.step, "visits": n.visits,
             "value": round(n.mean(), 4), "rollouts": n.rollouts, "terminal": n.terminal,
             "answer": n.answer}
            for n in nodes
        ]))  # fmt: skip
        answered = [r for r in rollouts if r.answer is not None]
        if not answered:
            last = _chosen(rollouts[-1]) if rollouts else None
            how = f"{reason}; no rollout states an answer" if rollouts else reason
            return run.result(None, last, how)
        top, share, weighted = weighted_vote(problem, [(r.answer, r.value) for r in answered])
        best = max(
            (r for r in answered if vote_key(problem, r.answer) == top), key=lambda r: r.value
        )
        of = "rollout value" if weighted else "rollouts (every value 0)"
        how = (
            f"{reason}; {len(nodes)} nodes, {len(rollouts)} rollouts; "
            f"{best.answer} holds {share:.0%} of the {of}"
        )
        return run.result(best.answer, _chosen(best), how)

    def _uct(self, parent: Node, n: Node) -> float:
        if n.visits == 0:
            return math.inf
        return n.mean() + self.c * math.sqrt(math.log(parent.visits) / n.visits)

    def _fits(
        self, problem, run: Run, scorer: Scorer, base, leaf: Node, grow: bool, split: str
    ) -> bool:
        """Whether one simulation from ``leaf`` fits the budget at its worst."""
        if run.meter.remaining is None:
            return True
        cost, text = 0, leaf.text
        if grow:
            req = step_request(base, text, split, n=self.expand, max_tokens=self.step_tokens)
            cost += run.meter.cost(req)
            text += stand_in(self.step_tokens) + separator(split)
        if grow or not leaf.terminal:
            cost += run.meter.cost(base.continuing(text))
            text += stand_in(self.sampling.max_tokens)
        cost += scorer.max_cost(problem, Attempt(text, "x"), run.model)
        return run.meter.affords(cost)


def _chosen(r: Rollout) -> Chosen:
    return Chosen(r.index, r.text, r.tokens, r.finish)

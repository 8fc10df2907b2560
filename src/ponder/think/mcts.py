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
   (``arith``: every equation in the whole text; ``judge``: the outcome judge; ``confidence``: the
   rollout's mean token probability; ``prm:PATH``: its weakest step), a value in [0, 1];
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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from ponder.budget import Budget, Usage
from ponder.events import (
    Event,
    Expanded,
    Final,
    Result,
    Simulated,
    Spent,
    Stopped,
    Tree,
)
from ponder.models.base import Model, Sample
from ponder.problems.base import Problem
from ponder.think.base import fit_to_budget, solve_request
from ponder.think.beam import answer_key, stand_in, weighted_vote
from ponder.think.sampling import logged
from ponder.think.steps import check_split, ends_solution, separator, step_request
from ponder.verify.extract import extract_answer
from ponder.verify.process import make_step_scorer


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


@dataclass
class Mcts:
    simulations: int = 16
    expand: int = 3  # children per expansion
    c: float = 1.0  # UCT exploration constant (values are in [0, 1])
    verifier: str = "judge"  # judge | confidence | arith | prm:PATH (verify.process)
    max_steps: int = 12  # nodes deeper than this are not expanded
    split: str = "auto"  # auto | blank | line (think.steps)
    step_tokens: int = 128
    max_tokens: int = 512  # per rollout
    temperature: float = 0.8
    seed: int | None = None

    spec_name = "mcts"

    def __post_init__(self) -> None:
        for name in ("simulations", "expand", "max_steps", "step_tokens", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"mcts: {name} must be a positive integer")
        if self.c < 0:
            raise ValueError("mcts: c must be >= 0")
        if self.temperature <= 0:
            raise ValueError("mcts: temperature must be > 0 (greedy children would all agree)")
        check_split("mcts", self.split)
        try:
            make_step_scorer(self.verifier)
        except ValueError as e:
            raise ValueError(f"mcts: {e}") from None

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        scorer = make_step_scorer(self.verifier)
        base = solve_request(
            problem,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            logprobs=scorer.logprobs,
        )
        nodes = [Node(0, None, 0, "")]
        rollouts: list[Rollout] = []
        spent, trace = Usage(), []
        draws = 0  # samples drawn so far: the next call's seed offset
        reason = f"{self.simulations} simulations done"

        def seeded(req):
            nonlocal draws
            seed = None if self.seed is None else self.seed + draws
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
            if not self._fits(problem, model, scorer, base, leaf, grow, budget, spent):
                reason = f"budget ended after {sim} simulations"
                break
            # 2. expansion
            if grow:
                req = step_request(base, leaf.text, self.split, n=self.expand,
                                   max_tokens=self.step_tokens, logprobs=scorer.logprobs)
                c = await model.generate(seeded(req))
                spent = spent + c.usage
                for s in c.samples:
                    done = ends_solution(s)
                    text = leaf.text + s.text + ("" if done else separator(self.split))
                    answer = extract_answer(text) if done and s.text.strip() else None
                    kid = Node(len(nodes), leaf.id, leaf.depth + 1, text, s.text,
                               terminal=done, answer=answer, sample=s)
                    nodes.append(kid)
                    leaf.children.append(kid.id)
                kids = [nodes[i] for i in leaf.children]
                steps = [k.step for k in kids]
                yield logged(trace, Expanded(leaf.id, leaf.children, steps, [None] * len(kids)))
                leaf = kids[0]
                path.append(leaf)
            # 3. rollout
            if leaf.terminal:
                text, answer, sample = leaf.text, leaf.answer, leaf.sample
            else:
                req = fit_to_budget(model, seeded(base.continuing(leaf.text)), budget, spent)
                if req is None:
                    reason = f"budget ended in simulation {sim}"
                    break
                c = await model.generate(req)
                spent = spent + c.usage
                sample = c.samples[0]
                text = leaf.text + sample.text
                answer = extract_answer(text)
            if leaf.terminal and leaf.score is not None:
                value = leaf.score
            elif not text.strip() or answer is None:
                value = 0.0  # nothing stated: nothing to score
            else:
                remaining = budget.remaining(spent)
                cost = scorer.max_solution_cost(problem, text, model)
                if remaining is not None and cost > remaining:
                    reason = f"budget ended before simulation {sim}'s rollout could be scored"
                    yield logged(trace, Spent(spent))
                    break
                r = await scorer.score_solution(problem, text, model, sample)
                spent = spent + r.usage
                value = r.score
            if leaf.terminal:
                leaf.score = value
            # 4. backpropagation
            leaf.rollouts += 1
            for n in path:
                n.visits += 1
                n.value += value
            rollouts.append(Rollout(leaf.id, text, answer, value))
            yield logged(trace, Simulated(sim, [n.id for n in path], value, answer))
            yield logged(trace, Spent(spent))

        yield logged(trace, Stopped(reason))
        yield logged(trace, Tree([
            {"id": n.id, "parent": n.parent, "depth": n.depth, "step": n.step, "visits": n.visits,
             "value": round(n.mean(), 4), "rollouts": n.rollouts, "terminal": n.terminal,
             "answer": n.answer}
            for n in nodes
        ]))  # fmt: skip
        answered = [r for r in rollouts if r.answer is not None]
        if not answered:
            text = rollouts[-1].text if rollouts else ""
            how = f"{reason}; no rollout states an answer" if rollouts else reason
            yield Final(Result(None, text, how, spent, trace))
            return
        top, share, weighted = weighted_vote([(r.answer, r.value) for r in answered])
        best = max((r for r in answered if answer_key(r.answer) == top), key=lambda r: r.value)
        of = "rollout value" if weighted else "rollouts (every value 0)"
        how = (
            f"{reason}; {len(nodes)} nodes, {len(rollouts)} rollouts; "
            f"{best.answer} holds {share:.0%} of the {of}"
        )
        yield Final(Result(best.answer, best.text, how, spent, trace))

    def _uct(self, parent: Node, n: Node) -> float:
        if n.visits == 0:
            return math.inf
        return n.mean() + self.c * math.sqrt(math.log(parent.visits) / n.visits)

    def _fits(self, problem, model, scorer, base, leaf: Node, grow: bool, budget, spent) -> bool:
        """Whether one simulation from ``leaf`` fits the budget at its worst."""
        remaining = budget.remaining(spent)
        if remaining is None:
            return True
        cost, text = 0, leaf.text
        if grow:
            req = step_request(base, text, self.split, n=self.expand, max_tokens=self.step_tokens)
            cost += model.count_prompt_tokens(req) + self.expand * self.step_tokens
            text += stand_in(self.step_tokens) + separator(self.split)
        if grow or not leaf.terminal:
            cost += model.count_prompt_tokens(base.continuing(text)) + self.max_tokens
            text += stand_in(self.max_tokens)
        cost += scorer.max_solution_cost(problem, text, model)
        return cost <= remaining

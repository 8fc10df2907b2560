"""`reflect`: solve, check the solution step by step, cut it at the first wrong step and write it
again from there.

The verify-and-backtrack loop of o1-style reasoning, with the process view of Lightman et al. 2023
("Let's Verify Step by Step"): a solution is only as good as its first wrong step, so everything
before that step is kept and only what follows it is written again. One round:

1. the model writes the solution (the first round), or continues the kept prefix (later rounds);
2. a process verifier (``verify.process``: ``judge``, the model itself asked about each step with
   the steps before it; ``arith``, exact equations; ``prm:PATH``) checks the steps in order, from
   the first one not checked before, and stops at the first that fails;
3. all pass: done. Otherwise the solution is cut before the failing step (a ``Backtracked``
   event) and the next round continues from the cut, with a new seed.

Rounds are bounded by ``rounds`` (the number of backtracks) and by the budget: every generation is
shrunk with ``fit_to_budget`` and every check is priced with the verifier's ``max_cost`` first;
when a check does not fit, checking stops and the solution stands as it is.

Departures: the model is not told what was wrong (the regeneration is a fresh sample from the cut,
as in step-level rejection sampling, not a critique-and-revise); steps that passed are never
checked again; a failing first step means a full restart; the answer is the final text's, also
when its last check failed (the rounds or the budget ran out). ``confidence`` is not a verifier
here: a step cut out of a whole sample has no logprobs of its own. The first solution is greedy
by default (``first_temperature``); ``temperature``, for the regenerations, must be > 0, or a
regeneration would write the same failing step again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.budget import Budget, Usage
from ponder.events import Backtracked, Checked, Event, Final, Result, Sampled, Spent
from ponder.models.base import Completion, Model
from ponder.problems.base import Problem
from ponder.think.base import fit_to_budget, solve_request, stream_generate
from ponder.think.sampling import logged
from ponder.think.steps import check_split, mode_for, split_steps
from ponder.verify.extract import extract_answer
from ponder.verify.process import make_step_scorer


@dataclass
class Reflect:
    rounds: int = 3  # backtracks at most
    verifier: str = "judge"  # judge | arith | prm:PATH (verify.process)
    split: str = "auto"  # step boundaries: auto | blank | line (think.steps)
    max_tokens: int = 512  # per generation (the first solution, and each continuation)
    temperature: float = 0.7  # of the regenerations after a backtrack
    first_temperature: float = 0.0  # of the first solution (0: greedy, as cot)
    seed: int | None = None  # round r samples with seed + r

    spec_name = "reflect"

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError("reflect: rounds must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("reflect: max_tokens must be a positive integer")
        if self.temperature <= 0:
            raise ValueError(
                "reflect: temperature must be > 0 (a greedy regeneration repeats the failing step)"
            )
        if self.first_temperature < 0:
            raise ValueError("reflect: first_temperature must be >= 0")
        check_split("reflect", self.split)
        try:
            scorer = make_step_scorer(self.verifier)
        except ValueError as e:
            raise ValueError(f"reflect: {e}") from None
        if scorer.needs_sample:
            raise ValueError(
                f"reflect: verifier={self.verifier} needs each step's own sample; reflect checks "
                "steps cut out of a whole solution: use judge, arith or prm:PATH"
            )

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        scorer = make_step_scorer(self.verifier)
        base = solve_request(problem, max_tokens=self.max_tokens, temperature=self.temperature)
        spent, trace = Usage(), []
        text, prefix, mode = "", "", None
        checked = backtracks = 0  # steps of the solution that passed; backtracks done
        reason = ""
        while True:
            seed = None if self.seed is None else self.seed + backtracks
            t = self.temperature if backtracks else self.first_temperature
            req = base.continuing(prefix, seed=seed, temperature=t)
            req = fit_to_budget(model, req, budget, spent)
            if req is None:
                reason = (
                    "budget too small for the prompt" if not text
                    else f"budget ended before step {checked} could be written again"
                )
                break
            completion = None
            async for item in stream_generate(model, req, first_index=backtracks):
                if isinstance(item, Completion):
                    completion = item
                else:
                    yield item
            sample = completion.samples[0]
            spent = spent + completion.usage
            text = prefix + sample.text
            tokens, finish = sample.completion_tokens, sample.finish_reason
            answer = extract_answer(text)
            yield logged(trace, Sampled(backtracks, text, answer, tokens, finish))
            yield logged(trace, Spent(spent))
            mode = mode or mode_for(text, self.split)  # fixed by the first text: cuts stay put
            steps = split_steps(text, mode)
            bad, failed, out_of_budget, paid = None, "", False, False
            for k in range(checked, len(steps)):
                before = "".join(steps[:k])
                remaining = budget.remaining(spent)
                cost = scorer.max_cost(problem, before, steps[k], model)
                if remaining is not None and cost > remaining:
                    out_of_budget = True
                    break
                r = await scorer.score(problem, before, steps[k], model)
                spent, paid = spent + r.usage, paid or r.usage.calls > 0
                yield logged(trace, Checked(k, r.ok, r.score, r.reason))
                if not r.ok:
                    bad, failed = k, r.reason
                    break
                checked = k + 1
            if paid:
                yield logged(trace, Spent(spent))
            if out_of_budget:
                reason = f"budget ended while checking step {checked}"
                break
            if bad is None:
                reason = f"all {len(steps)} steps pass {scorer.name}"
                break
            if backtracks == self.rounds:
                reason = f"step {bad} still fails ({failed}) after {backtracks} backtracks"
                break
            backtracks += 1
            prefix = "".join(steps[:bad])
            yield logged(trace, Backtracked(bad, backtracks, failed))

        answer = extract_answer(text) if text else None
        how = f"{backtracks} backtrack{'s' if backtracks != 1 else ''}; {reason}"
        if text and answer is None:
            how += "; no answer found in the text"
        yield Final(Result(answer, text, how, spent, trace))

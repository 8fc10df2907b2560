"""`reflect`: solve, check the solution step by step, cut it at the first wrong step and write it
again from there.

The verify-and-backtrack loop of o1-style reasoning, with the process view of Lightman et al. 2023
("Let's Verify Step by Step"): a solution is only as good as its first wrong step, so everything
before that step is kept and only what follows it is written again. One round:

1. the model writes the solution (the first round), or continues the kept prefix (later rounds);
2. a step verifier (``verify.scorers``: ``judge``, the model itself asked about each step with
   the steps before it; ``arith``, exact equations; ``prm:PATH``) checks the steps in order, from
   the first one not checked before, and stops at the first that fails (``countdown``, exact, on
   a countdown search; the default ``auto`` picks it on a countdown puzzle, else ``judge``);
3. all pass: done. Otherwise the solution is cut before the failing step (a ``Backtracked``
   event) and the next round continues from the cut, with a new seed.

Rounds are bounded by ``rounds`` (the number of backtracks) and by the budget: the meter fits
every generation to what is left and prices every check first; when a check does not fit,
checking stops and the solution stands as it is.

Departures: the model is not told what was wrong (the regeneration is a fresh sample from the cut,
as in step-level rejection sampling, not a critique-and-revise); steps that passed are never
checked again; a failing first step means a full restart; the answer is the final text's, also
when its last check failed (the rounds or the budget ran out). ``prob`` is not a verifier
here: a step cut out of a whole sample has no logprobs of its own. The first solution is greedy
by default (``first_temperature``); ``temperature``, for the regenerations, must be > 0, or a
regeneration would write the same failing step again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Backtracked, Checked, Chosen, Result, Sampled
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase, seed_at, solve_request
from ponder.verify.extract import extract_answer
from ponder.verify.scoring import Attempt, Scorer
from ponder.verify.steps import check_split, mode_for, split_steps


@dataclass
class Reflect(StrategyBase):
    rounds: int = 3  # backtracks at most
    verifier: str | Scorer = "auto"  # auto | judge | arith | countdown | prm:PATH (steps)
    split: str = "auto"  # step boundaries: auto | blank | line (verify.steps)
    first_temperature: float = 0.0  # of the first solution (0: greedy, as cot)
    # max_tokens: per generation (the first solution, and each continuation); temperature: of the
    # regenerations after a backtrack; round r samples with seed + r
    temperature: float = 0.7

    name = "reflect"
    auto_verifier = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 0:
            raise ValueError("reflect: rounds must be >= 0")
        self.sampling.require_temperature(
            "reflect", "a greedy regeneration repeats the failing step"
        )
        if not 0 <= self.first_temperature <= 2:
            raise ValueError("reflect: first_temperature must be a number from 0 to 2")
        check_split("reflect", self.split)
        self._scorer = self.scorer_for("step")
        if self._scorer.needs_sample:
            raise ValueError(
                f"reflect: verifier={self._scorer.name} needs each step's own sample; reflect "
                "checks steps cut out of a whole solution: use auto, judge, arith, countdown or "
                "prm:PATH"
            )

    async def solve(self, problem: Problem, run: Run) -> Result:
        scorer = self.scorer_on(problem)
        base = solve_request(problem, self.sampling)
        text, prefix, mode, last = "", "", None, None
        checked = backtracks = 0  # steps of the solution that passed; backtracks done
        reason = ""
        while True:
            t = self.sampling.temperature if backtracks else self.first_temperature
            req = base.continuing(prefix, seed=seed_at(self.sampling, backtracks), temperature=t)
            req = run.meter.fit(req)
            if req is None:
                reason = (
                    "budget too small for the prompt" if not text
                    else f"budget ended before step {checked} could be written again"
                )
                break
            sample = (await run.generate(req, first_index=backtracks)).samples[0]
            text = prefix + sample.text
            answer = extract_answer(text)
            tokens, finish = sample.completion_tokens, sample.finish_reason
            run.emit(Sampled(backtracks, text, answer, tokens, finish))
            last = Chosen(backtracks, text, tokens, finish)
            mode = mode or mode_for(text, self.split)  # fixed by the first text: cuts stay put
            steps = split_steps(text, mode)
            bad, failed, out_of_budget = None, "", False
            for k in range(checked, len(steps)):
                attempt = Attempt("".join(steps[: k + 1]), step=steps[k])
                r = await run.score(scorer, problem, attempt)
                if r is None:
                    out_of_budget = True
                    break
                run.emit(Checked(k, r.ok, r.value, r.reason))
                if not r.ok:
                    bad, failed = k, r.reason
                    break
                checked = k + 1
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
            run.emit(Backtracked(bad, backtracks, failed))

        answer = extract_answer(text) if text else None
        how = f"{backtracks} backtrack{'s' if backtracks != 1 else ''}; {reason}"
        if text and answer is None:
            how += "; no answer found in the text"
        return run.result(answer, last, how)

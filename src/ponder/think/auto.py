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

- verified: the probe's answered samples are scored first by a checker that tests an answer
  against the problem itself without calling a model (``checks_answer``). With
  ``verify_probe=auto`` (the default) that is the task's own grader where it needs no reference
  answer (``check`` on countdown and sudoku), else the ``verifier`` where it is such a checker
  (``countdown``, which passes a search whose every line holds and whose expression makes the
  target; ``tests``, which runs the prompt's examples); ``verify_probe=NAME`` names one. A sample
  it passes is answered at once (of several, the one most samples agree with): the check has
  settled it. A probe it rejects whole is not answered from, whatever the agreement: a vote
  among rejected answers could only pick one of them. With ``sample_on=on`` (the default) waves
  of ``wave`` more samples are drawn, each checked as it comes, until one passes or
  ``max_samples`` (the probe's included) hold none — rejection sampling, as ``best_of_n:wave``
  does and AlphaCode filters samples by a problem's examples, continuing from the probe — and only
  then is the problem hard; ``sample_on=off`` makes it hard at once. This is Snell et al.'s own
  difficulty signal (a verifier's scores over samples) where it is exact and costs nothing. On
  ``lab:countdown-grpo`` the grader beats the step verifier here (45.5% against 40.0% of 200
  puzzles, 11 puzzles to none, both with ``sample_on=off``): it passes a right answer reached
  after a slip (docs/results/countdown_scaling/auto_verified). ``arith`` passes an answer with no
  wrong equation (one with none at all too), and the judge costs a call per sample and is an
  opinion: with those, agreement routes alone;
- easy (agreement >= ``easy`` and confidence >= ``confident``): answer from the probe, no more
  calls — the cheap path;
- hard (agreement < ``hard``): hand the remaining budget to ``hard_with`` (``reflect``,
  ``deepthink``, ``beam`` or ``mcts``), which starts afresh: a split probe's leader is not worth
  repairing (reflect's first solution is greedy, the model's best single guess). It gets auto's
  verifier, split and sampling settings; its own options are written with its name in front
  (``hard_with=beam,beam.floor=1,beam.step_tokens=256``) and win over those;
- medium (in between): adaptive voting that continues from the probe — its samples are the first
  wave, and waves of ``wave`` more are drawn until the Beta criterion of ``adaptive`` settles the
  vote or ``max_samples`` are reached.

With ``tools=auto`` (the default) a fourth path runs programs: ``code`` (tool-integrated
reasoning, ``think/code.py``) gets the budget

- at once, without a probe, when the problem is a code task (``kind == "code"``): the tool runs
  the function on its prompt's examples, which no vote over samples can do;
- after the probe, when the probe does not agree (not easy) on an arithmetic-heavy question
  (``arithmetic_heavy``: at least 6 digits in numbers joined by an operator, such as
  ``487 * 596``, or at least 10 digits over 3 or more numbers): exact computation is what a model
  gets wrong and a program does not. If the run finds no answer, the probe's leader stands.

``tools=off``, or a host where the sandbox cannot run, routes as before, and the trace says so.

The Result's ``how`` says which path was taken and why (a ``Phase("route")`` event too, when a
tool route was considered); its usage includes the probe.

Departures: difficulty comes from agreement (and confidence) of a few samples, and from a free
verifier's verdicts on them where there is one, not from a learned predictor or binned verifier
scores; the thresholds are parameters, not fitted per model; the hard strategy's verifier is
``verifier`` for reflect, beam and mcts, and deepthink (whose verifiers are outcome scorers) uses
the judge unless ``verifier`` is one of those. The tool route is a rule on the question's surface
(its digits and operators) and the probe's agreement, not a measured estimate of what the tool
would add; ``code`` runs greedily (temperature 0, one run). Checked sampling comes before the
hard strategy, not instead of it. With the step verifier as the checker it bought little on
``lab:countdown-grpo`` (9 more of 200 puzzles for 2.2x the tokens, stop 43); with the puzzle's
grader, the default there, its waves are ``best_of_n:wave=4``'s own samples, and ``auto`` gives
55.5% at 4,341 tokens against 45.5% at 2,232 with ``sample_on=off``, on the frontier. ``reflect``
after sixteen rejected samples solved 1 of 90 puzzles, the verified beam
(``hard_with=beam,beam.floor=1``) 17: 63.5% at 19,863 tokens, the dear end of the frontier
(docs/results/countdown_scaling/auto_verified/checked_waves).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import ClassVar

from ponder.events import Chosen, Phase, Result, Scored
from ponder.problems.base import Problem
from ponder.think.adaptive import Adaptive
from ponder.think.base import Run, StrategyBase
from ponder.think.code import Code
from ponder.think.sampling import (
    Candidate,
    draw_in_waves,
    first_with,
    leader,
    plan_batch,
    sample_batch,
    score_candidates,
    tally,
    voted,
)
from ponder.tools.sandbox import SandboxUnavailable, check_available
from ponder.verify.grade import REFERENCE_FREE
from ponder.verify.scorers import AUTO, FALLBACK, SCORERS, make_scorer, resolve_scorer
from ponder.verify.scoring import Attempt, Scorer, settles_answers
from ponder.verify.steps import check_split

HARD = ("reflect", "deepthink", "beam", "mcts")
TOOLS = ("auto", "off")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_OPERATOR = re.compile(r"\d\s*[-+*/^×÷]\s*(?=[\d(])")


@dataclass
class Auto(StrategyBase):
    probe: int = 4  # samples in the probe (one batched request)
    probe_tokens: int = 512  # per probe sample
    easy: float = 1.0  # agreement at or above this (and confidence): answer from the probe
    hard: float = 0.5  # agreement below this: the hard strategy
    confident: float = 0.0  # easy also needs the probe's mean token probability at this (0: off)
    hard_with: str = "reflect"  # reflect | deepthink | beam | mcts
    # hard_with's own options, written NAME.option=value in a spec (beam.floor=1): what they set
    # wins over what auto passes down (verifier, split and the sampling settings)
    hard_options: tuple[tuple[str, str, str], ...] = ()
    # the hard strategy's verifier (a step scorer; auto: the problem's own exact step verifier
    # where it has one, countdown on a countdown puzzle, else judge)
    verifier: str = "auto"
    split: str = "auto"  # step boundaries for reflect, beam and mcts
    tools: str = "auto"  # auto: route code tasks and arithmetic-heavy disagreement to code; off
    # auto: score the probe with the task's grader where it needs no reference, else with the
    # verifier where it checks answers; off: agreement alone; or a checker's name
    verify_probe: str = "auto"
    # on: a probe the checker rejects whole gets checked waves before hard_with; off: hard_with
    sample_on: str = "on"
    wave: int = 4  # medium and checked sampling: samples per further wave
    max_samples: int = 16  # medium and checked sampling: samples at most, the probe's included
    settle: float = 0.95  # medium: stop when P(leader truly ahead) reaches this (adaptive)
    # max_tokens: per sample of the medium and hard paths
    temperature: float = 0.7

    name = "auto"
    nested_key: ClassVar[str] = "hard_options"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("probe", "probe_tokens", "wave", "max_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"auto: {name} must be a positive integer")
        if not 0 <= self.hard <= self.easy <= 1:
            raise ValueError("auto: need 0 <= hard <= easy <= 1 (agreement thresholds)")
        if not 0 <= self.confident <= 1:
            raise ValueError("auto: confident must be in [0, 1] (a mean token probability)")
        if not 0.5 < self.settle < 1:
            raise ValueError("auto: settle must be in (0.5, 1)")
        self.sampling.require_temperature("auto", "a greedy probe always agrees")
        if self.hard_with not in HARD:
            raise ValueError(f"auto: hard_with must be one of {', '.join(HARD)}")
        if self.tools not in TOOLS:
            raise ValueError(f"auto: tools must be one of {', '.join(TOOLS)}")
        if self.sample_on not in ("on", "off"):
            raise ValueError("auto: sample_on must be on or off")
        check_split("auto", self.split)
        try:
            self._hard_strategy = self._make_hard()
        except ValueError as e:
            raise ValueError(f"auto: {e}") from None
        self._medium = Adaptive(
            wave=self.wave, max_samples=self.max_samples, confidence=self.settle,
            **self._sampling_fields(),
        )  # fmt: skip
        self._probe_scorer = self._answer_checker()
        self._grader = make_scorer("check", level="answer")
        s = self.sampling
        self._code = Code(max_tokens=s.max_tokens, temperature=0.0, top_p=s.top_p, seed=s.seed)

    @property
    def settings(self) -> dict[str, str]:
        """Auto's own, and every option of the strategies it builds (``beam.max_steps``,
        ``code.rounds``, their defaults too), whose defaults change what auto does."""
        own = super().settings | {f"{self.hard_with}.{k}": v
                                  for k, v in self._hard_strategy.settings.items()}  # fmt: skip
        if self.tools != "off":  # code tasks and arithmetic-heavy disagreement go to code
            own |= {f"code.{k}": v for k, v in self._code.settings.items()}
        return own

    def _answer_checker(self) -> Scorer | None:
        """The scorer of the probe: ``verify_probe`` named, or the verifier where it checks an
        answer against the problem itself (``checks_answer``) and calls no model; None for
        agreement alone."""
        if self.verify_probe == "off":
            return None
        if self.verify_probe != "auto":
            names = _checkers()
            if self.verify_probe not in names:  # unknown, or no exact check without a model
                raise ValueError(f"auto: verify_probe must be one of auto, off, {', '.join(names)}")
            return make_scorer(self.verify_probe, level="answer")
        try:
            scorer = resolve_scorer(self.verifier, "answer")
        except ValueError:  # a step-only scorer
            return None
        return scorer if settles_answers(scorer) else None

    def scorers_on(self, problem: Problem) -> list[Scorer]:
        """The probe's checker and the hard strategy's scorers (the easy path asks none)."""
        checker = self._checker_for(problem)
        return [checker] * (checker is not None) + self._hard_strategy.scorers_on(problem)

    def _checker_for(self, problem: Problem) -> Scorer | None:
        """The probe's checker on ``problem``: with ``verify_probe=auto``, the task's own grader
        where it needs no reference answer (countdown, sudoku: exact, free, and it passes a right
        answer that a step verifier rejects for a slip earlier in its search), else the one
        ``_answer_checker`` chose."""
        if self.verify_probe == "auto" and problem.kind in REFERENCE_FREE:
            return self._grader
        return self._probe_scorer

    def _sampling_fields(self) -> dict:
        s = self.sampling
        return {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p,
                "seed": s.seed}  # fmt: skip

    def _make_hard(self) -> StrategyBase:
        """``hard_with``, built from auto's verifier, split and sampling settings, with its own
        options (``hard_options``) over them. ``hard_options`` is then rewritten in one form
        (the strategy's field order and number format, the last of a repeated option, none at
        that strategy's own default), so that one hard strategy has one spec. One that sets what
        auto passes down (``beam.temperature``) is kept even when equal: it pins the value when
        auto's changes (``dataclasses.replace``)."""
        from ponder.think import STRATEGIES  # the registry imports this module

        cls = STRATEGIES[self.hard_with]
        given = self._given_hard_options(cls)
        if self.hard_with == "deepthink":
            v = FALLBACK if self.verifier == AUTO else self.verifier  # auto's choices rate answers
            scorer = make_scorer(v) if isinstance(v, str) else v
            passed = {"verifier": self.verifier if "answer" in scorer.levels else "judge"}
        else:
            passed = {"verifier": self.verifier, "split": self.split}
        passed |= self._sampling_fields()
        hard = cls(**(passed | given))
        try:
            plain = cls(**passed)  # what the options change
        except ValueError:  # passed down alone, auto's settings do not suit it: keep them all
            plain = None

        def kept(name: str) -> bool:  # one given that pins what auto passes down stays pinned
            return plain is None or name in passed or getattr(hard, name) != getattr(plain, name)

        self.hard_options = tuple(
            (self.hard_with, key, shown)
            for f in dataclasses.fields(cls)
            if f.name in given and kept(f.name)
            for key, shown in hard._shown(f.name)
        )
        return hard

    def _given_hard_options(self, cls: type[StrategyBase]) -> dict[str, object]:
        """``hard_options`` checked against ``cls`` (``hard_with``'s class) and converted to its
        option types; a ValueError naming the option otherwise."""
        from ponder.think import convert_option, option_types  # the registry imports this module

        types = option_types(cls)
        given: dict[str, object] = {}
        for entry in self.hard_options:
            if len(entry) != 3:
                raise ValueError("hard_options holds (strategy, option, value) triples")
            strategy, option, value = (str(part) for part in entry)
            where = f"{strategy}.{option}={value}"
            if strategy != self.hard_with:
                raise ValueError(f"{where} sets an option of {strategy}, but "
                                 f"hard_with={self.hard_with}")  # fmt: skip
            if option not in types:
                raise ValueError(f"{where}: {strategy} has no option {option!r}; it takes "
                                 f"{', '.join(types)}")  # fmt: skip
            if option in ("calculator", "seed"):  # both are auto's own, for every sample it draws
                raise ValueError(f"{strategy}.{option}: write auto's own {option}=..., which "
                                 "applies to every sample auto draws")  # fmt: skip
            if "," in value:
                raise ValueError(f"{where}: a value cannot hold a comma (it ends a spec's option)")
            given[option] = convert_option(self.hard_with, option, value, types[option])
        return given

    async def solve(self, problem: Problem, run: Run) -> Result:
        # 0. a code task goes to the tool at once
        unrouted = ""  # why a tool route was not taken, for the trace
        if problem.kind == "code" and self.tools == "auto":
            missing = await _sandbox_missing()
            if missing is None:
                why = "a code task -> code (runs its function on the prompt's examples)"
                run.emit(Phase("route", run.meter.spent, why))
                result = await self._code.solve(problem, run)
                return run.result(result.answer, result.chosen, f"auto: {why}: {result.how}")
            unrouted = f"; a code task, but the sandbox is unavailable ({missing}): routed as usual"
            run.emit(Phase("route", run.meter.spent, unrouted[2:]))

        # 1. the probe
        req = plan_batch(
            run, problem, self.sampling, self.probe, max_tokens=self.probe_tokens, logprobs=True
        )
        if req is None:
            return run.result(None, None, "budget too small for the prompt")
        cands = (await sample_batch(run, req, problem=problem)).candidates
        votes = tally(cands)
        top = leader(votes)
        agreement = (votes[top] if top else 0) / len(cands)
        confidence = _confidence(cands)
        seen = f"{int(votes[top]) if top else 0}/{len(cands)} probe samples agree" + (
            f", confidence {confidence:.2f}" if confidence is not None else ""
        )
        run.emit(voted(votes, cands))
        leading = first_with(cands, top) if top is not None else None  # the first to state it
        verified = None  # the probe samples the checker passes (None: not scored)
        checker = self._checker_for(problem)
        if checker is not None:
            passed = (await score_candidates(run, checker, problem, cands)).passed
            verified = [c for c in cands if c.index in passed]
            seen += f", {len(verified)}/{len(cands)} pass {checker.name}"
        run.emit(Phase("probe", run.meter.spent, seen))

        # 2. route
        if verified:
            best = max(verified, key=lambda c: votes[c.key])  # the first of equals
            how = f"auto: easy ({seen}) -> answered from a verified probe sample{unrouted}"
            return run.result(best.answer, best.chosen, how)
        confident = confidence is None or confidence >= self.confident
        if verified is None and top is not None and agreement >= self.easy and confident:
            how = f"auto: easy ({seen}) -> answered from the probe{unrouted}"
            return run.result(leading.answer, leading.chosen, how)
        heavy = arithmetic_heavy(problem.question)
        if heavy and self.tools == "auto" and problem.kind != "code":
            missing = await _sandbox_missing()
            if missing is None:
                return await self._tool(problem, run, cands, leading, seen, heavy)
            unrouted = f"; {heavy}, but the sandbox is unavailable ({missing}): routed as usual"
            run.emit(Phase("route", run.meter.spent, unrouted[2:]))
        if checker is not None and self.sample_on == "on":  # it rejected every probe sample
            return await self._checked_sampling(problem, run, cands, seen + unrouted, checker)
        if verified is None and agreement >= self.hard and top is not None:
            lead = f"auto: medium ({seen}{unrouted}) -> adaptive voting: "
            return await self._medium.solve(problem, run, first=cands, lead=lead)
        why = "no answer"
        if checker is not None:
            why = f"no probe sample passes {checker.name}"
        elif top is not None:
            why = f"agreement {agreement_votes(cands, top)}/{len(cands)} < {self.hard:g}"
        return await self._hard(problem, run, cands, leading, seen + unrouted, checker, why)

    async def _checked_sampling(
        self, problem: Problem, run: Run, cands: list[Candidate], seen: str, checker: Scorer
    ) -> Result:
        """No probe sample passes the checker: waves of ``wave`` more, each checked as it comes,
        until one passes or ``max_samples`` (the probe's included) are drawn — rejection sampling,
        as ``best_of_n:wave`` does, continuing from the probe; then ``hard_with``."""
        drawn, scoring = await draw_in_waves(
            run, problem, self.sampling, checker, self.max_samples, self.wave, until_pass=True,
            drawn=cands,
        )  # fmt: skip
        if scoring.passed:
            votes = tally(drawn)
            best = max((c for c in drawn if c.index in scoring.passed), key=lambda c: votes[c.key])
            how = (f"auto: medium ({seen}) -> checked sampling: sample {best.index} of "
                   f"{len(drawn)} passes {checker.name}")  # fmt: skip
            return run.result(best.answer, best.chosen, how)
        why = f"none of {len(drawn)} samples passes {checker.name}"
        top = leader(tally(drawn))
        leading = first_with(drawn, top) if top is not None else None
        return await self._hard(problem, run, drawn, leading, seen, checker, why)

    async def _tool(
        self, problem: Problem, run: Run, cands: list[Candidate], leading: Candidate | None,
        seen: str, heavy: str,
    ) -> Result:
        """The probe disagrees on an arithmetic-heavy question: the rest of the budget to code."""
        why = f"{heavy} and the probe disagrees ({seen}) -> code"
        run.emit(Phase("route", run.meter.spent, why))
        top, probe_choice = leading.answer if leading else None, (leading or cands[0]).chosen
        if run.meter.remaining is not None and run.meter.remaining < 1:
            return run.result(top, probe_choice, f"auto: {why}, but no budget left -> the probe's "
                                                  "leading answer")  # fmt: skip
        result = await self._code.solve(problem, run)
        answer, chosen, how = result.answer, result.chosen, f"auto: {why}: {result.how}"
        if answer is None and top is not None:
            answer, chosen = top, probe_choice
            how += "; so the probe's leading answer"
        return run.result(answer, chosen, how)

    async def _hard(
        self, problem: Problem, run: Run, cands: list[Candidate], leading: Candidate | None,
        seen: str, checker: Scorer | None, why: str,
    ) -> Result:
        """The rest of the budget to ``hard_with``; when it finds nothing, ``leading`` answers: the
        first of ``cands`` (the probe, and any checked waves) to state their leading answer."""
        top, probe_choice = leading.answer if leading else None, (leading or cands[0]).chosen
        lead = "the probe's" if len(cands) <= self.probe else f"the {len(cands)} samples'"
        if run.meter.remaining is not None and run.meter.remaining < 1:
            how = f"auto: hard ({seen}; {why}) but no budget left -> {lead} leading answer"
            return run.result(top, probe_choice, how)
        result = await self._hard_strategy.solve(problem, run)  # the same meter: the rest of it
        how = f"auto: hard ({seen}; {why}) -> {self.hard_with}: {result.how}"
        answer, chosen = result.answer, result.chosen
        if answer is None and top is not None:  # the search found nothing: the samples did
            answer, chosen = top, probe_choice
            how += f"; so {lead} leading answer"
        how += await _unverified(problem, run, checker, answer, chosen)
        return run.result(answer, chosen, how)

async def _unverified(
    problem: Problem, run: Run, checker: Scorer | None, answer: str | None, chosen: Chosen | None
) -> str:
    """What the probe's checker says of the hard path's final answer, when it rejects it:
    ``reflect`` whose rounds ran out, or a search that ended unverified, still answers, and the
    trace must not read as if the check had passed. (The answer stands: with nothing the checker
    passes, it is still the search's best guess.)"""
    if checker is None or answer is None or chosen is None:
        return ""
    score = await run.score(checker, problem, Attempt(chosen.text, answer))
    if score is None or score.ok:
        return ""
    run.emit(Scored(chosen.index, score.value, score.reason))
    return f"; unverified: {checker.name} rejects the answer"  # why: in the event


def _checkers() -> list[str]:
    """The scorers ``verify_probe`` can name."""
    made = [make_scorer(name) for name in SCORERS]
    return [m.name for m in made if settles_answers(m) and "answer" in m.levels]


def arithmetic_heavy(question: str) -> str:
    """Why ``question`` is arithmetic-heavy ("" when it is not): at least 6 digits in numbers
    and an operator between two of them ("487 * 596"), or at least 10 digits over 3 or more
    numbers (a word problem with large amounts)."""
    numbers = _NUMBER.findall(question)
    digits = sum(ch.isdigit() for n in numbers for ch in n)
    operators = len(_OPERATOR.findall(question))
    if digits >= 6 and operators >= 1 or digits >= 10 and len(numbers) >= 3:
        ops = f"{operators} operator" + ("s" if operators != 1 else "")
        return f"arithmetic-heavy ({digits} digits in {len(numbers)} numbers, {ops})"
    return ""


async def _sandbox_missing() -> str | None:
    """None when programs can run here; else the one-line reason."""
    try:
        await asyncio.to_thread(check_available)
    except SandboxUnavailable as e:
        return str(e)
    return None


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

"""Grading: ``check(problem, answer) -> Score``, a pure function of (problem, candidate), and the
``check`` scorer that wraps it.

The same code grades benchmarks, selects answers at test time and is the reward in RL. It dispatches
on ``problem.kind``: "math" (math-verify equivalence), "numeric" (float tolerance; a candidate that
is not a plain number, such as ``\\frac{54}{2}``, falls back to math equivalence), "exact"
(equal after ``normalize_answer``), "choice" (the same letter A-E, see ``verify.choice``),
"countdown" (the expression is checked against ``problem.meta["numbers"]`` and ``["target"]``),
"sudoku" (the completed grid is checked against ``problem.meta["puzzle"]``; any valid completion
counts), "code" (the completion's code runs against the problem's tests in the sandbox,
``code_tests``; its "answer" is the completion text), "research" (the named entity, and the
report's citation precision, ``verify.research``), "policy" (the whole reply: no leaked secret or
off-topic answer, no over-refusal, ``verify.policy``; its "answer" is the reply text).

A wrong or missing answer is a Score; a problem the graders cannot handle (unknown kind, no
reference) is our bug and raises ValueError.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.verify.choice import choice_equal
from ponder.verify.code_tests import code_meta, extract_code, run_tests
from ponder.verify.countdown import check_countdown, countdown_key
from ponder.verify.extract import extract_answer
from ponder.verify.math_equiv import math_equal
from ponder.verify.normalize import as_number, normalize_answer
from ponder.verify.numeric import numeric_equal
from ponder.verify.policy import check_policy
from ponder.verify.research import citation_reason, research_equal
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt, FreeScorer, refuse_mismatch
from ponder.verify.sudoku import check_sudoku

REFERENCE_FREE = ("countdown", "sudoku")  # kinds whose grader needs no reference answer

KINDS = ("math", "numeric", "exact", "choice", "countdown", "sudoku", "code", "research", "policy")


def check(problem: Problem, answer: str | None) -> Score:
    """Grade an already-extracted ``answer`` against ``problem`` (a code problem: the completion
    text, whose code is run against the tests; this blocks while the sandbox runs)."""
    if problem.kind not in KINDS:
        known = ", ".join(KINDS)
        raise ValueError(f"problem {problem.id}: unknown kind {problem.kind!r}; known: {known}")
    if problem.kind == "code":
        return run_tests(problem, answer)
    if problem.kind == "policy":
        return check_policy(problem, answer)
    if problem.kind == "countdown":
        numbers, target = problem.meta.get("numbers"), problem.meta.get("target")
        if numbers is None or target is None:
            raise ValueError(f"problem {problem.id}: countdown needs meta numbers and target")
    elif problem.kind == "sudoku":
        if not problem.meta.get("puzzle"):
            raise ValueError(f"problem {problem.id}: sudoku needs meta puzzle")
    elif problem.answer is None:
        raise ValueError(f"problem {problem.id} has no reference answer to grade against")
    if answer is None or not str(answer).strip():
        return Score(False, 0.0, "no answer")
    answer = str(answer)
    if problem.kind == "countdown":
        return check_countdown(answer, list(numbers), int(target))
    if problem.kind == "sudoku":
        return check_sudoku(answer, problem.meta["puzzle"])
    reference = str(problem.answer)
    if problem.kind == "math":
        same = math_equal(answer, reference)
    elif problem.kind == "numeric":
        same = (
            numeric_equal(answer, reference)
            if as_number(answer) is not None
            else math_equal(answer, reference)
        )
    elif problem.kind == "choice":
        same = choice_equal(answer, reference)
    elif problem.kind == "research":
        same = research_equal(answer, reference)
    else:
        same = normalize_answer(answer) == normalize_answer(reference)
    if same:
        return Score(True, 1.0, "matches the reference")
    return Score(False, 0.0, "differs from the reference")


def check_free(problem: Problem, answer: str | None) -> Score | None:
    """The grader's verdict where it needs no reference answer (countdown, sudoku: it checks the
    puzzle's own rules), else None: what ``ponder solve`` can say of a puzzle typed in."""
    return check(problem, answer) if problem.kind in REFERENCE_FREE else None


def verify(problem: Problem, text: str) -> Score:
    """Grade free-form model ``text``: extract its final answer, then ``check`` it (a code
    problem's "answer" is the whole text: ``check`` reads the code out of it)."""
    return check(problem, text if problem.kind in ("code", "policy") else extract_answer(text))


def read_answer(problem: Problem, text: str) -> str | None:
    """The answer ``text`` states, as strategies vote on it: the final answer, or for a code
    problem the completion's code (None when there is none)."""
    if problem.kind == "code":
        code = extract_code(text, code_meta(problem)[2]).strip()
        return code or None
    return extract_answer(text)


def answer_key(problem: Problem, answer: str | None) -> str | None:
    """The form votes compare ``answer`` in: a countdown expression up to the order of its terms
    and factors (``verify.countdown.countdown_key``: one computation written two ways is one vote;
    a countdown answer that is no such expression is compared as text, and never with one that
    is), any other answer after ``normalize_answer``. None: no answer."""
    if answer is None:
        return None
    if problem.kind != "countdown":
        return normalize_answer(answer)
    if (key := countdown_key(answer)) is not None:
        return key
    text = normalize_answer(answer)
    return None if text is None else f"text:{text}"


@dataclass
class Check(FreeScorer):
    """``check``: the task's own grader as a scorer (free; rates finished answers).

    For countdown and sudoku it needs no reference, so it is a fair exact verifier at test time
    (best-of-n with it is search with a perfect checker). For kinds graded against a reference
    answer it is an oracle at test time, and its reason says so.
    """

    name: str = field(default="check", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer"}), init=False)
    checks_answer: bool = field(default=True, init=False)

    def mismatch(self, problem: Problem) -> str | None:
        if problem.kind in (*REFERENCE_FREE, "code", "policy") or problem.answer is not None:
            return None
        return (
            f"verifier=check grades against a reference answer, and problem {problem.id} has "
            "none (a question typed in); it needs none only on countdown and sudoku puzzles, so "
            "choose a verifier that reads the text instead (judge, prob, arith, ...)"
        )

    async def score(self, problem: Problem, attempt: Attempt, model: Model | None) -> Score:
        refuse_mismatch(self, problem)
        if problem.kind == "code":  # the whole text: its code, not an extracted final answer
            s = await asyncio.to_thread(check, problem, attempt.text)
            return Score(s.ok, s.value, f"{s.reason} (oracle: the hidden tests)")
        if problem.kind == "policy":  # the whole reply is graded, with the secret it must keep
            s = check(problem, attempt.text)
            return Score(s.ok, s.value, f"{s.reason} (oracle: graded with the secret)")
        s = check(problem, attempt.answer)
        if problem.kind in REFERENCE_FREE:
            return s
        if problem.kind == "research":  # the text is the report: its citations are graded too
            cites = citation_reason(attempt.text, problem.meta.get("gold", []))
            return Score(s.ok, s.value, f"{s.reason}; {cites} (oracle: graded against the reference)")
        return Score(s.ok, s.value, f"{s.reason} (oracle: graded against the reference)")

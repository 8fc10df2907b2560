"""Grading: ``check(problem, answer) -> Verdict``, a pure function of (problem, candidate).

The same code grades benchmarks, selects answers at test time and is the reward in RL. It dispatches
on ``problem.kind``: "math" (math-verify equivalence), "numeric" (float tolerance; a candidate that
is not a plain number, such as ``\\frac{54}{2}``, falls back to math equivalence), "exact"
(equal after ``normalize_answer``), "countdown" (the expression is checked against
``problem.meta["numbers"]`` and ``["target"]``), "sudoku" (the completed grid is checked against
``problem.meta["puzzle"]``; any valid completion counts).

A wrong or missing answer is a Verdict; a problem the graders cannot handle (unknown kind, no
reference) is our bug and raises ValueError.
"""

from __future__ import annotations

from ponder.problems.base import Problem
from ponder.verify.countdown import check_countdown
from ponder.verify.extract import extract_answer
from ponder.verify.math_equiv import math_equal
from ponder.verify.normalize import as_number, normalize_answer
from ponder.verify.numeric import numeric_equal
from ponder.verify.sudoku import check_sudoku
from ponder.verify.verdict import Verdict

KINDS = ("math", "numeric", "exact", "countdown", "sudoku")


def check(problem: Problem, answer: str | None) -> Verdict:
    """Grade an already-extracted ``answer`` against ``problem``."""
    if problem.kind not in KINDS:
        known = ", ".join(KINDS)
        raise ValueError(f"problem {problem.id}: unknown kind {problem.kind!r}; known: {known}")
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
        return Verdict(False, 0.0, "no answer")
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
    else:
        same = normalize_answer(answer) == normalize_answer(reference)
    if same:
        return Verdict(True, 1.0, "matches the reference")
    return Verdict(False, 0.0, "differs from the reference")


def verify(problem: Problem, text: str) -> Verdict:
    """Grade free-form model ``text``: extract its final answer, then ``check`` it."""
    return check(problem, extract_answer(text))


__all__ = [
    "Verdict", "check", "check_countdown", "check_sudoku", "math_equal", "numeric_equal", "verify"
]

"""``arith``: an exact checker of every equation ``a op b [op c ...] = d`` written in a text.

A calculator-style process verifier that needs no model (integers and decimals, + - * / × ÷ and
parentheses, evaluated exactly by ``verify.exact``): 1.0 when every equation holds (or there is
none), 0.0 when one does not. It rates a step (the equations in the step) or a finished solution
(every equation in it). It is what makes search meaningful on the lab's arithmetic models, whose
lines are ``7+5+0=12 > 2``. It checks arithmetic only: a digit copied wrongly from the question,
or a final answer that differs from the last line, passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.verify.exact import value_or_none
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt, FreeScorer

_NUM = r"\d+(?:\.\d+)?"
_TERM = rf"[(\s]*-?{_NUM}[)\s]*"
_EQUATION = re.compile(
    rf"(?<![\w.])({_TERM}(?:[-+*/×÷]{_TERM})+)=\s*(-?{_NUM}(?:/\d+)?)(?!\d)(?!\.\d)"
)


def _equal(value: Fraction, written: str) -> bool:
    """Exact for integers and fractions; a decimal is right when it is ``value`` rounded to as
    many places as it has."""
    if "." in written:
        places = len(written.split(".")[1])
        return abs(value - Fraction(written)) <= Fraction(1, 2 * 10**places)
    return value == Fraction(written)


def check_equations(text: str) -> tuple[int, str | None]:
    """(equations checked, the first wrong one described, or None)."""
    checked = 0
    for m in _EQUATION.finditer(text):
        lhs, rhs = m.group(1).strip(), m.group(2)
        value = value_or_none(lhs)
        if value is None:
            continue
        checked += 1
        if not _equal(value, rhs):
            shown = str(value) if value.denominator == 1 else f"{float(value):g}"
            return checked, f"{lhs}={rhs} is wrong ({lhs} = {shown})"
    return checked, None


@dataclass
class Arith(FreeScorer):
    name: str = field(default="arith", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer", "step"}), init=False)

    async def score(self, problem: Problem, attempt: Attempt, model: Model) -> Score:
        checked, wrong = check_equations(attempt.text if attempt.step is None else attempt.step)
        if wrong:
            return Score(False, 0.0, wrong)
        if not checked:
            return Score(True, 1.0, "no equation to check")
        return Score(True, 1.0, f"{checked} equation{'s' if checked > 1 else ''} hold")

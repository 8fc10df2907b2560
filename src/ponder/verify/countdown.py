"""Grade a countdown answer: an arithmetic expression over the given numbers that hits the target.

The expression is parsed and evaluated exactly by ``verify.exact``: only whole numbers, + - * /,
parentheses and unary minus are accepted (no names, calls, ``**`` or ``//``), so no model output
is ever executed. Each given number may be used at most once (a multiset check).
Departure from the TV game: intermediate fractions are allowed, only the final value must equal
the target. Common spellings are accepted: ``×``/``\\times``/``\\cdot``, ``÷``/``\\div``,
``−``, a trailing "= 525", and surrounding ``$``.
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

from ponder.verify.exact import NotArithmetic, evaluate, plain
from ponder.verify.score import Score

MAX_CHARS = 300

_STATED_VALUE = re.compile(r"\s*=\s*[-+]?\d+(?:\.\d+)?\s*$")
_LEADING_VALUE = re.compile(r"^\s*[-+]?\d+(?:\.\d+)?\s*=\s*")


def check_countdown(expression: str, numbers: list[int], target: int) -> Score:
    text = _clean(expression)
    if not text:
        return Score(False, 0.0, "empty expression")
    if len(text) > MAX_CHARS:
        return Score(False, 0.0, f"expression longer than {MAX_CHARS} characters")
    used: list[int] = []
    try:
        value: Fraction = evaluate(text, integers_only=True, on_number=used.append)
    except NotArithmetic as e:
        return Score(False, 0.0, str(e))
    problem = _overused(Counter(used), Counter(numbers))
    if problem:
        return Score(False, 0.0, problem)
    if value != target:
        shown = str(value.numerator) if value.denominator == 1 else str(value)
        return Score(False, 0.0, f"value {shown}, not {target}")
    return Score(True, 1.0, f"equals {target}")


def _clean(expression: str | None) -> str:
    s = plain(str(expression or "").strip().strip("$").strip())
    s = s.replace("{", "(").replace("}", ")")  # \left{ ... stray LaTeX grouping
    s = _STATED_VALUE.sub("", s)  # "(25 - 4) * 25 = 525": the value is ours to compute
    return _LEADING_VALUE.sub("", s).strip()


def _overused(used: Counter, given: Counter) -> str | None:
    for n, times in sorted(used.items()):
        if n not in given:
            return f"uses {n}, which is not among the numbers given"
        if times > given[n]:
            spoken = "twice" if times == 2 else f"{times} times"
            extra = "" if given[n] == 1 else f" (given {given[n]} times)"
            return f"uses {n} {spoken}{extra}"
    return None

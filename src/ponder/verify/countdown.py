"""Grade a countdown answer: an arithmetic expression over the given numbers that hits the target.

The expression is parsed and evaluated exactly by ``verify.exact``: only whole numbers, + - * /,
parentheses and unary minus are accepted (no names, calls, ``**`` or ``//``), so no model output
is ever executed. Each given number may be used at most once (a multiset check).
Departure from the TV game: intermediate fractions are allowed, only the final value must equal
the target. Common spellings are accepted: ``×``/``\\times``/``\\cdot``, ``÷``/``\\div``,
``−``, a trailing "= 525", and surrounding ``$``.

``countdown_key`` is what votes compare: two expressions that are the same computation, up to the
order of the terms of a sum (``-`` read as adding a negated term) and of the factors of a product
(``/`` as multiplying by a reciprocal), are one answer: ``(25+7)+3``, ``3+(7+25)`` and
``25-(-7-3)`` have one key. Nothing is evaluated and nothing distributed, so two keys are equal
only when the expressions use the same numbers the same number of times (``(a+b)*c`` and
``a*c+b*c`` differ: the second uses c twice).
"""

from __future__ import annotations

import ast
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


def countdown_key(expression: str) -> str | None:
    """The expression's canonical form (see the module docstring), or None when the grader would
    not read it as arithmetic over whole numbers (the caller compares such answers as text)."""
    text = _clean(expression)
    if not text or len(text) > MAX_CHARS:
        return None
    try:
        evaluate(text, integers_only=True)  # the grader's rules: whole-number literals, + - * /
        return _canonical(ast.parse(plain(text), mode="eval").body)
    except (NotArithmetic, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _canonical(node: ast.AST) -> str:
    """``node`` written back with its terms and factors sorted, as a readable expression:
    ``3+(7+25)`` -> ``25+3+7``, ``8*(50-1)`` -> ``(50-1)*8``."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return str(node.value)
    if isinstance(node, ast.UnaryOp) or (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub)
    ):
        terms = sorted(_signed(node, "+", (ast.Add, ast.Sub)))  # "+x" sorts before "-x"
        return "".join(terms).removeprefix("+")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        # the leftmost factor is never a divisor, so the first sorted one carries "*"
        return "".join(sorted(_signed(node, "*", (ast.Mult, ast.Div)))).removeprefix("*")
    raise ValueError("not plain arithmetic")


def _signed(node: ast.AST, sign: str, ops: tuple[type, type]) -> list[str]:
    """The terms of a sum ("+x", "-x") or the factors of a product ("*x", "/x") that ``node``
    flattens to, each in canonical form (a sum inside a product in parentheses)."""
    flip = {"+": "-", "-": "+", "*": "/", "/": "*"}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ops):
        second = sign if isinstance(node.op, ops[0]) else flip[sign]
        return _signed(node.left, sign, ops) + _signed(node.right, second, ops)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise ValueError("not plain arithmetic")
        if ops[0] is ast.Add:
            return _signed(node.operand, flip[sign] if isinstance(node.op, ast.USub) else sign, ops)
    inner = _canonical(node)
    if ops[0] is ast.Mult and not inner.isdigit():  # a sum (a product was flattened above)
        inner = f"({inner})"
    return [sign + inner]

"""Grade a countdown answer: an arithmetic expression over the given numbers that hits the target.

The expression is parsed with ``ast`` and only numbers, + - * /, parentheses and unary minus are
accepted (no names, calls, ``**`` or ``//``), so no model output is ever executed. Each given number
may be used at most once (a multiset check); evaluation is exact with ``fractions.Fraction``.
Departure from the TV game: intermediate fractions are allowed, only the final value must equal
the target. Common spellings are accepted: ``×``/``\\times``/``\\cdot``, ``÷``/``\\div``,
``−``, a trailing "= 525", and surrounding ``$``.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction

from ponder.verify.verdict import Verdict

MAX_CHARS = 300

_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_SYMBOLS = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.BitXor: "^"}  # for the reason
_SPELLINGS = [("\\times", "*"), ("\\cdot", "*"), ("×", "*"), ("·", "*"), ("\\div", "/"),
              ("÷", "/"), ("−", "-"), ("\\left", ""), ("\\right", "")]
_STATED_VALUE = re.compile(r"\s*=\s*[-+]?\d+(?:\.\d+)?\s*$")
_LEADING_VALUE = re.compile(r"^\s*[-+]?\d+(?:\.\d+)?\s*=\s*")


class _Rejected(Exception):
    """The expression breaks a rule; the message is the verdict's reason."""


def check_countdown(expression: str, numbers: list[int], target: int) -> Verdict:
    text = _clean(expression)
    if not text:
        return Verdict(False, 0.0, "empty expression")
    if len(text) > MAX_CHARS:
        return Verdict(False, 0.0, f"expression longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Verdict(False, 0.0, "not an arithmetic expression")
    used: list[int] = []
    try:
        value = _evaluate(tree.body, text, used)
    except _Rejected as e:
        return Verdict(False, 0.0, str(e))
    problem = _overused(Counter(used), Counter(numbers))
    if problem:
        return Verdict(False, 0.0, problem)
    if value != target:
        shown = str(value.numerator) if value.denominator == 1 else str(value)
        return Verdict(False, 0.0, f"value {shown}, not {target}")
    return Verdict(True, 1.0, f"equals {target}")


def _clean(expression: str | None) -> str:
    s = str(expression or "").strip().strip("$").strip()
    for old, new in _SPELLINGS:
        s = s.replace(old, new)
    s = s.replace("{", "(").replace("}", ")")  # \left{ ... stray LaTeX grouping
    s = _STATED_VALUE.sub("", s)  # "(25 - 4) * 25 = 525": the value is ours to compute
    return _LEADING_VALUE.sub("", s).strip()


def _evaluate(node: ast.AST, text: str, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant):
        source = ast.get_source_segment(text, node) or ""
        # Only plain decimal integers: not 2.5, True, 0x19 (=25) or 2_5.
        if type(node.value) is not int or not source.isdigit():
            raise _Rejected(f"{source or node.value!r} is not one of the whole numbers given")
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPS:
            symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise _Rejected(f"operator {symbol} is not allowed; use + - * /")
        left, right = _evaluate(node.left, text, used), _evaluate(node.right, text, used)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise _Rejected("divides by zero")
        return left / right
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, text, used)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        raise _Rejected("function calls are not allowed")
    if isinstance(node, ast.Name):
        raise _Rejected(f"names are not allowed ({node.id!r})")
    raise _Rejected(f"not an arithmetic expression ({type(node).__name__.lower()})")


def _overused(used: Counter, given: Counter) -> str | None:
    for n, times in sorted(used.items()):
        if n not in given:
            return f"uses {n}, which is not among the numbers given"
        if times > given[n]:
            spoken = "twice" if times == 2 else f"{times} times"
            extra = "" if given[n] == 1 else f" (given {given[n]} times)"
            return f"uses {n} {spoken}{extra}"
    return None

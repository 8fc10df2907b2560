"""Exact arithmetic on model-written expressions: parsed with ``ast``, evaluated with Fractions.

The one evaluator that the countdown grader, the ``arith`` step checker and the lab's trace tests
share. Nothing is ever executed: only numbers, ``+ - * /``, parentheses and unary minus are
accepted; anything else (names, calls, ``**``, ``//``) is rejected with a reason. Common
spellings (``×``, ``÷``, ``\\times``, ``\\div``, ``−``) are read as the operators they stand for.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from fractions import Fraction

_OPS = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
        ast.Div: Fraction.__truediv__}  # fmt: skip
_SYMBOLS = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.BitXor: "^"}  # for the reason
SPELLINGS = (("\\times", "*"), ("\\cdot", "*"), ("×", "*"), ("·", "*"), ("\\div", "/"),
             ("÷", "/"), ("−", "-"), ("\\left", ""), ("\\right", ""))  # fmt: skip


class NotArithmetic(ValueError):
    """The text is not plain arithmetic; the message says why (for a Score's reason)."""


def plain(text: str) -> str:
    """``text`` with the spellings above replaced by Python's operators."""
    for old, new in SPELLINGS:
        text = text.replace(old, new)
    return text.strip()


def evaluate(
    text: str, *, integers_only: bool = False, on_number: Callable[[int], None] | None = None
) -> Fraction:
    """The exact value of ``text``; raises NotArithmetic.

    ``integers_only``: every literal must be a plain decimal integer (not ``2.5``, ``0x19``,
    ``2_5`` or ``True``); ``on_number(n)`` is called for each literal, left to right (the
    countdown grader counts which numbers were used).
    """
    try:
        tree = ast.parse(plain(text), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise NotArithmetic("not an arithmetic expression") from None
    source = plain(text)
    try:
        return _value(tree.body, source, integers_only, on_number)
    except RecursionError:
        raise NotArithmetic("expression nested too deeply") from None


def value_or_none(text: str) -> Fraction | None:
    """``evaluate(text)``, or None when it is not plain arithmetic (or divides by zero)."""
    try:
        return evaluate(text)
    except NotArithmetic:
        return None


def _value(node: ast.AST, source: str, integers_only: bool, on_number) -> Fraction:
    if isinstance(node, ast.Constant):
        literal = ast.get_source_segment(source, node) or ""
        if type(node.value) is int and literal.isdigit():
            if on_number is not None:
                on_number(node.value)
            return Fraction(node.value)
        if integers_only or type(node.value) not in (int, float):
            raise NotArithmetic(f"{literal or node.value!r} is not one of the whole numbers given")
        return Fraction(literal or str(node.value))
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPS:
            symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise NotArithmetic(f"operator {symbol} is not allowed; use + - * /")
        left = _value(node.left, source, integers_only, on_number)
        right = _value(node.right, source, integers_only, on_number)
        if isinstance(node.op, ast.Div) and right == 0:
            raise NotArithmetic("divides by zero")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand, source, integers_only, on_number)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        raise NotArithmetic("function calls are not allowed")
    if isinstance(node, ast.Name):
        raise NotArithmetic(f"names are not allowed ({node.id!r})")
    raise NotArithmetic(f"not an arithmetic expression ({type(node).__name__.lower()})")

"""Canonical forms of answers, so that votes for "1,000", "1000.0" and "$1000$" are one vote.

Cheap string/number canonicalisation only; deciding that two different-looking answers are
mathematically equal is ``verify.math``'s job (math-verify).
"""

from __future__ import annotations

import re
from fractions import Fraction

_LATEX_NOISE = re.compile(r"\\[,!;: ]|\\left|\\right|\\displaystyle")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}")
_THOUSANDS = re.compile(r"(?<![\d,])(\d{1,3}(?:,\d{3})+)(?![\d,])")


def as_number(ans: str) -> float | None:
    """The answer as a number when it is plainly one ("1,234", "-3.50", "7/8", "\\frac{7}{8}")."""
    s = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), ans.strip().strip("$"))
    s = _FRAC.sub(r"\1/\2", s.replace(" ", ""))
    s = s.rstrip("%").lstrip("\\$")  # a percent sign or a dollar sign carries no number
    try:
        return float(Fraction(s))
    except (ValueError, ZeroDivisionError):
        return None


def normalize_answer(ans: str | None) -> str | None:
    if ans is None:
        return None
    s = ans.strip().strip(".").strip("$").strip()
    s = _TEXT.sub(r"\1", s)
    s = _LATEX_NOISE.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    num = as_number(s)
    if num is not None:
        return str(int(num)) if num.is_integer() and abs(num) < 1e15 else repr(round(num, 9))
    return re.sub(r"\s+", "", s).lower() or None

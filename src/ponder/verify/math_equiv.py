"""Mathematical equivalence of two answers through HuggingFace's math-verify (LaTeX -> SymPy).

Order: a cheap path first (equal after ``normalize_answer``), then ``math_verify.parse`` of both
strings wrapped in ``$...$`` and ``math_verify.verify(gold, candidate)`` (not symmetric: the
reference is the gold side).

Threads. math-verify bounds its work with ``signal.alarm``, which only works in the main thread;
elsewhere its calls raise ValueError. So we pass its timeouts only in the main thread and disable
them (``parsing_timeout=None, timeout_seconds=None``) in worker threads. Without a timeout some
inputs run for minutes, so before parsing we refuse what we measured to be slow, in every
thread alike: strings over 400 characters, brackets nested deeper than 8 (parsing is exponential
in the depth: depth 10 ~1 s, 80 ~27 s), and after parsing any numeric subexpression with more than
100,000 digits (``10^{10^{10}}`` or ``(10^{10})!`` never finish). Refused inputs compare unequal
unless the cheap path already matched them.

Behaviours of math-verify 0.9 worth knowing (pinned in tests/test_verify.py): units after a number
are dropped ("5 cm", "5\\text{ cm}", "10 inches" equal 5 / 10; "18 dollars" and "5 cm^2" do not
parse as numbers); "50\\%" equals both 50 and 0.5; "90^\\circ" equals 90 but not \\frac{\\pi}{2};
"x=5" equals 5; "1,-2" is a set, equal to "-2, 1"; "(1,2)" is an open interval; plain "pi" is p*i
(only "\\pi" is pi); floats match to 6 decimals ("3.14159" is not \\pi, "3.141593" is).
"""

from __future__ import annotations

import logging
import math
import re
import threading

from ponder.verify.normalize import normalize_answer

MAX_CHARS = 400
MAX_BRACKET_DEPTH = 8
MAX_DIGITS = 100_000  # numbers with more digits are refused
MAIN_THREAD_TIMEOUT_S = 5  # math-verify's own default, kept where signals work

# A comma not followed by exactly three digits separates items ("1,2"), while normalize_answer reads
# every comma as a thousands separator ("1,2" -> 12), so the cheap path is skipped for such answers.
_LIST_COMMA = re.compile(r",(?!\d{3}(?!\d))")


def math_equal(candidate: str, reference: str) -> bool:
    """True when ``candidate`` is mathematically equal to ``reference``; never raises."""
    candidate, reference = _strip(candidate), _strip(reference)
    if not candidate or not reference:
        return False
    if not (_LIST_COMMA.search(candidate) or _LIST_COMMA.search(reference)):
        if normalize_answer(candidate) == normalize_answer(reference):
            return True
    if not (_parsable(candidate) and _parsable(reference)):
        return False
    try:
        return _math_verify(candidate, reference)
    except Exception:  # math-verify or sympy failing on odd input is "not equal", not a crash
        return False


def _strip(ans: str) -> str:
    return str(ans).strip().strip("$").strip() if ans is not None else ""


def _parsable(s: str) -> bool:
    if len(s) > MAX_CHARS:
        return False
    depth = deepest = 0
    for ch in s:
        if ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest <= MAX_BRACKET_DEPTH


def _math_verify(candidate: str, reference: str) -> bool:
    from math_verify import parse, verify  # lazy: sympy takes a second to import

    _quiet_timeout_warning()
    in_main = threading.current_thread() is threading.main_thread()
    timeout = MAIN_THREAD_TIMEOUT_S if in_main else None
    gold = parse(f"${reference}$", parsing_timeout=timeout)
    target = parse(f"${candidate}$", parsing_timeout=timeout)
    if not gold or not target or _too_big(gold) or _too_big(target):
        return False
    return bool(verify(gold, target, timeout_seconds=timeout))


def _too_big(parsed: list) -> bool:
    return any(_log10_bound(x) > MAX_DIGITS for x in parsed if not isinstance(x, str))


def _log10_bound(e) -> float:
    """An upper bound on log10 of the size of any number inside ``e`` (so, roughly, its digit
    count); symbols count as small. Only powers, factorials and binomials can blow up."""
    import sympy

    if isinstance(e, sympy.MatrixBase):
        return max((_log10_bound(x) for x in e), default=0.0)
    if not isinstance(e, sympy.Basic):
        return 0.0
    if e.is_Integer:
        return int(e).bit_length() * math.log10(2)
    if e.is_Rational:
        return max(int(e.p).bit_length(), int(e.q).bit_length()) * math.log10(2)
    if e.is_Float:
        return max(0.0, float(sympy.log(abs(e), 10))) if e != 0 else 0.0
    args = [_log10_bound(a) for a in e.args]
    if isinstance(e, sympy.Pow):
        base, exp = args  # |value| <= |base| ** 10**exp
        return math.inf if exp > 7 else base * 10**exp
    if isinstance(e, (sympy.factorial, sympy.factorial2, sympy.binomial, sympy.gamma)):
        n = args[0]  # n! <= n**n
        return math.inf if n > 7 else 10**n * max(n, 1.0)
    if isinstance(e, sympy.Mul):
        return sum(args)
    return max(args, default=0.0) + 1  # a sum at most doubles; the +1 is generous


class _DropTimeoutDisabled(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


_quieted = False


def _quiet_timeout_warning() -> None:
    """math-verify warns once that we disabled its timeout; we did so on purpose (see the module
    docstring), so that warning is dropped. Its other warnings are left alone."""
    global _quieted
    if not _quieted:
        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).addFilter(_DropTimeoutDisabled())
        _quieted = True

"""Grading: math equivalence (math-verify), numeric tolerance, countdown expressions, dispatch."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ponder.problems.base import Problem
from ponder.verify import SCORERS, Attempt, Score, check, make_scorer, math_equal, verify
from ponder.verify.countdown import check_countdown
from ponder.verify.numeric import numeric_equal

# (candidate, reference, kind, expected). Several rows pin math-verify behaviours that are choices,
# not laws: units are dropped, percentages are lenient, degrees are plain numbers.
CASES = [
    # fractions and decimals
    (r"\frac{1}{2}", "0.5", "math", True),
    ("1/2", r"\frac{1}{2}", "math", True),
    (r"\dfrac{1}{2}", "1/2", "math", True),
    (r"\tfrac34", "0.75", "math", True),
    (r"\frac34", "3/4", "math", True),
    ("14/3", r"\frac{14}{3}", "math", True),
    ("4.666667", r"\frac{14}{3}", "math", True),  # math-verify rounds floats to 6 places
    ("4.6667", r"\frac{14}{3}", "math", False),
    ("0.33", "1/3", "math", False),
    (r"-\frac{1}{2}", "-0.5", "math", True),
    (r"\frac{-1}{2}", "-1/2", "math", True),
    # real non-equivalences
    ("0.5", "0.05", "math", False),
    ("-3", "3", "math", False),
    ("x+1", "x-1", "math", False),
    ("q-p", "p-q", "math", False),
    ("12", "1,2", "math", False),  # "1,2" is a list, not twelve
    # algebra
    ("1+x", "x+1", "math", True),
    ("x^2+2x+1", "(x+1)^2", "math", True),
    (r"\pi r^2", r"r^2\pi", "math", True),
    ("x=5", "5", "math", True),
    ("5", "x=5", "math", True),
    # LaTeX vs plain, separators
    ("1,000", "1000", "math", True),
    ("1{,}000", "1000", "math", True),
    ("1,000,000", "1000000", "math", True),
    (r"\$18", "18", "math", True),
    ("2^{10}", "1024", "math", True),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi/2)", "math", True),
    # percentages: lenient both ways
    (r"50\%", "50", "math", True),
    ("50%", "0.5", "math", True),
    ("0.05", r"5\%", "math", True),
    ("0.5", "50", "math", False),
    # tuples, intervals, sets
    ("(1,2)", "(2,1)", "math", False),
    ("(1, 2)", r"\left( 1, 2 \right)", "math", True),
    ("[1,2)", "[1, 2)", "math", True),
    ("[1,2]", "(1,2)", "math", False),
    (r"\{1,2\}", r"\{2,1\}", "math", True),
    ("1,-2", "-2, 1", "math", True),  # a list of solutions is a set: order does not matter
    (r"(-\infty, 3]", r"x \le 3", "math", True),
    # units are dropped after a number
    ("5 cm", "5", "math", True),
    (r"5\text{ cm}", "5", "math", True),
    (r"10 \text{ inches}", "10", "math", True),
    ("18 dollars", "18", "math", False),  # not a unit math-verify knows
    ("5 cm^2", "5", "math", False),
    # roots, pi, degrees
    (r"2\sqrt{3}", r"\sqrt{12}", "math", True),
    (r"\sqrt 2", r"\sqrt{2}", "math", True),
    (r"\sqrt{2}/2", r"\frac{\sqrt{2}}{2}", "math", True),
    ("3.141593", r"\pi", "math", True),
    ("3.14159", r"\pi", "math", False),
    (r"2\pi", "6.283185", "math", True),
    ("pi", r"\pi", "math", False),  # plain "pi" parses as p*i
    (r"90^\circ", "90", "math", True),
    ("90", r"90^\circ", "math", True),
    (r"\frac{\pi}{2}", r"90^\circ", "math", False),
    # words, complex numbers, matrices
    (r"\text{Evelyn}", "Evelyn", "math", True),
    (r"\text{Bob}", r"\text{Evelyn}", "math", False),
    ("6-5i", "6 - 5i", "math", True),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", "math", True),
    # garbage and pathological inputs are simply unequal, and fast
    ("garbage}{", "5", "math", False),
    (r"10^{10^{10}}", "5", "math", False),
    ("(" * 30 + "1" + ")" * 30, "1", "math", False),
    # numeric (AMC answers are floats)
    ("27", "27.0", "numeric", True),
    ("27.0000001", "27.0", "numeric", True),
    ("27.001", "27.0", "numeric", False),
    ("-1", "-1.0", "numeric", True),
    ("3,159", "3159.0", "numeric", True),
    (r"\frac{54}{2}", "27.0", "numeric", True),
    (r"\sqrt{729}", "27.0", "numeric", True),  # not a plain number: falls back to math-verify
    ("28", "27.0", "numeric", False),
    # exact (arith answers)
    ("1598", "1598", "exact", True),
    ("1,598", "1598", "exact", True),
    ("1598.0", "1598", "exact", True),
    ("1589", "1598", "exact", False),
]


@pytest.mark.parametrize(("candidate", "reference", "kind", "expected"), CASES)
def test_check_table(candidate, reference, kind, expected):
    verdict = check(Problem("t", "q", reference, kind), candidate)
    assert verdict.ok is expected, (candidate, reference, verdict)
    assert verdict.value == (1.0 if expected else 0.0)


def test_table_is_big_enough():
    assert len(CASES) >= 40


def test_pathological_inputs_end():
    """A guard against a hang (evaluating 10^(10^10) runs for ever), not a speed test: the bound
    is generous for a loaded machine, and the lazy imports of the first call come before the clock."""
    assert math_equal("1", "1") is True
    start = time.perf_counter()
    for candidate in [r"10^{10^{10}}", r"(10^{10})!", r"9^{9^{9^9}}", "(" * 80 + "1" + ")" * 80, "x" * 5000]:
        assert math_equal(candidate, "5") is False
    assert time.perf_counter() - start < 30


def test_math_equal_off_the_main_thread():
    # math-verify's own timeouts use signal.alarm and raise ValueError outside the main thread.
    results = {}

    def work():
        results["half"] = math_equal(r"\frac{1}{2}", "0.5")
        results["wrong"] = math_equal("0.5", "0.05")
        results["tower"] = math_equal(r"10^{10^{10}}", "5")

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=30)
    assert results == {"half": True, "wrong": False, "tower": False}


def test_math_equal_from_asyncio_to_thread():
    async def main():
        return await asyncio.gather(
            *(asyncio.to_thread(math_equal, f"{n}/2", str(n / 2)) for n in range(1, 6))
        )

    assert asyncio.run(main()) == [True] * 5


def test_numeric_equal_tolerances():
    assert numeric_equal("1000000.5", "1000000", rel_tol=1e-6)
    assert not numeric_equal("1000001.5", "1000000", rel_tol=1e-6)
    assert numeric_equal("0", "1e-12")  # within abs_tol: zero is not compared relatively
    assert not numeric_equal("0", "1e-6")
    assert not numeric_equal("abc", "1")
    assert not numeric_equal("1", "")


# (expression, numbers, target, correct, reason fragment)
COUNTDOWN = [
    ("(25 - 4) * 25", [4, 25, 25, 7], 525, True, "equals 525"),
    ("(50 - 25) * 21", [21, 25, 50], 525, True, "equals"),
    ("50 * 7 + 25 * 7", [7, 7, 25, 50], 525, True, "equals"),
    ("(3 + 7) * 50 + 25 = 525", [3, 7, 25, 50], 525, True, "equals"),
    ("$(3 + 7) \\times 50 + 25$", [3, 7, 25, 50], 525, True, "equals"),
    ("(3 + 7) × 50 + 25", [3, 7, 25, 50], 525, True, "equals"),
    ("50 / 2 * 21", [2, 21, 50], 525, True, "equals"),
    ("-3 + 7", [3, 7], 4, True, "equals"),
    ("(3 + 7) * 50 + 20", [3, 7, 20, 50], 525, False, "value 520, not 525"),
    ("7 * 7 + 3", [3, 7, 25, 50], 52, False, "uses 7 twice"),
    ("8 * 3", [3, 7], 24, False, "uses 8, which is not among"),
    ("50 / 3", [3, 50], 525, False, "value 50/3"),
    ("50 / (7 - 7)", [7, 7, 50], 1, False, "divides by zero"),
    ("2**3", [2, 3], 8, False, "**"),
    ("2^3", [2, 3], 8, False, "^"),
    ("7 // 2", [2, 7], 3, False, "//"),
    ("__import__('os').system('true')", [1], 1, False, "not allowed"),
    ("abs(-7)", [7], 7, False, "function calls"),
    ("x + 7", [7], 7, False, "names are not allowed"),
    ("0x19 + 1", [25, 1], 26, False, "not one of the whole numbers"),
    ("2.5 * 2", [2, 5], 5, False, "not one of the whole numbers"),
    ("[3, 7]", [3, 7], 10, False, "not an arithmetic expression"),
    ("3 +", [3], 3, False, "not an arithmetic expression"),
    ("", [3], 3, False, "empty"),
]


@pytest.mark.parametrize(("expression", "numbers", "target", "correct", "reason"), COUNTDOWN)
def test_check_countdown(expression, numbers, target, correct, reason):
    verdict = check_countdown(expression, numbers, target)
    assert verdict.ok is correct, verdict
    assert reason in verdict.reason


def test_check_dispatches_on_kind():
    countdown = Problem("c", "q", "(3 + 7) * 50 + 25", "countdown", {"numbers": [3, 7, 25, 50], "target": 525})
    assert check(countdown, "50 * (3 + 7) + 25") == Score(True, 1.0, "equals 525")
    assert check(countdown, "7 * 7").reason == "uses 7 twice"
    assert check(Problem("m", "q", r"\frac{1}{2}", "math"), "0.5").ok
    assert not check(Problem("e", "q", "1/2", "exact"), "x").ok
    assert check(Problem("n", "q", "27.0", "numeric"), "27").ok


def test_no_answer():
    problem = Problem("m", "q", "5", "math")
    assert check(problem, None) == Score(False, 0.0, "no answer")
    assert check(problem, "   ") == Score(False, 0.0, "no answer")
    assert verify(problem, "") == Score(False, 0.0, "no answer")


def test_verify_extracts_then_checks():
    problem = Problem("m", "q", r"\frac{14}{3}", "math")
    assert verify(problem, r"So the answer is $\boxed{\dfrac{14}{3}}$.").ok
    assert not verify(problem, r"Thus \boxed{5}.").ok
    gsm = Problem("g", "q", "18", "math")
    assert verify(gsm, "She makes 9 * 2 = $18.\n#### 18").ok


def test_our_mistakes_raise():
    with pytest.raises(ValueError, match="unknown kind"):
        check(Problem("x", "q", "1", "essay"), "1")
    with pytest.raises(ValueError, match="no reference"):
        check(Problem("x", "q", None, "math"), "1")
    with pytest.raises(ValueError, match="numbers and target"):
        check(Problem("x", "q", None, "countdown"), "1 + 2")


def test_only_scorers_that_check_an_answer_against_the_problem_say_so():
    """``checks_answer`` lets auto answer from a probe sample the verifier passes: it must hold
    only where a pass settles the answer (numbers and target, examples, reference)."""
    says = {name: make_scorer(name).checks_answer for name in SCORERS}
    assert says == {"check": True, "countdown": True, "tests": True, "judge": False,
                    "confidence": False, "prob": False, "arith": False}  # fmt: skip
    # arith passes an answer with no wrong equation, and one with no equation at all
    arith = make_scorer("arith", level="answer")
    problem = Problem(id="a", question="What is 487 * 596?", answer="290252", kind="numeric")
    assert asyncio.run(arith.score(problem, Attempt("\\boxed{290000}", "290000"), None)).ok

"""Verifiers: one scoring protocol for answers and for steps (``scoring.Scorer`` -> ``Score``).

- ``check(problem, answer)`` / ``verify(problem, text)``: the task's grader (``grade``), used by
  ``ponder bench``, as the RL reward, and as the ``check`` scorer;
- ``make_scorer(name)``: every scorer by name (``scorers``), for test-time selection and search;
- ``read_answer(problem, text)``: the answer a sample states (the code, for a code problem).
"""

from __future__ import annotations

from ponder.verify.countdown import check_countdown
from ponder.verify.grade import KINDS, Check, check, read_answer, verify
from ponder.verify.math_equiv import math_equal
from ponder.verify.numeric import numeric_equal
from ponder.verify.score import PASS, Score
from ponder.verify.scorers import NAMES, SCORERS, make_scorer, resolve_scorer
from ponder.verify.scoring import Attempt, Scorer
from ponder.verify.sudoku import check_sudoku

__all__ = [
    "KINDS", "NAMES", "PASS", "SCORERS", "Attempt", "Check", "Score", "Scorer", "check",
    "check_countdown", "check_sudoku", "make_scorer", "math_equal", "numeric_equal",
    "read_answer", "resolve_scorer", "verify",
]  # fmt: skip

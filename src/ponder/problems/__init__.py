"""Problem sets: real benchmarks (Hub or local JSONL) and seeded generators, behind one function.

``load_problems("math500", data="math500.jsonl", level=5, limit=50)`` validates everything it is
given before returning (unknown task, unreadable file, missing fields, filters a set does not have,
a non-positive limit): a mistake surfaces as a one-line ``ProblemSetError`` before any model work.
"""

from __future__ import annotations

import difflib
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.errors import ProblemSetError
from ponder.problems.policy import PolicySet
from ponder.problems.real import REAL_SETS, RealSet
from ponder.problems.research import ResearchSet
from ponder.problems.synthetic import GENERATORS, Generator

# name -> set; each has .summary, .kind and .load(data, limit, seed, level, subject, options).
TASKS: dict[str, RealSet | Generator | ResearchSet | PolicySet] = {
    **REAL_SETS, **GENERATORS, "research": ResearchSet(), "policy": PolicySet()
}


def load_problems(
    task: str,
    data: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    level: str | None = None,
    subject: str | None = None,
    **gen_options: Any,
) -> list[Problem]:
    """The problems of ``task``.

    Real sets read ``data`` (a .jsonl or .jsonl.gz file) or, without it, the Hub; they keep file
    order and ``limit`` takes the first N after the ``level``/``subject`` filters (the seed is not
    used). Generators make ``limit`` problems (default 100) from ``random.Random(seed)``;
    ``gen_options`` are theirs (arith: digits, op; countdown: count).
    """
    spec = TASKS.get(str(task).strip().lower())
    if spec is None:
        close = difflib.get_close_matches(str(task).lower(), TASKS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProblemSetError(f"unknown task {task!r}; {hint}known tasks: {', '.join(TASKS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ProblemSetError(f"--limit must be a positive whole number; got {limit!r}")
    return spec.load(
        data=data, limit=limit, seed=seed, level=level, subject=subject, options=gen_options
    )


__all__ = ["Problem", "ProblemSetError", "TASKS", "load_problems"]

"""A question a user poses (``ponder solve``, ``ponder serve``) as a ``Problem``.

A free question is graded as math. A question in the countdown puzzles' own wording
(``synthetic.countdown_question``) becomes a countdown problem with its numbers and target. Then
``verifier=countdown`` and the countdown grader work on it as they do in ``ponder bench``: a lab
countdown model asked in ``ponder solve`` can be checked step by step.
"""

from __future__ import annotations

from typing import Any

from ponder.problems.base import Problem
from ponder.problems.synthetic import countdown_meta


def posed(pid: str, question: str, **fields: Any) -> Problem:
    """The problem ``question`` poses; ``fields`` are Problem's (messages, tools)."""
    meta = countdown_meta(question)
    if meta is not None:
        return Problem(pid, question, kind="countdown", meta=meta, **fields)
    return Problem(pid, question, kind="math", **fields)

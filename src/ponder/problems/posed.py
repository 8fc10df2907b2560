"""A question a user poses (``ponder solve``, ``ponder serve``) as a ``Problem``.

A free question is graded as math. A question in the countdown puzzles' own wording
(``synthetic.countdown_question``) becomes a countdown problem with its numbers and target. Then
``verifier=countdown`` and the countdown grader work on it as they do in ``ponder bench``: a lab
countdown model asked in ``ponder solve`` can be checked step by step.

A countdown puzzle put briefly — "Using 3, 7 and 25, make 46.", "Make 46 from 3, 7 and 25",
"Use 3 7 25 to reach 46" — is a countdown problem too, and is restated in the puzzles' wording,
which says the rules (each number at most once; + - * /). The restatement replaces the user's
message in what the model reads: the lab models only know that wording (asked the short form,
the stop-26 `lab:countdown-grpo` searched a puzzle it made up), and for any other model it states
the rules the grader applies. Only a message that is the puzzle and nothing else is read this way
(2 to 6 numbers, then the target), so a sentence that merely contains numbers stays a math
question.
"""

from __future__ import annotations

import re
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.synthetic import countdown_meta, countdown_question

_N = r"\d{1,9}"  # a longer number is no countdown number (and int() refuses > 4,300 digits)
_NUMBERS = rf"({_N}(?:\s*,\s*{_N}|\s+{_N})*(?:\s*,?\s+and\s+{_N})?)"
_GOAL = r"(?:make|get|reach)"
_SHORT_FORMS = (  # (pattern, group of the numbers, group of the target)
    (re.compile(rf"(?:using|use|with)\s+(?:the\s+numbers\s+)?{_NUMBERS}\s*,?\s*(?:to\s+)?{_GOAL}"
                rf"\s+({_N})\s*[.!?]?", re.IGNORECASE), 1, 2),  # fmt: skip
    (re.compile(rf"{_GOAL}\s+({_N})\s+(?:from|with|using)\s+(?:the\s+numbers\s+)?{_NUMBERS}\s*[.!?]?",
                re.IGNORECASE), 2, 1),  # fmt: skip
)


def short_countdown(question: str) -> dict[str, Any] | None:
    """``{"numbers", "target"}`` of a countdown puzzle put briefly (see the module), else None."""
    for pattern, numbers_at, target_at in _SHORT_FORMS:
        m = pattern.fullmatch(question.strip())
        if m is None:
            continue
        numbers = [int(n) for n in re.findall(r"\d+", m.group(numbers_at))]
        if 2 <= len(numbers) <= 6:
            return {"numbers": sorted(numbers), "target": int(m.group(target_at))}
    return None


def posed(pid: str, question: str, **fields: Any) -> Problem:
    """The problem ``question`` poses; ``fields`` are Problem's (messages, tools)."""
    meta = countdown_meta(question)
    if meta is not None:
        return Problem(pid, question, kind="countdown", meta=meta, **fields)
    meta = short_countdown(question)
    if meta is not None:
        restated = countdown_question(meta["numbers"], meta["target"])
        fields["messages"] = _restate(fields.get("messages", ()), question, restated)
        return Problem(pid, restated, kind="countdown", meta=meta, **fields)
    return Problem(pid, question, kind="math", **fields)


def _restate(messages, question: str, restated: str) -> tuple[dict[str, Any], ...]:
    """``messages`` with the last user turn, which asks ``question``, asking ``restated``."""
    turns = [dict(m) for m in messages]
    for turn in reversed(turns):
        if turn.get("role") == "user":
            if isinstance(turn.get("content"), str) and turn["content"].strip() == question.strip():
                turn["content"] = restated
            break
    return tuple(turns)

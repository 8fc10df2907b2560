"""Problem: one question with its reference answer and how to grade it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """``kind`` names the grader: "math" (symbolic equivalence), "numeric" (float tolerance),
    "exact" (string match), "countdown" (the expression is checked). ``meta`` holds set-specific
    fields (level, subject, the numbers of a countdown puzzle...)."""

    id: str
    question: str
    answer: str | None = None
    kind: str = "math"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

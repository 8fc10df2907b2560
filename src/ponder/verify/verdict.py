"""Verdict: what a grader says about one candidate answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """``score`` is 1.0 or 0.0 for the graders here (room for partial credit elsewhere);
    ``reason`` is a short phrase for traces and reports ("uses 7 twice", "no answer")."""

    correct: bool
    score: float
    reason: str

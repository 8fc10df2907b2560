"""The scorer registry: ``make_scorer("judge")``, ``make_scorer("confidence", measure="tail")``.

Only reference-free scorers live here: test-time selection never sees the reference answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ponder.verify.judge import ConfidenceScorer, JudgeScorer
from ponder.verify.scoring import Scorer

SCORERS: dict[str, Callable[..., Scorer]] = {
    "judge": JudgeScorer,
    "confidence": ConfidenceScorer,
}


def make_scorer(name: str, **options) -> Scorer:
    """Build the scorer ``name`` with ``options`` (its dataclass fields)."""
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; known: {', '.join(SCORERS)}")
    factory = SCORERS[name]
    try:
        return factory(**options)
    except TypeError as e:  # an option the scorer does not take
        fields = dataclasses.fields(factory) if dataclasses.is_dataclass(factory) else ()
        known = ", ".join(f.name for f in fields if f.init)
        raise ValueError(f"scorer {name!r}: {e}; its options: {known}") from e

"""Typed events that strategies stream while they work, ending in ``Final``.

Sinks (the terminal, an HTTP stream, the results database) consume these; strategies know nothing of
sinks. Every event serialises to a plain dict (``to_dict``) so traces can be stored and replayed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ponder.budget import Usage


@dataclass
class Event:
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = type(self).__name__
        return d


@dataclass
class TextDelta(Event):
    """A piece of sample ``sample``'s text, as the model produces it."""

    sample: int
    text: str


@dataclass
class Sampled(Event):
    """A finished sample and the answer extracted from it."""

    sample: int
    text: str
    answer: str | None
    completion_tokens: int
    finish_reason: str


@dataclass
class Voted(Event):
    """The current tally of answers (answer -> weight)."""

    tally: dict[str, float]
    leader: str | None


@dataclass
class Scored(Event):
    """A candidate rated by a test-time scorer (judge, confidence...)."""

    sample: int
    score: float
    reason: str


@dataclass
class Stopped(Event):
    """A strategy stopped sampling early (settled vote, low-confidence trace cut, budget end)."""

    reason: str
    sample: int | None = None  # the one trace that was cut, when it is about one trace


@dataclass
class Phase(Event):
    """A named phase of a multi-phase strategy began or ended, with its own usage so far."""

    name: str
    usage: Usage
    detail: str = ""


@dataclass
class Spent(Event):
    """Usage so far, after each model call."""

    usage: Usage


@dataclass
class Result:
    """How a strategy ended: the answer, how it was chosen, what it cost, and the trace."""

    answer: str | None
    text: str
    how: str
    usage: Usage
    trace: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "text": self.text,
            "how": self.how,
            "usage": self.usage.to_dict(),
            "trace": self.trace,
        }


@dataclass
class Final(Event):
    result: Result

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
class Checked(Event):
    """Step ``step`` (0-based) of a solution checked by a process verifier."""

    step: int
    ok: bool
    score: float
    reason: str


@dataclass
class Backtracked(Event):
    """A solution cut before step ``step`` (the steps before it kept), to be written again."""

    step: int
    round: int
    reason: str


@dataclass
class Forced(Event):
    """Budget forcing: "wait" appended to thinking that ended early, or "close" at its maximum."""

    action: str
    thinking_tokens: int


@dataclass
class Expanded(Event):
    """Search node ``node`` got children: their ids, step texts and verifier scores (None when
    not scored)."""

    node: int
    children: list[int]
    steps: list[str]
    scores: list[float | None]


@dataclass
class Kept(Event):
    """The partial solutions (node ids) a beam search keeps after depth ``depth``, with scores."""

    depth: int
    nodes: list[int]
    scores: list[float]


@dataclass
class Simulated(Event):
    """One MCTS simulation: the path of node ids from the root and the value backed up along it."""

    simulation: int
    path: list[int]
    value: float
    answer: str | None


@dataclass
class Tree(Event):
    """A search tree's nodes: id, parent, depth, step, visits, value (mean), answer."""

    nodes: list[dict[str, Any]]


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

"""Typed events that strategies stream while they work, ending in ``Final``.

Sinks (the terminal, an HTTP stream, the results database) consume these; strategies know nothing of
sinks. Every event carries ``t``, seconds since its strategy run started (set when it is emitted).
A Result's trace is the run's events themselves; they become plain dicts (``to_dict``) only where
they are written (the results store, JSON output, an SSE stream).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ponder.budget import Usage
from ponder.problems.conversation import ToolCall


@dataclass
class Event:
    t: float = field(default=0.0, kw_only=True)  # seconds since the strategy run started

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
    """A finished sample and the answer extracted from it (for a sample that answered with tool
    calls, ``answer`` is their signatures, what votes compare)."""

    sample: int
    text: str
    answer: str | None
    completion_tokens: int
    finish_reason: str
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class Voted(Event):
    """The current tally of answers (answer -> weight; answers that votes count as one, such as
    one countdown computation written two ways, appear once, in the words of the first sample
    that gave them)."""

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
class Warned(Event):
    """Something the run's user should know: e.g. samples the backend cut off (its stream ended
    with no finish) that therefore did not vote. ``sample`` when it is about one."""

    message: str
    sample: int | None = None


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
class ToolCalled(Event):
    """A program the model wrote, about to run in the sandbox (``call``: 0-based, per run)."""

    call: int
    language: str
    code: str


@dataclass
class ToolResult(Event):
    """What tool call ``call`` gave: ``output`` as the model sees it (capped), the exit status
    (None when ponder stopped the program), the limit that ended it, and the seconds it ran."""

    call: int
    output: str
    exit_code: int | None
    killed_by: str | None
    seconds: float

    def first_printed(self, width: int) -> tuple[str, bool]:
        """The first line the program printed (the reply's "[stdout]"-style headers left out),
        cut to ``width``, and whether anything was cut or follows it; ("", False) if none."""
        shown = [ln for ln in self.output.splitlines() if ln.strip() and not ln.startswith("[")]
        if not shown:
            return "", False
        return shown[0][:width], len(shown[0]) > width or len(shown) > 1


@dataclass
class Guarded(Event):
    """The policy guard's decision on a request (``think/guard.py``): "allow" (the strategy
    answers) or "refuse" (a fixed short refusal); ``reason``: the one the deliberation gave, or why
    none could be read; ``usage``: what the deliberation cost."""

    decision: str
    reason: str
    usage: Usage


@dataclass
class Spent(Event):
    """Usage so far, after each model call."""

    usage: Usage


# --- the research loop (research/loop.py): plan -> search -> read + note -> assess -> ... -> report


@dataclass
class Planned(Event):
    """Research round ``round``'s sub-questions, and why: the first plan, the open questions of
    the last round, or a re-plan after a dead end."""

    round: int
    questions: list[str]
    why: str


@dataclass
class Searched(Event):
    """A search for ``query``: the passages found (``file:start-end``), ``new`` of them unread."""

    query: str
    hits: list[str]
    new: int
    source: str = "corpus"


@dataclass
class Noted(Event):
    """Notes on the passages read for ``question``: each note quotes its source span
    ({file, start, end, quote, by}); ``rejected``: lines of the model that quoted nothing read."""

    question: str
    read: list[str]
    notes: list[dict[str, Any]]
    rejected: int


@dataclass
class Assessed(Event):
    """What round ``round``'s notes still leave unknown or contradictory; ``done``: nothing."""

    round: int
    unknown: list[str]
    contradictions: list[str]
    done: bool


@dataclass
class DeadEnd(Event):
    """Research stalled (searches bringing no new evidence, or only repeated queries): a re-plan
    follows, or the research stops when re-plans are used up."""

    round: int
    reason: str
    queries: list[str]


@dataclass
class CitationChecked(Event):
    """A report sentence's citations checked: ``how`` it was verified ("overlap", "judge") or why
    not ("unsupported", "uncited")."""

    sentence: str
    sources: list[int]
    ok: bool
    how: str


@dataclass
class Reported(Event):
    """The report was written: its path ("" when kept in memory) and its citation counts."""

    path: str
    sentences: int
    cited: int
    verified: int


@dataclass(frozen=True)
class Chosen:
    """The sample a Result's answer text is: its index among the run's Sampled events (the
    ``sample`` they carry), its text, its own completion tokens and how it finished. A text that
    no single sample wrote (a beam joined from steps, a solution continued after a backtrack)
    counts the completion tokens of the samples that wrote it. ``tool_calls``: the calls the
    sample answered with (the Result's answer is then those calls, not its text)."""

    index: int
    text: str
    completion_tokens: int
    finish_reason: str
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class Result:
    """How a strategy ended: the answer, the chosen sample, how it was chosen, what it cost, and
    the trace (every event of the run but the text deltas, in order)."""

    answer: str | None
    chosen: Chosen | None
    how: str
    usage: Usage
    trace: list[Event] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.chosen.text if self.chosen is not None else ""

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The chosen sample's tool calls (empty when it answered in text)."""
        return self.chosen.tool_calls if self.chosen is not None else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "text": self.text,
            "how": self.how,
            "usage": self.usage.to_dict(),
            "chosen": None if self.chosen is None else asdict(self.chosen),
            "trace": [e.to_dict() for e in self.trace],
        }


@dataclass
class Final(Event):
    result: Result

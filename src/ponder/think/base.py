"""The Strategy protocol, and the Run that every strategy works through.

A strategy is ``run(problem, model, budget)``: an async iterator of Events that ends with ``Final``
carrying a Result. Strategies are written as one plain coroutine, ``solve(problem, run) ->
Result``; ``StrategyBase.run`` streams the events it emits while it works. A Run holds:

- the budget meter (``run.meter``): every model and scorer call goes through it, so a strategy
  never spends more than its budget and its Result's usage is exactly what its calls cost;
- the clock and the trace: ``run.emit(event)`` stamps the event with ``t`` and streams it; every
  event but the text deltas is kept as the trace, and a Result is built by ``run.result(...)``.

A strategy that hands work to another (``auto`` to ``adaptive`` or ``reflect``) calls its
``solve`` with the same Run: one meter, one trace, one stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, Protocol

from ponder.budget import Budget
from ponder.events import Chosen, Event, Final, Result, Sampled, Spent, TextDelta, Warned
from ponder.models.base import Completion, Model, Request, StopCheck
from ponder.problems.base import Problem
from ponder.think.config import SAMPLING_FIELDS, Sampling
from ponder.think.meter import Meter
from ponder.tools.calculator import calculating
from ponder.tools.calls import prompted
from ponder.verify.score import Score
from ponder.verify.scorers import AUTO, make_scorer, resolve_scorer, verifier_on
from ponder.verify.scoring import Attempt, Scorer, refuse_mismatch

SYSTEM_PROMPT = (
    "Solve the problem. Think step by step, then give the final answer on its own line "
    "as \\boxed{ANSWER}."
)
# A code problem's answer is a program (graded by running its tests), not a boxed value.
CODE_SYSTEM_PROMPT = (
    "Complete the Python function. Reply with the whole function, with any imports it needs, "
    "in one ```python code block."
)


def instructions_for(problem: Problem) -> str:
    """The answer format a sampling strategy asks for: a program for code problems, else a
    boxed final answer."""
    return CODE_SYSTEM_PROMPT if problem.kind == "code" else SYSTEM_PROMPT


class Strategy(Protocol):
    spec: str  # the canonical NAME:key=value,... string that rebuilds it (seed left out)
    sampling: Sampling

    def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]: ...


def chat_messages(
    problem: Problem, instructions: str, question: str | None = None
) -> tuple[dict[str, Any], ...]:
    """What a strategy sends: the client's conversation, its own instructions added.

    One system message: the client's system prompt (if any) first, then the strategy's
    ``instructions`` (its answer format, which the strategy relies on, holds either way). The
    earlier turns follow as the client sent them, assistant ``tool_calls`` and ``tool`` turns
    included (a backend without native tool calling sees them written out as text: the Run's
    ``tools.calls.prompted``), then the question: the last user message, its text replaced by
    ``question`` when the strategy rewrites it.
    """
    turns = list(problem.messages) or [{"role": "user", "content": problem.question}]
    systems = [m["content"] for m in turns if m["role"] in ("system", "developer")]
    system = "\n\n".join([*systems, instructions]) if instructions else "\n\n".join(systems)
    out = [{"role": "system", "content": system}] if system else []
    last_user = max(i for i, m in enumerate(turns) if m["role"] == "user")
    for i, m in enumerate(turns):
        if m["role"] in ("system", "developer"):
            continue
        content = question if i == last_user and question is not None else m["content"]
        out.append({**m, "content": content})
    return tuple(out)


def solve_request(problem: Problem, sampling: Sampling = Sampling(), **changes) -> Request:
    """The chain-of-thought request every sampling strategy starts from (with the client's
    tools, when the problem offers some)."""
    messages = chat_messages(problem, instructions_for(problem))
    return Request(messages=messages, tools=problem.tools, **sampling.request_args(**changes))


def seed_at(sampling: Sampling, offset: int) -> int | None:
    """The seed of a call after ``offset`` samples were drawn (so that calls never repeat draws)."""
    return None if sampling.seed is None else sampling.seed + offset


class Run:
    def __init__(
        self, model: Model, budget: Budget, emit: Callable[[Event], None] | None = None
    ) -> None:
        # A model without native tool calling gets the prompt-and-parse fallback (passes through
        # requests that involve no tools).
        self.model = model = prompted(model)
        self.meter = Meter(model, budget)
        self.trace: list[Event] = []
        self._emit = emit
        self._start = time.perf_counter()

    def stamp(self, event: Event) -> Event:
        event.t = round(time.perf_counter() - self._start, 6)
        return event

    def emit(self, event: Event) -> Event:
        self.stamp(event)
        if not isinstance(event, (TextDelta, Final)):
            self.trace.append(event)
        if self._emit is not None:
            self._emit(event)
        return event

    def spent(self) -> None:
        """Emit the usage so far (after a call, for live displays)."""
        self.emit(Spent(self.meter.spent))

    async def generate(
        self, request: Request, first_index: int = 0, should_stop: StopCheck | None = None
    ) -> Completion:
        """One metered model call; its text streams as TextDelta events (sample i of the call is
        ``first_index + i``), and a Spent event follows."""

        def on_text(i: int, piece: str) -> None:
            self.emit(TextDelta(first_index + i, piece))

        completion = await self.meter.generate(request, on_text, should_stop)
        self._check_complete(completion, first_index)
        self._check_tools(request, completion, first_index)
        self.spent()
        return completion

    async def call(self, request: Request, first_index: int = 0) -> Completion:
        """One metered model call that is not streamed (a search's candidate steps)."""
        completion = await self.meter.generate(request)
        self._check_complete(completion, first_index)
        self._check_tools(request, completion, first_index)
        return completion

    def _check_tools(self, request: Request, completion: Completion, first_index: int) -> None:
        """A Warned event for each sample whose tool calls went wrong (the model's mistake: it
        then counts as a plain answer), and for each that made none where one was required."""
        for i, s in enumerate(completion.samples, start=first_index):
            if s.tool_warning:
                self.emit(Warned(f"sample {i}: {s.tool_warning}", sample=i))
            elif request.tools is not None and request.tools.required and not s.tool_calls:
                must = request.tools.name or "a tool"
                self.emit(Warned(f"sample {i}: tool_choice requires a call to {must}, but it "
                                 "answered in text (kept as a text answer)", sample=i))  # fmt: skip

    def _check_complete(self, completion: Completion, first_index: int) -> None:
        """A Warned event for samples the backend cut off (``incomplete``): they are never silent."""
        cut = [first_index + i for i, s in enumerate(completion.samples)
               if s.finish_reason == "incomplete"]  # fmt: skip
        if cut:
            which = ", ".join(map(str, cut))
            self.emit(Warned(
                f"the backend cut off {len(cut)} of {len(completion.samples)} samples (no finish, "
                f"even after a retry where the backend retries): sample {which}; a cut sample votes "
                "only if it states an answer", sample=cut[0] if len(cut) == 1 else None,
            ))  # fmt: skip

    async def score_all(
        self, scorer: Scorer, problem: Problem, attempts: list[Attempt]
    ) -> list[Score] | None:
        """Metered scoring of every attempt, or None when the budget cannot pay for all."""
        scores = await self.meter.score_all(scorer, problem, attempts)
        if scores and any(s.usage.total_tokens or s.usage.calls for s in scores):
            self.spent()
        return scores

    async def score(self, scorer: Scorer, problem: Problem, attempt: Attempt) -> Score | None:
        """Metered scoring of one attempt, or None when the budget cannot pay for it."""
        scores = await self.score_all(scorer, problem, [attempt])
        return None if scores is None else scores[0]

    def result(self, answer: str | None, chosen: Chosen | None, how: str) -> Result:
        return Result(answer, chosen, how, self.meter.spent, self.trace)


def chosen_from(sampled: Sampled) -> Chosen:
    return Chosen(sampled.sample, sampled.text, sampled.completion_tokens, sampled.finish_reason,
                  sampled.tool_calls)  # fmt: skip


@dataclasses.dataclass
class StrategyBase:
    """What every strategy shares: the sampling settings (documented in ``think.config``; each
    strategy may change their defaults), ``name``, ``spec`` and ``run`` (the streaming adapter
    around ``solve``). The settings are checked once, by ``Sampling``, when a strategy is built.

    ``calculator``: every sample the strategy draws (and every call of a scorer that uses its
    model) completes the equations it writes with ``tools.calculator``'s exact values."""

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    calculator: bool = False

    name: ClassVar[str]
    # Offers the client's tools (OpenAI function calling) to the model and may answer with a
    # sample's calls: the strategies that answer with one whole sample (the server refuses tools
    # for the others, which build answers from steps or rewrite them).
    client_tools: ClassVar[bool] = False
    # The field holding another strategy's options as (strategy, option, value) triples, written
    # strategy.option=value in a spec (``auto``'s ``hard_options``); None: no such field.
    nested_key: ClassVar[str | None] = None
    # Takes ``verifier=auto``, the problem's own exact step verifier where it has one, else judge
    # (``verify.scorers.verifier_on``): the strategies that check steps or candidates one by one.
    auto_verifier: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.sampling  # noqa: B018 (builds the Sampling, which raises SamplingError)

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.max_tokens, self.temperature, self.top_p, self.seed)

    async def solve(self, problem: Problem, run: Run) -> Result:
        """The strategy itself: every registered strategy defines it (this base has none)."""
        raise NotImplementedError(f"{type(self).__name__} defines no solve()")

    def scorer_for(self, level: str) -> Scorer:
        """The strategy's ``verifier`` (a name, or a Scorer passed in Python) as a Scorer that
        rates ``level`` ("answer" or "step"); a ValueError naming the strategy otherwise.
        ``verifier=auto`` gives its fallback (judge) here; ``scorer_on`` gives a problem's."""
        if self.verifier == AUTO and not self.auto_verifier:
            raise ValueError(
                f"{self.name}: verifier=auto (a problem's own step verifier) is for reflect, beam, "
                "mcts, deepthink and auto; name a verifier"
            )
        try:
            return resolve_scorer(self.verifier, level)
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None

    def scorer_on(self, problem: Problem) -> Scorer:
        """The scorer ``solve`` asks on ``problem``: the one built from ``verifier`` (``_scorer``),
        except that ``verifier=auto`` is the problem's own exact step verifier where it has one
        (``countdown`` on a countdown puzzle; it rates steps and answers)."""
        chosen = verifier_on(self.verifier, problem)
        if chosen is self.verifier or chosen == self._scorer.name:
            return self._scorer
        return make_scorer(chosen)

    def scorers_on(self, problem: Problem) -> list[Scorer]:
        """The scorers ``solve`` may ask on ``problem``; ``run`` refuses a problem that one of
        them cannot rate at all (``refuse_mismatch``) before a token is spent. A strategy with a
        ``verifier`` keeps its scorer in ``_scorer``; one that keeps it otherwise says so here."""
        if getattr(self, "_scorer", None) is None:
            return []
        return [self.scorer_on(problem)]

    def check_fits(self, problem: Problem) -> None:
        """Raise ProblemMismatch if a scorer this strategy asks cannot rate ``problem`` (before a
        token is spent: ``run`` and the server's preflight call it)."""
        for scorer in self.scorers_on(problem):
            refuse_mismatch(scorer, problem)

    @property
    def spec(self) -> str:
        """NAME:key=value for every option that differs from its default (the seed left out:
        bench stores it separately)."""
        own, sampling = [], []  # the strategy's own options first, then its sampling settings
        for f in dataclasses.fields(self):
            if f.name == "seed" or not f.init or getattr(self, f.name) == f.default:
                continue
            pairs = self._shown(f.name)
            (sampling if f.name in SAMPLING_FIELDS else own).extend(f"{k}={v}" for k, v in pairs)
        parts = own + sampling
        return self.name + (":" + ",".join(parts) if parts else "")

    @property
    def settings(self) -> dict[str, str]:
        """Every option's value, defaults included (the seed left out), as a spec writes it. A
        spec names only what differs from today's defaults, so a stored spec can mean other
        settings after an upgrade; bench stores these beside it and refuses to resume on a
        change (``bench.store``)."""
        return {k: v for f in dataclasses.fields(self) if f.init and f.name != "seed"
                for k, v in self._shown(f.name)}  # fmt: skip

    def _shown(self, field_name: str) -> list[tuple[str, str]]:
        """A field as spec pairs: one, or a nested strategy's options, one pair each."""
        value = getattr(self, field_name)
        if field_name == self.nested_key:
            return [(f"{name}.{k}", v) for name, k, v in value]
        shown = getattr(value, "name", value)
        if isinstance(value, float):  # short where that is exact: 0.8, not 0.8000000000000000444
            shown = f"{value:g}" if float(f"{value:g}") == value else repr(value)
        return [(field_name, str(shown))]

    async def run(self, problem: Problem, model: Model, budget: Budget) -> AsyncIterator[Event]:
        """The events of ``solve`` as they happen, then ``Final``. If the consumer stops early,
        the strategy (and its model calls) is cancelled. A strategy that cannot answer with tool
        calls (``client_tools`` False) is not offered the problem's tools."""
        if problem.tools is not None and not self.client_tools:
            problem = dataclasses.replace(problem, tools=None)
        self.check_fits(problem)
        queue: asyncio.Queue = asyncio.Queue()
        run = Run(calculating(model) if self.calculator else model, budget, queue.put_nowait)
        task = asyncio.ensure_future(self.solve(problem, run))
        finished = object()
        task.add_done_callback(lambda _: queue.put_nowait(finished))
        try:
            while (item := await queue.get()) is not finished:
                yield item
            result = task.result()
            yield run.stamp(Final(result))
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def final_result(events: AsyncIterator[Event]) -> Result:
    """Drain a strategy's events and return its Result (for callers that do not stream)."""
    result = None
    async for ev in events:
        if isinstance(ev, Final):
            result = ev.result
    if result is None:
        raise RuntimeError("strategy ended without a Final event")
    return result

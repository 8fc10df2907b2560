"""`code`: tool-integrated reasoning — the model writes Python, ponder runs it in the sandbox, the
model reads the output and goes on.

Program-of-thought (Chen et al. 2022, "Program of Thoughts Prompting") lets a model delegate
computation to an interpreter; ToRA (Gou et al. 2023, "ToRA: A Tool-Integrated Reasoning Agent")
interleaves the two: the model writes a ```python block, generation stops at the block's end
(ToRA's stop word ```output; here also the moment the block closes), the program runs, its output
is added as an ```output block and the model continues, up to a number of tool calls, until it
states the final answer. This is that loop, run on any backend:

- chat requests (``turns=chat``, the default) get each output as a new user turn, "Output of your
  program:" and the output, after an assistant turn holding the model's text up to its program.
  A user turn rather than a ``tool`` turn: the chat templates of small models know no tool role,
  and a tool turn without the matching tool-call message of a function-calling API is refused by
  some servers. ``turns=text`` sends one raw prompt with the outputs appended as ```output blocks
  (ToRA's own format), for completion models;
- every model call goes through the budget meter; the output is part of the next call's prompt,
  so the meter charges it there. When the next call does not fit, the run ends with what it has;
- programs run in ``tools.sandbox`` with ``timeout`` seconds and ``memory`` MiB; the output the
  model sees (``RunResult.render()``: stdout, stderr, how it ended) is capped at
  ``output_chars``, middle cut. Code that is not valid Python gets the interpreter's error as the
  output: the model's mistake, shown to it and recorded (a ``ToolResult``), never a crash. Where
  the sandbox cannot run, the strategy fails before any model call with the one-line
  ``SandboxUnavailable``; it never runs code unsandboxed (unless the named opt-out of
  ``tools.sandbox`` is set);
- ``n`` > 1: n independent runs (their first turns one batched request), majority-voted on their
  answers (``sampling.tally``/``leader``): self-consistency over tool-integrated runs.

Departures from ToRA: no fine-tuned model or rationale format; each program runs on its own (no
state kept between calls: a later program must redefine what it needs); only the first complete
block of a turn runs: a sample is stopped as soon as it closes a block (``should_stop``), and what
a backend wrote after it before stopping is dropped (its tokens still charged); a turn that states
a \\boxed answer after its program is final; the answer is the model's \\boxed answer, else
(program-of-thought) what the last successful program printed, else the last number the model
wrote. The output's line says how long the program ran, so prompts after a tool call differ
slightly from run to run (the reply is the one ``ponder sandbox`` prints).

On a code problem (``kind == "code"``) the model writes the function, and the tool runs it on the
examples its docstring shows (``verify.visible_tests``; never the hidden tests), self-debugging
style (Chen et al. 2023, "Teaching Large Language Models to Self-Debug"): a program that passes
them, or a turn without a program, ends the run, and the answer is the last function written.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field, replace

from ponder.events import Result, Sampled, ToolCalled, ToolResult
from ponder.models.base import Request, Sample
from ponder.problems.base import Problem
from ponder.think.base import Run, StrategyBase, chat_messages, seed_at
from ponder.think.sampling import Candidate, first_with, leader, tally, voted
from ponder.tools.limits import SandboxLimits
from ponder.tools.sandbox import check_available, run_python_async
from ponder.verify.code_tests import code_meta
from ponder.verify.extract import extract_answer
from ponder.verify.grade import answer_key, read_answer
from ponder.verify.visible_tests import VisibleRun, run_visible

TOOL_SYSTEM = (
    "Solve the problem. You may write a Python program in a ```python code block to compute "
    "what you need: it is run and you are shown its output, then you continue. Give the final "
    "answer on its own line as \\boxed{ANSWER}."
)
CODE_TASK_SYSTEM = (
    "Complete the Python function. Write the whole function, with any imports it needs, in a "
    "```python code block: it is run on the examples in its docstring and you are shown the "
    "result. If an example fails, fix the function and write it again."
)
OUTPUT_TURN = "Output of your program:\n"  # the user turn that carries a tool's output (chat)
STOP = "```output"  # ToRA's stop word: the model would start writing the output itself
TURNS = ("chat", "text")

# A complete ```python block (also ```py, ```python3, or a bare ```), not ```output.
_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.S | re.I)


@dataclass
class Turn:
    text: str  # what the model wrote (up to and including its program's block)
    output: str | None = None  # the tool's reply to the turn's program


@dataclass
class Transcript:
    """One tool-integrated run: its turns, what they cost, how it ended."""

    index: int
    turns: list[Turn] = field(default_factory=list)
    completion_tokens: int = 0
    finish: str = "stop"
    calls: int = 0
    last_ok_stdout: str | None = None  # stdout of the last program that exited cleanly
    ended: str = ""  # why the run ended
    source: str = ""  # where its answer was read from

    def text(self) -> str:
        """The run as one text: the model's turns with each output as an ```output block."""
        out = []
        for t in self.turns:
            out.append(t.text)
            if t.output is not None:
                sep = "" if t.text.endswith("\n") else "\n"
                out.append(f"{sep}```output\n{t.output}\n```\n")
        return "".join(out)

    def model_text(self) -> str:
        return "\n".join(t.text for t in self.turns)


@dataclass
class Code(StrategyBase):
    rounds: int = 3  # tool calls at most, per run
    n: int = 1  # independent runs, majority-voted (temperature > 0 needed when n > 1)
    timeout: float = 10.0  # sandbox wall clock (and CPU seconds) per tool call
    memory: int = 512  # sandbox address space per process, MiB
    output_chars: int = 1000  # of each tool output shown to the model (middle cut)
    turns: str = "chat"  # chat: outputs as user turns; text: one raw prompt, outputs appended
    # max_tokens: per model turn; temperature: 0 (greedy, as cot) unless n > 1
    temperature: float = 0.0

    name = "code"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 0:
            raise ValueError("code: rounds must be >= 0 (tool calls per run)")
        if self.n < 1:
            raise ValueError("code: n must be a positive integer")
        if self.n > 1:
            self.sampling.require_temperature("code with n > 1", "greedy runs are all the same")
        if self.output_chars < 200:
            raise ValueError("code: output_chars must be at least 200")
        if self.turns not in TURNS:
            raise ValueError(f"code: turns={self.turns!r} is not one of {', '.join(TURNS)}")
        try:
            self._limits = SandboxLimits(timeout_s=self.timeout, memory_mb=self.memory)
        except ValueError as e:
            raise ValueError(f"code: {e}".replace("SandboxLimits.timeout_s", "timeout").replace(
                "SandboxLimits.memory_mb", "memory")) from None

    async def solve(self, problem: Problem, run: Run) -> Result:
        await asyncio.to_thread(check_available)  # no sandbox: a setup error, before any call
        base = self._base_request(problem)
        first = run.meter.fit(replace(base, n=self.n))
        if first is None:
            return run.result(None, None, "budget too small for the prompt")
        samples = (await run.generate(first, should_stop=_wrote_program)).samples
        calls = itertools.count()
        runs = await asyncio.gather(
            *(self._go_on(problem, run, base, Transcript(j), s, calls)
              for j, s in enumerate(samples))
        )  # fmt: skip
        cands = [self._candidate(problem, t) for t in runs]
        if self.n == 1:
            (t,), (c,) = runs, cands
            return run.result(c.answer, c.chosen, self._how(t, c))
        votes = tally(cands)
        best = leader(votes)
        run.emit(voted(votes, cands))
        if best is None:
            return run.result(None, cands[0].chosen, f"no answer in any of {len(runs)} runs")
        winner = first_with(cands, best)
        agree = sum(c.key == best for c in cands)
        how = (
            f"majority vote over {len(runs)} tool-integrated runs, {agree} agree; run "
            f"{winner.index}: {self._how(runs[winner.index], winner)}"
        )
        return run.result(winner.answer, winner.chosen, how)

    # --- one run ------------------------------------------------------------------------------
    async def _go_on(
        self, problem: Problem, run: Run, base: Request, t: Transcript, sample: Sample, calls
    ) -> Transcript:
        """Continue run ``t`` from its first sample until it answers, runs out of tool calls or
        of budget."""
        while True:
            t.completion_tokens += sample.completion_tokens
            t.finish = sample.finish_reason
            text, program = split_turn(sample.text, stated_after=problem.kind != "code")
            t.turns.append(Turn(text))
            if program is None:
                t.ended = "answered" if sample.finish_reason != "length" else "cut at max_tokens"
                self._emit_turn(problem, run, t, sample, final=True)
                return t
            if t.calls == self.rounds:
                t.ended = f"its program was not run: the {self.rounds} tool calls were used"
                self._emit_turn(problem, run, t, sample, final=True)
                return t
            self._emit_turn(problem, run, t, sample, final=False)
            passed = await self._call(problem, run, t, program, next(calls))
            if passed:
                t.ended = passed
                return t
            request = run.meter.fit(self._next_request(base, t))
            if request is None:
                t.ended = f"the budget ended after {t.calls} tool calls"
                return t
            completion = await run.generate(request, t.index, should_stop=_wrote_program)
            sample = completion.samples[0]

    async def _call(
        self, problem: Problem, run: Run, t: Transcript, program: str, call: int
    ) -> str:
        """Run ``program`` in the sandbox and add its output to ``t``; on a code problem, a
        non-empty reason when its function passes the visible examples (the run ends there)."""
        run.emit(ToolCalled(call, "python", program))
        t.calls += 1
        done = ""
        if problem.kind == "code":
            prompt, _, entry_point = code_meta(problem)
            checked: VisibleRun = await asyncio.to_thread(
                run_visible, prompt, program, entry_point, self._limits
            )
            result = checked.result
            if checked.passed is not None and checked.passed == checked.total:
                done = (
                    f"its function passes the {checked.total} visible examples"
                    if checked.total else "its function runs; the prompt shows no usable example"
                )
        else:
            result = await run_python_async(program, self._limits)
        if result.ok:
            t.last_ok_stdout = result.stdout
        output = cap(result.render(), self.output_chars)
        t.turns[-1].output = output
        run.emit(ToolResult(call, output, result.exit_code, result.killed_by, result.seconds))
        return done

    def _emit_turn(
        self, problem: Problem, run: Run, t: Transcript, sample: Sample, final: bool
    ) -> None:
        """A Sampled event for the turn just written (its answer only when it ends the run)."""
        answer = self._answer(problem, t)[0] if final else None
        run.emit(Sampled(t.index, t.turns[-1].text, answer, sample.completion_tokens,
                         sample.finish_reason))  # fmt: skip

    # --- requests -----------------------------------------------------------------------------
    def _base_request(self, problem: Problem) -> Request:
        system = CODE_TASK_SYSTEM if problem.kind == "code" else TOOL_SYSTEM
        args = self.sampling.request_args(stop=(*self.sampling.stop, STOP))
        if self.turns == "text":
            prompt = f"{system}\n\nProblem:\n{problem.as_text()}\n\nSolution:\n"
            return Request(prompt=prompt, **args)
        return Request(messages=chat_messages(problem, system), **args)

    def _next_request(self, base: Request, t: Transcript) -> Request:
        seed = seed_at(self.sampling, self.n + t.index * max(self.rounds, 1) + t.calls - 1)
        if base.prompt is not None:
            return replace(base, prompt=base.prompt + t.text(), seed=seed, n=1)
        msgs = list(base.messages or ())
        for turn in t.turns:
            msgs.append({"role": "assistant", "content": turn.text})
            msgs.append({"role": "user", "content": OUTPUT_TURN + (turn.output or "")})
        return replace(base, messages=tuple(msgs), seed=seed, n=1)

    # --- answers ------------------------------------------------------------------------------
    def _answer(self, problem: Problem, t: Transcript) -> tuple[str | None, str]:
        """The run's answer and where it was read from."""
        said = t.model_text()
        if problem.kind == "code":
            return read_answer(problem, said), "the last function written"
        if "\\boxed" in said and (boxed := extract_answer(said)):
            return boxed, "stated"
        if t.last_ok_stdout and (printed := extract_answer(t.last_ok_stdout)):
            return printed, "read from the last program's output"
        return extract_answer(said), "the last number written"

    def _candidate(self, problem: Problem, t: Transcript) -> Candidate:
        answer, t.source = self._answer(problem, t)
        sample = Sample(t.text(), 0, t.completion_tokens, t.finish)
        return Candidate(t.index, sample, answer, answer_key(problem, answer))

    def _how(self, t: Transcript, c: Candidate) -> str:
        calls = f"{t.calls} tool call" + ("s" if t.calls != 1 else "")
        if c.answer is None:
            return f"{calls}; {t.ended}; no answer found"
        return f"{calls}; {t.ended}; answer {t.source}"


def _wrote_program(index: int, partial: Sample) -> bool:
    """Stop a sample once it has closed a Python block: the program runs before it goes on."""
    return "```" in partial.text and _BLOCK.search(partial.text) is not None


def split_turn(text: str, stated_after: bool = True) -> tuple[str, str | None]:
    """A model turn as (the text kept, the program to run): the text up to the end of its first
    complete Python block, and that block's code; or (the whole text, None) when the turn has no
    complete block, or (``stated_after``) states a \\boxed answer after it — a final turn."""
    m = _BLOCK.search(text)
    if m is None or not m.group(1).strip():
        return text, None
    if stated_after and "\\boxed" in text[m.end() :]:
        return text, None
    return text[: m.end()], m.group(1)


def cap(text: str, chars: int) -> str:
    """``text`` with its middle cut to at most about ``chars`` characters, saying how much."""
    if len(text) <= chars:
        return text
    half = chars // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half:,} characters cut ...]\n{text[-half:]}"


__all__ = ["Code", "Transcript", "cap", "split_turn"]

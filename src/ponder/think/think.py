"""`think`: one chain of thought with a thinking budget — s1's budget forcing (Muennighoff et al.
2025, "s1: Simple test-time scaling").

The model thinks, then answers. Between ``min_think`` and ``max_think`` thinking tokens:

- thinking that ends before ``min_think`` tokens is not accepted: the end-of-thinking marker is
  removed, "Wait" is appended on a new line and the model continues from there (at most ``waits``
  times). ``wait=MARKER`` appends another marker: "Wait" means nothing to a model never trained on
  it, such as the lab's countdown searcher, whose own continue marker is ``back`` (it then
  restates a state and tries its next move: ``think:wait=back``);
- thinking that reaches ``max_think`` tokens is closed: the closing text is appended and the model
  must answer (in at most ``max_tokens`` tokens).

Two ways to think (``style``):

- ``tags``: inside ``<think> … </think>`` (the answer is opened with ``<think>\\n``, so a plain
  model thinks there too when asked, and a thinking model simply goes on). The end of thinking is
  ``</think>``; closing appends ``\\n</think>\\n\\n``.
- ``plain``: the usual step-by-step prompt. The end of thinking is the answer marker
  (``\\boxed`` or ``Answer:``); closing appends ``\\nAnswer:``.
- ``auto``: ``tags`` if the model opens ``<think>`` by itself, else ``plain``. (A model whose
  chat template opens the think block itself writes no ``<think>``: give it ``style=tags``.)

One call does it when nothing has to be forced: the end of thinking is watched token by token
(``should_stop``), the call is stopped only where s1 intervenes, and otherwise it runs on into the
answer. Each intervention costs one more call, whose prompt is everything written so far.

Departures: thinking tokens are the tokens the model generated up to and including the end
marker (the appended "Wait"s are prompt, not thinking); after ``waits`` Waits, thinking that
ends early is accepted; with a token cap, the thinking allowance is shrunk so that a forced answer
still fits after it (a plan: the meter makes the guarantee).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ponder.events import Chosen, Forced, Result, Sampled
from ponder.models.base import Request, Sample
from ponder.problems.base import Problem
from ponder.think.base import SYSTEM_PROMPT, Run, StrategyBase, chat_messages
from ponder.verify.extract import extract_answer

STYLES = ("auto", "tags", "plain")
TAGS_SYSTEM = (
    "Solve the problem. Think step by step inside <think> </think> first; after </think>, give "
    "the final answer on its own line as \\boxed{ANSWER}."
)
OPEN, CLOSE_TAG = "<think>", "</think>"
CLOSE = {"tags": "\n</think>\n\n", "plain": "\nAnswer:"}
_PLAIN_END = re.compile(r"\\boxed|answer\s*:", re.IGNORECASE)


def thinking_end(text: str, style: str) -> tuple[int, int] | None:
    """(start, end) of the end-of-thinking marker in ``text``, or None.

    ``auto``: a text that opens with ``<think>`` follows the tags rule, one that is still a prefix
    of it may yet do so (None), any other the plain rule.
    """
    if style == "auto":
        head = text.lstrip()
        if OPEN.startswith(head):
            return None
        style = "tags" if head.startswith(OPEN) else "plain"
    if style == "tags":
        i = text.find(CLOSE_TAG)
        return None if i < 0 else (i, i + len(CLOSE_TAG))
    m = _PLAIN_END.search(text)
    return None if m is None else (m.start(), m.end())


@dataclass
class Think(StrategyBase):
    min_think: int = 0  # thinking shorter than this gets a "Wait" (0: never)
    max_think: int = 1024  # thinking is closed at this many tokens
    waits: int = 3  # "Wait"s at most
    wait: str = "Wait"  # the continue marker, on a new line; a model's own (e.g. "back") if it has one
    style: str = "auto"  # auto | tags | plain
    # max_tokens: the answer after the thinking; s1 decodes greedily
    max_tokens: int = 256
    temperature: float = 0.0

    name = "think"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_think < 0:
            raise ValueError("think: min_think must be >= 0")
        if self.max_think < 1:
            raise ValueError("think: max_think must be a positive integer")
        if self.min_think > self.max_think:
            raise ValueError("think: min_think must not exceed max_think")
        if self.waits < 0:
            raise ValueError("think: waits must be >= 0")
        if not self.wait.strip() or "\n" in self.wait:
            raise ValueError("think: wait must be a non-empty marker on one line")
        if self.style not in STYLES:
            raise ValueError(f"think: style={self.style!r} is not one of {', '.join(STYLES)}")

    async def solve(self, problem: Problem, run: Run) -> Result:
        system = TAGS_SYSTEM if self.style == "tags" else SYSTEM_PROMPT
        base = Request(messages=chat_messages(problem, system), **self.sampling.request_args())
        style = self.style
        text = OPEN + "\n" if style == "tags" else ""
        thinking = waits = calls = tokens = 0
        closed = False  # the thinking was forced shut: this call is the answer
        how, finish = "", "stop"
        while True:
            think_left = self._allowance(run, base, text, thinking)
            if not closed and think_left < 1 and calls:  # no thinking left: answer now
                text = text.rstrip() + CLOSE["tags" if style == "tags" else "plain"]
                closed = True
                run.emit(Forced("close", thinking))
            max_new = self.max_tokens if closed else think_left + self.max_tokens
            req = run.meter.fit(base.continuing(text, max_tokens=max_new))
            if req is None:
                how = "budget too small for the prompt" if not calls else "budget ended"
                break
            # should_stop watches the end of thinking; it records the token count at the end
            watch = {"end_tokens": None, "seen": 0}
            stop = None
            if not closed:
                stop = self._watcher(text, style, thinking, waits, think_left, watch)
            sample = (await run.generate(req, calls, stop)).samples[0]
            calls += 1
            tokens += sample.completion_tokens
            finish = sample.finish_reason
            so_far = text + sample.text
            run.emit(Sampled(calls - 1, so_far, _answer(so_far, style),
                             sample.completion_tokens, sample.finish_reason))  # fmt: skip
            if closed:
                text += sample.text
                how = f"thinking closed at {thinking} tokens, then answered"
                break
            if style == "auto":
                head = (text + sample.text).lstrip()
                style = "tags" if head.startswith(OPEN) else "plain"
            end = thinking_end(text + sample.text, style)
            if end is not None and end[0] >= len(text):  # ended in this call
                used = watch["end_tokens"] or sample.completion_tokens
                if thinking + used < self.min_think and waits < self.waits:
                    thinking += used
                    waits += 1
                    text = (text + sample.text)[: end[0]].rstrip() + "\n" + self.wait
                    run.emit(Forced("wait", thinking))
                    continue
                thinking += used
                text += sample.text
                how = f"thought {thinking} tokens"
                break
            thinking += sample.completion_tokens
            ended = sample.finish_reason == "stop"  # the model stopped without closing
            if ended and thinking < self.min_think and waits < self.waits:
                waits += 1
                text = (text + sample.text).rstrip() + "\n" + self.wait
                run.emit(Forced("wait", thinking))
                continue
            text = (text + sample.text).rstrip() + CLOSE[style]
            closed = True
            run.emit(Forced("close", thinking))

        answer = _answer(text, style)
        if waits:
            how += f" ({waits} Wait{'s' if waits > 1 else ''} appended)"
        if answer is None and how != "budget too small for the prompt":
            how += "; no answer found in the text"
        chosen = Chosen(calls - 1, text, tokens, finish) if calls else None
        return run.result(answer, chosen, how)

    def _allowance(self, run: Run, base: Request, text: str, thinking: int) -> int:
        """Thinking tokens the next call may spend: what ``max_think`` leaves and, under a cap,
        what leaves room for a forced answer after it (that call re-reads the thinking).

        At worst this call costs prompt + t + a and a forced answer prompt + t + close + a, so
        t + a may be half of what is left after two prompts; the answer ``a`` gets at most half
        of that (up to ``max_tokens``), the thinking ``t`` the rest.
        """
        left = max(0, self.max_think - thinking)
        remaining = run.meter.remaining
        if remaining is None:
            return left
        prompt = run.model.count_prompt_tokens(base.continuing(text, max_tokens=1))
        spare = (remaining - 2 * prompt - 8) // 2  # 8: room for the closing text
        room = spare - min(self.max_tokens, spare // 2)
        return max(0, min(left, room))

    def _watcher(self, text, style, thinking, waits, think_left, watch):
        """``should_stop`` for one call: stop where budget forcing must step in — thinking ended
        too early (a Wait is due), thinking reached its allowance, or the answer its length."""
        want_wait = waits < self.waits

        def should_stop(i: int, partial: Sample) -> bool:
            n = partial.completion_tokens
            if watch["end_tokens"] is None:
                # the marker can only have been completed at the tail: look at the new text only
                start = max(0, watch["seen"] - len(CLOSE_TAG) - 8)
                watch["seen"] = len(partial.text)
                if thinking_end(_tail(text, partial.text, start, style), style) is not None:
                    watch["end_tokens"] = n
                    return want_wait and thinking + n < self.min_think
                return n >= think_left
            return n - watch["end_tokens"] >= self.max_tokens

        return should_stop


def _tail(text: str, new: str, start: int, style: str) -> str:
    """The part of ``text + new`` the end marker can be in: the new text from ``start`` on (and,
    for ``auto``, the whole, since the rule depends on how it opened)."""
    return text + new if style == "auto" else new[start:]


def _answer(text: str, style: str) -> str | None:
    """The answer after the thinking (tags), else anywhere in the text."""
    if style == "tags" and CLOSE_TAG in text:
        after = text.rsplit(CLOSE_TAG, 1)[1]
        return extract_answer(after) or extract_answer(text)
    return extract_answer(text)

"""A calculator the model calls by writing an equation: ``a op b =`` is completed with its value.

After Toolformer (Schick et al. 2023), whose calculator API call ``[Calculator(400 / 1400) →
0.29]`` is answered inline, in the middle of the model's text, and the model goes on from the
result. The idea is older than that paper: a model that gets the method right slips on the digits
(the lab's countdown searcher writes ``28*7=186``), and exact arithmetic is what a tool does and a
small model does not.

Departures from Toolformer:

- No call syntax: the call is the equation itself. A sample is stopped the moment its text ends
  with one binary operation of two numbers and ``=`` (``57*3=``, ``4 + 5 =``), the calculator
  writes the value, and the model continues the sample from there, as if it had written it. A
  model needs no training to use it: every model that writes equations calls it, and a model that
  writes none never does.
- One operation, no expressions: the operation written just before ``=`` is computed. That is what
  a line of a worked solution holds, and it cannot misread an expression the model meant
  differently.
- Values are exact for + - * and for a division that comes out whole; another division is written
  to two decimals, as Toolformer rounds. Division by zero and a number too long to be one are left
  to the model.

Cost: a continued sample is sent again with what it has so far; ``Calculating`` charges the calls
as a backend that keeps its KV cache from one call to the next would spend them (the prompt once,
then each token of the sample once: the model's tokens as completion tokens, the calculator's as
prompt tokens, processed but not generated), as vLLM's prefix caching and SGLang's radix cache do.
ponder's in-process backends compute the sample's text again at each call (llama.cpp reuses only
the prompt it cached, hf nothing), so there the calculator takes more wall time than its tokens
show. A sample's ``max_tokens`` holds for its whole text, the calculator's digits included.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from ponder.budget import Usage
from ponder.models.base import Completion, Model, Request, Sample, StopCheck, TextCallback

# An operation of two numbers ending in "=", at the end of the text: "57*3=", "4 + 5 =". A number
# is digits with an optional decimal part, not the tail of a longer number.
_EQUATION = re.compile(
    r"(?<![\d.])(?P<a>\d{1,12}(?:\.\d{1,12})?)(?P<sp> ?)(?P<op>[-+*/×÷])"
    r" ?(?P<b>\d{1,12}(?:\.\d{1,12})?) ?=$"
)
_GROUPED = re.compile(r"\d,$")  # "1,000+5=": a 3-digit "000" after "1," is part of a longer number
TAIL = 40  # characters of text before a stop that an equation can span


def value_for(text: str) -> str | None:
    """What the calculator writes after ``text``, or None when ``text`` does not end with an
    equation it computes. A space goes before the value when the equation spaced its operator."""
    tail = text[-TAIL:]
    m = _EQUATION.search(tail)
    if m is None or (len(m["a"]) == 3 and _GROUPED.search(tail[: m.start()])):
        return None
    try:
        a, b = Decimal(m["a"]), Decimal(m["b"])
    except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
        return None
    op = m["op"]
    if op in "/÷":
        if b == 0:
            return None
        value = a / b
        shown = _plain(value) if value == value.to_integral_value() else _plain(round(value, 2))
    else:
        shown = _plain(a + b if op == "+" else a - b if op == "-" else a * b)
    return (" " if m["sp"] else "") + shown


def _plain(value: Decimal) -> str:
    """A Decimal as a person writes it: ``12``, ``2.5``, ``-3`` (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class Calculating:
    """``model`` with the calculator: each sample is stopped after every equation it writes, the
    value is written after it, and the sample goes on (a request continuing its text so far).

    The inner model sees plain requests; ``on_text`` gets the calculator's digits as pieces of the
    sample's text, and a caller's ``should_stop`` sees the whole sample so far."""

    def __init__(self, model: Model) -> None:
        self.inner = model

    def __getattr__(self, name: str) -> Any:  # name, exact_usage, context_length, native_tools
        return getattr(self.inner, name)

    def count_prompt_tokens(self, request: Request) -> int:
        return self.inner.count_prompt_tokens(request)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "tools": ["calculator"]}

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        samples = [_Growing(request.prefix or request.prompt or "") for _ in range(request.n)]

        def stop_check(i: int, partial: Sample) -> bool:
            grown = samples[i]
            if value_for(grown.context + partial.text) is not None:
                grown.at_equation = True
                return True
            return should_stop is not None and should_stop(i, grown.view(partial))

        first = await self.inner.generate(request, on_text, stop_check)
        usage = first.usage
        pending = []
        for i, s in enumerate(first.samples):
            samples[i].add(s)
            pending.append(self._finish(request, i, samples[i], on_text, stop_check))
        for extra in await asyncio.gather(*pending):
            usage = usage + extra
        out = [g.sample(first.samples[i].prompt_tokens) for i, g in enumerate(samples)]
        return Completion(out, usage)

    async def _finish(self, request, i, grown: "_Growing", on_text, stop_check) -> Usage:
        """Write the calculator's values into sample ``i`` and continue it until it ends; the usage
        of what that took (the value's tokens as prompt tokens, the continuations' completions)."""
        usage, calls = Usage(), 0
        request = replace(request, n=1)  # this sample's own: a prompt is priced per sample
        while grown.at_equation:
            grown.at_equation = False
            value = value_for(grown.context)
            if value is None:  # the backend went past the stop it was asked for: leave it be
                grown.finish_reason = "stop"
                break
            text_before = self._continuing(request, grown.text)
            with_value = self._continuing(request, grown.text + value)
            count = self.count_prompt_tokens
            cost = max(0, count(with_value) - count(text_before))
            left = request.max_tokens - grown.tokens - cost
            if left < 0:
                grown.finish_reason = "length"
                break
            grown.write(value, cost)
            usage = usage + Usage(prompt_tokens=cost)
            if on_text is not None:
                on_text(i, value)
            window = getattr(self.inner, "context_length", None)
            if left == 0 or (window is not None and self.count_prompt_tokens(with_value) >= window):
                grown.finish_reason = "length"  # no room left: in the budget, or in the context
                break
            calls += 1
            seed = None if request.seed is None else request.seed + 1_000_003 * (i + 1) + calls
            more = replace(with_value, max_tokens=left, seed=seed)
            completion = await self.inner.generate(
                more,
                None if on_text is None else (lambda _, piece: on_text(i, piece)),
                lambda _, partial: stop_check(i, partial),
            )
            (s,) = completion.samples
            grown.add(s)
            # The continuation's prompt is the sample so far: charged once already (the request's
            # prompt, its earlier tokens), so only its completion and the call are charged again.
            spent = completion.usage
            usage = usage + Usage(completion_tokens=spent.completion_tokens, calls=spent.calls,
                                  seconds=spent.seconds)  # fmt: skip
        return usage

    @staticmethod
    def _continuing(request: Request, text: str) -> Request:
        """``request`` set to continue its own partial answer (or raw prompt) with ``text``."""
        if request.messages is not None:
            return request.continuing((request.prefix or "") + text)
        return replace(request, prompt=request.prompt + text)


class _Growing:
    """One sample as the calculator builds it: the model's pieces and the values between them."""

    def __init__(self, before: str) -> None:
        self.before = before[-TAIL:]  # what it continues: an equation may start there
        self.text = ""
        self.tokens = 0  # the model's tokens and the calculator's, against max_tokens
        self.generated = 0
        self.logprobs: list[float] | None = None
        self.top_logprobs: list[list[float]] | None = None
        self.finish_reason = ""
        self.at_equation = False

    @property
    def context(self) -> str:
        return self.before + self.text

    def add(self, s: Sample) -> None:
        self.text += s.text
        self.tokens += s.completion_tokens
        self.generated += s.completion_tokens
        if s.logprobs is not None:
            self.logprobs = (self.logprobs or []) + s.logprobs
        if s.top_logprobs is not None:
            self.top_logprobs = (self.top_logprobs or []) + s.top_logprobs
        # A stop at an equation is ours (the sample goes on); any other is the sample's end.
        self.finish_reason = "" if self.at_equation else s.finish_reason

    def write(self, value: str, tokens: int) -> None:
        self.text += value
        self.tokens += tokens

    def view(self, partial: Sample) -> Sample:
        """The whole sample so far, for a caller's ``should_stop``."""
        lp = None if partial.logprobs is None else (self.logprobs or []) + partial.logprobs
        top = partial.top_logprobs
        top = None if top is None else (self.top_logprobs or []) + top
        return Sample(self.text + partial.text, partial.prompt_tokens, self.generated +
                      partial.completion_tokens, "", lp, top)  # fmt: skip

    def sample(self, prompt_tokens: int) -> Sample:
        return Sample(self.text, prompt_tokens, self.generated, self.finish_reason or "stop",
                      self.logprobs, self.top_logprobs)  # fmt: skip


def calculating(model: Model) -> Model:
    """``model`` with the calculator (see the module docstring)."""
    return model if isinstance(model, Calculating) else Calculating(model)

"""OpenAI response bodies for one request: one ``chat.completion`` JSON body, or a stream of
``chat.completion.chunk`` server-sent events.

A stream, in order (each line one ``data:`` event, sent as the work happens):

1. ``delta.role = "assistant"`` at once, before any model call;
2. ``delta.reasoning_content`` pieces: the transcript of the work (``transcript.Transcript``), token
   by token for the sample being followed; with ``ponder.events`` every strategy event also rides
   along as ``chunk["ponder"]["event"]`` (its ``to_dict()``), in chunks with an empty delta when it
   adds no text;
3. ``delta.content``: the answer (``run.Answer.content``) in one piece once the strategy has chosen
   it (a vote cannot know its winner earlier); or, when the answer is tool calls, OpenAI's
   tool-call deltas, two chunks per call: ``delta.tool_calls = [{index, id, type: "function",
   function: {name, arguments: ""}}]``, then ``[{index, function: {arguments}}]`` (what the SDK's
   stream accumulator and LangChain reassemble), and ``finish_reason: "tool_calls"``;
4. an empty delta with ``finish_reason`` and a ``ponder`` summary (answer, how, strategy, calls);
5. with ``stream_options.include_usage``, a chunk with no choices and the exact ``usage``;
6. ``data: [DONE]``.

A failure after the stream began is sent as ``data: {"error": {...}}`` (the OpenAI SDK raises it as
an APIError), then ``[DONE]``. The non-streaming body holds the same: ``message.reasoning_content``
is the whole transcript, ``message.content`` the answer (null, with ``message.tool_calls``, when
the answer is tool calls).

With ``n`` > 1 the n runs work concurrently; their chunks interleave, each with its choice's
``index`` (as OpenAI streams n choices), and the usage (chunk or field) is their sum.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from ponder.errors import ProblemMismatch
from ponder.models.base import Model, ModelError
from ponder.serve.protocol import ApiError, ChatRequest
from ponder.serve.run import Answer, Progress, think

log = logging.getLogger("ponder.serve")
DONE = "data: [DONE]\n\n"


def sse(obj: dict[str, Any]) -> str:
    return "data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def failure(e: Exception) -> ApiError:
    """What a failed run tells the client: a model backend's own message, or a generic 500."""
    if isinstance(e, ModelError):
        return ApiError(502, f"model backend error: {e}", type="server_error", code="model_error")
    if isinstance(e, ProblemMismatch):  # e.g. verifier=countdown on a question that is not one
        return ApiError(400, str(e), param="model")
    log.exception("request failed")
    return ApiError(500, "internal error in ponder serve (see the server log)", type="server_error")


@dataclass
class Envelope:
    """The fields every body and chunk of one response share."""

    model: str  # what the response reports as its model: ponder/<canonical strategy spec>
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(
        self, delta: dict, finish_reason: str | None = None, index: int = 0, **extra: Any
    ) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._body("chat.completion.chunk", choices=[choice], **extra)

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The last chunk of a stream that asked for usage: no choices, the usage."""
        return self._body("chat.completion.chunk", choices=[], usage=usage)

    def completion(self, answers: list[tuple[Answer, str]], model: Model) -> dict[str, Any]:
        """The body for n (answer, reasoning transcript) pairs, one choice each."""
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": a.content, "reasoning_content": r,
                            **({"tool_calls": [c.openai() for c in a.tool_calls]}
                               if a.tool_calls else {})},
                "logprobs": None,
                "finish_reason": a.finish_reason,
            }
            for i, (a, r) in enumerate(answers)
        ]  # fmt: skip
        return self._body(
            "chat.completion",
            choices=choices,
            usage=total_usage([a for a, _ in answers]),
            ponder=summary([a for a, _ in answers], model),
        )

    def _body(self, obj: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            **fields,
        }


def envelope(request: ChatRequest) -> Envelope:
    return Envelope(model="ponder/" + request.strategy.spec)


def runs(request: ChatRequest) -> list[ChatRequest]:
    """The request's n independent runs: run i seeded seed + i when a seed is given."""
    if request.n == 1:
        return [request]
    seed = request.strategy.sampling.seed
    return [
        dataclasses.replace(
            request,
            n=1,
            strategy=request.strategy if seed is None
            else dataclasses.replace(request.strategy, seed=seed + i),
        )
        for i in range(request.n)
    ]


def total_usage(answers: list[Answer]) -> dict[str, Any]:
    """OpenAI usage summed over the runs."""
    def add(a: dict, b: dict) -> dict:
        return {k: add(v, b[k]) if isinstance(v, dict) else v + b[k] for k, v in a.items()}

    out = answers[0].usage
    for a in answers[1:]:
        out = add(out, a.usage)
    return out


def summary(answers: list[Answer], model: Model) -> dict[str, Any]:
    """The ``ponder`` field: the first choice's summary, and with n > 1 every choice's."""
    out = answers[0].summary(model)
    if len(answers) > 1:
        out["choices"] = [a.summary(model) for a in answers]
    return out


def tool_call_deltas(answer: Answer) -> list[dict[str, Any]]:
    """The answer's calls as OpenAI streams them: a head (id, type, name) and the arguments."""
    out = []
    for j, c in enumerate(answer.tool_calls):
        head = {"index": j, "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": ""}}  # fmt: skip
        out.append({"tool_calls": [head]})
        out.append({"tool_calls": [{"index": j, "function": {"arguments": c.arguments}}]})
    return out


async def _collect(request: ChatRequest, model: Model) -> tuple[Answer, str]:
    reasoning, answer = [], None
    async with aclosing(think(request, model)) as work:
        async for item in work:
            if isinstance(item, Progress):
                reasoning.append(item.reasoning)
            else:
                answer = item
    return answer, "".join(reasoning)


async def complete(request: ChatRequest, model: Model) -> dict[str, Any]:
    """The non-streaming body. Raises ApiError when the run fails."""
    env = envelope(request)
    try:
        answers = list(await asyncio.gather(*(_collect(r, model) for r in runs(request))))
    except Exception as e:  # CancelledError (a client gone) is not an Exception: it propagates
        raise failure(e) from e
    return env.completion(answers, model)


async def _merged(request: ChatRequest, model: Model) -> AsyncIterator[tuple[int, Progress | Answer]]:
    """(choice index, item) from the n runs as they come; a failure in one ends them all."""
    parts = runs(request)
    if len(parts) == 1:
        async with aclosing(think(parts[0], model)) as work:
            async for item in work:
                yield 0, item
        return
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(i: int, r: ChatRequest) -> None:
        try:
            async with aclosing(think(r, model)) as work:
                async for item in work:
                    await queue.put((i, item))
        finally:
            await queue.put((i, done))

    tasks = [asyncio.ensure_future(pump(i, r)) for i, r in enumerate(parts)]
    try:
        left = len(tasks)
        while left:
            i, item = await queue.get()
            if item is done:
                left -= 1
                if tasks[i].done() and tasks[i].exception() is not None:
                    raise tasks[i].exception()
                continue
            yield i, item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def stream(request: ChatRequest, model: Model) -> AsyncIterator[str]:
    """The SSE text of a streaming response, produced while the strategy works."""
    env = envelope(request)
    usage_field = {"usage": None} if request.include_usage else {}  # as OpenAI: null until the end
    for i in range(request.n):
        yield sse(env.chunk({"role": "assistant", "content": ""}, index=i, **usage_field))
    try:
        answers: dict[int, Answer] = {}
        async with aclosing(_merged(request, model)) as work:
            async for i, item in work:
                if isinstance(item, Answer):
                    answers[i] = item
                    if item.content:
                        yield sse(env.chunk({"content": item.content}, index=i, **usage_field))
                    for delta in tool_call_deltas(item):
                        yield sse(env.chunk(delta, index=i, **usage_field))
                    yield sse(env.chunk({}, item.finish_reason, index=i,
                                        ponder=item.summary(model), **usage_field))  # fmt: skip
                    continue
                delta = {"reasoning_content": item.reasoning} if item.reasoning else {}
                extra = dict(usage_field)
                if request.events and item.event is not None:
                    extra["ponder"] = {"event": item.event.to_dict()}
                if delta or "ponder" in extra:
                    yield sse(env.chunk(delta, index=i, **extra))
        if request.include_usage:
            yield sse(env.usage_chunk(total_usage([answers[i] for i in sorted(answers)])))
    except Exception as e:  # noqa: BLE001 - any failure reaches the client as an error event
        yield sse(failure(e).body())
    yield DONE

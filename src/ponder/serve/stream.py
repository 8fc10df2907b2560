"""OpenAI response bodies for one request: one ``chat.completion`` JSON body, or a stream of
``chat.completion.chunk`` server-sent events.

A stream, in order (each line one ``data:`` event, sent as the work happens):

1. ``delta.role = "assistant"`` at once, before any model call;
2. ``delta.reasoning_content`` pieces: the transcript of the work (``transcript.Transcript``), token
   by token for the sample being followed; with ``ponder.events`` every strategy event also rides
   along as ``chunk["ponder"]["event"]`` (its ``to_dict()``), in chunks with an empty delta when it
   adds no text;
3. ``delta.content``: the answer (``run.Answer.content``) in one piece once the strategy has chosen
   it (a vote cannot know its winner earlier);
4. an empty delta with ``finish_reason`` and a ``ponder`` summary (answer, how, strategy, calls);
5. with ``stream_options.include_usage``, a chunk with no choices and the exact ``usage``;
6. ``data: [DONE]``.

A failure after the stream began is sent as ``data: {"error": {...}}`` (the OpenAI SDK raises it as
an APIError), then ``[DONE]``. The non-streaming body holds the same: ``message.reasoning_content``
is the whole transcript, ``message.content`` the answer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

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
    log.exception("request failed")
    return ApiError(500, "internal error in ponder serve (see the server log)", type="server_error")


@dataclass
class Envelope:
    """The fields every body and chunk of one response share."""

    model: str  # what the response reports as its model: ponder/<canonical strategy spec>
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._body("chat.completion.chunk", choices=[choice], **extra)

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The last chunk of a stream that asked for usage: no choices, the usage."""
        return self._body("chat.completion.chunk", choices=[], usage=usage)

    def completion(self, answer: Answer, reasoning: str, model: Model) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.content, "reasoning_content": reasoning}
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }
        return self._body(
            "chat.completion", choices=[choice], usage=answer.usage, ponder=answer.summary(model)
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


async def complete(request: ChatRequest, model: Model) -> dict[str, Any]:
    """The non-streaming body. Raises ApiError when the run fails."""
    env, reasoning, answer = envelope(request), [], None
    try:
        async with aclosing(think(request, model)) as work:
            async for item in work:
                if isinstance(item, Progress):
                    reasoning.append(item.reasoning)
                else:
                    answer = item
    except Exception as e:  # CancelledError (a client gone) is not an Exception: it propagates
        raise failure(e) from e
    return env.completion(answer, "".join(reasoning), model)


async def stream(request: ChatRequest, model: Model) -> AsyncIterator[str]:
    """The SSE text of a streaming response, produced while the strategy works."""
    env = envelope(request)
    usage_field = {"usage": None} if request.include_usage else {}  # as OpenAI: null until the end
    yield sse(env.chunk({"role": "assistant", "content": ""}, **usage_field))
    try:
        answer = None
        async with aclosing(think(request, model)) as work:
            async for item in work:
                if isinstance(item, Answer):
                    answer = item
                    continue
                delta = {"reasoning_content": item.reasoning} if item.reasoning else {}
                extra = dict(usage_field)
                if request.events and item.event is not None:
                    extra["ponder"] = {"event": item.event.to_dict()}
                if delta or "ponder" in extra:
                    yield sse(env.chunk(delta, **extra))
        if answer.content:
            yield sse(env.chunk({"content": answer.content}, **usage_field))
        yield sse(env.chunk({}, answer.finish_reason, ponder=answer.summary(model), **usage_field))
        if request.include_usage:
            yield sse(env.usage_chunk(answer.usage))
    except Exception as e:  # noqa: BLE001 - any failure reaches the client as an error event
        yield sse(failure(e).body())
    yield DONE

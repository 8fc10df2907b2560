"""A deterministic fake model, shipped in the package so that users can test their own code with it.

Replies come from a list (consumed in order, wrapping around) or from a function
``reply(request, sample_index) -> str | ScriptedReply``. Tokens are whitespace-separated pieces of
text (words and punctuation runs), so counts are predictable by hand; ``max_tokens``, stop strings,
logprobs and streaming behave as in a real backend.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ponder.budget import Usage
from ponder.models.base import Completion, Request, Sample, TextCallback
from ponder.models.stops import StopScanner

_TOKEN = re.compile(r"\s*\S+")


def scripted_tokens(text: str) -> list[str]:
    """The scripted model's tokenizer: each token is a run of non-space characters with the spaces
    before it, so that joining the tokens gives back the text (trailing spaces aside)."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class ScriptedReply:
    text: str
    logprobs: Sequence[float] | None = None  # one per token; default -0.1 each


Reply = str | ScriptedReply


class ScriptedModel:
    def __init__(
        self,
        replies: Sequence[Reply] | Callable[[Request, int], Reply],
        name: str = "scripted",
        token_delay: float = 0.0,
    ) -> None:
        if not callable(replies) and not replies:
            raise ValueError("ScriptedModel needs at least one reply")
        self.name = name
        self._replies = replies
        self._token_delay = token_delay
        self.requests: list[Request] = []  # every request seen, for tests to inspect
        self.samples_started = 0
        self.tokens_generated = 0

    def _next_reply(self, request: Request) -> ScriptedReply:
        i = self.samples_started
        self.samples_started += 1
        if callable(self._replies):
            reply = self._replies(request, i)
        else:
            reply = self._replies[i % len(self._replies)]
        return reply if isinstance(reply, ScriptedReply) else ScriptedReply(str(reply))

    def prompt_text(self, request: Request) -> str:
        if request.prompt is not None:
            return request.prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in request.messages or ())

    def count_prompt_tokens(self, request: Request) -> int:
        return len(scripted_tokens(self.prompt_text(request)))

    async def _one(self, request: Request, index: int, on_text: TextCallback | None) -> Sample:
        reply = self._next_reply(request)
        tokens = scripted_tokens(reply.text)
        logprobs = list(reply.logprobs) if reply.logprobs is not None else [-0.1] * len(tokens)
        if len(logprobs) != len(tokens):
            raise ValueError(f"scripted reply has {len(tokens)} tokens but {len(logprobs)} logprobs")
        scanner = StopScanner(request.stop)
        finish, used = "stop", 0
        for tok in tokens:
            if used == request.max_tokens:
                finish = "length"
                break
            if self._token_delay:
                await asyncio.sleep(self._token_delay)
            used += 1
            self.tokens_generated += 1
            piece = scanner.feed(tok)
            if on_text and piece:
                on_text(index, piece)
            if scanner.stopped:
                break
        tail = scanner.flush()
        if on_text and tail:
            on_text(index, tail)
        text = scanner.text
        return Sample(
            text=text,
            prompt_tokens=self.count_prompt_tokens(request),
            completion_tokens=used,
            finish_reason=finish,
            logprobs=logprobs[:used] if request.logprobs else None,
        )

    async def generate(self, request: Request, on_text: TextCallback | None = None) -> Completion:
        self.requests.append(request)
        start = time.perf_counter()
        samples = list(
            await asyncio.gather(*(self._one(request, i, on_text) for i in range(request.n)))
        )
        usage = Usage(
            prompt_tokens=self.count_prompt_tokens(request),  # one shared prompt, as a batched backend
            completion_tokens=sum(s.completion_tokens for s in samples),
            calls=1,
            seconds=time.perf_counter() - start,
        )
        return Completion(samples, usage)

    def describe(self) -> dict[str, Any]:
        return {"backend": "scripted", "name": self.name}

    async def aclose(self) -> None:
        return None

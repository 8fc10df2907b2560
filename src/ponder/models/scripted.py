"""A deterministic fake model, shipped in the package so that users can test their own code with it.

Replies come from a list (consumed in order, wrapping around) or from a function
``reply(request, sample_index) -> str | ScriptedReply``. Tokens are whitespace-separated pieces of
text (words and punctuation runs), so counts are predictable by hand; ``max_tokens``, stop strings,
logprobs, top logprobs, streaming and ``should_stop`` behave as in a real backend.

A chat request renders as one ``role: content`` line per message. A request that continues a
partial answer (its messages end with an assistant message, see ``Request``) renders the same way,
so its prompt ends with ``assistant: PREFIX`` and is charged for the prefix; the reply is the
continuation (a reply function reads ``request.prefix`` to decide what comes next).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ponder.budget import Usage
from ponder.models.base import Completion, Request, Sample, StopCheck, TextCallback
from ponder.models.stops import StopScanner

_TOKEN = re.compile(r"\s*\S+")


def scripted_tokens(text: str) -> list[str]:
    """The scripted model's tokenizer: each token is a run of non-space characters with the spaces
    before it, so that joining the tokens gives back the text (trailing spaces aside)."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class ScriptedReply:
    """A reply with its per-token numbers.

    ``logprobs``: one per token; default -0.1 each. ``top_logprobs``: one row per token, served
    sorted highest first and cut to the request's k; default, when a request asks for k, the row
    ``[lp, lp - 1, ..., lp - (k - 1)]`` from the token's logprob ``lp`` (the sampled token is the
    most likely one).
    """

    text: str
    logprobs: Sequence[float] | None = None
    top_logprobs: Sequence[Sequence[float]] | None = None


Reply = str | ScriptedReply


class ScriptedModel:
    def __init__(
        self,
        replies: Sequence[Reply] | Callable[[Request, int], Reply],
        name: str = "scripted",
        token_delay: float = 0.0,
        context_length: int | None = None,
    ) -> None:
        if not callable(replies) and not replies:
            raise ValueError("ScriptedModel needs at least one reply")
        self.name = name
        self.context_length = context_length  # None: unbounded (prompts are never refused)
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
        """The rendered prompt; a continuation ends with ``assistant: PREFIX`` (no end of turn)."""
        if request.prompt is not None:
            return request.prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in request.messages or ())

    def count_prompt_tokens(self, request: Request) -> int:
        return len(scripted_tokens(self.prompt_text(request)))

    async def _one(
        self,
        request: Request,
        index: int,
        on_text: TextCallback | None,
        should_stop: StopCheck | None,
    ) -> Sample:
        reply = self._next_reply(request)
        tokens = scripted_tokens(reply.text)
        logprobs = list(reply.logprobs) if reply.logprobs is not None else [-0.1] * len(tokens)
        if len(logprobs) != len(tokens):
            raise ValueError(f"scripted reply has {len(tokens)} tokens but {len(logprobs)} logprobs")
        k = request.top_logprobs
        if reply.top_logprobs is not None:
            if len(reply.top_logprobs) != len(tokens):
                rows = len(reply.top_logprobs)
                raise ValueError(f"scripted reply has {len(tokens)} tokens but {rows} top_logprobs")
            top = [sorted(map(float, row), reverse=True)[:k] for row in reply.top_logprobs]
        else:
            top = [[lp - j for j in range(k)] for lp in logprobs]
        scanner = StopScanner(request.stop)
        # The partial sample should_stop sees; it becomes the final sample.
        sample = Sample(
            text="",
            prompt_tokens=self.count_prompt_tokens(request),
            completion_tokens=0,
            finish_reason="",
            logprobs=[] if request.logprobs else None,
            top_logprobs=[] if k else None,
        )
        finish = "stop"
        for j, tok in enumerate(tokens):
            if j == request.max_tokens:
                finish = "length"
                break
            if self._token_delay:
                await asyncio.sleep(self._token_delay)
            self.tokens_generated += 1
            sample.completion_tokens += 1
            if sample.logprobs is not None:
                sample.logprobs.append(logprobs[j])
            if sample.top_logprobs is not None:
                sample.top_logprobs.append(top[j])
            piece = scanner.feed(tok)
            sample.text = scanner.text
            if on_text and piece:
                on_text(index, piece)
            if scanner.stopped:
                break
            last = j + 1 == len(tokens) or j + 1 == request.max_tokens
            if should_stop is not None and not last and should_stop(index, sample):
                finish = "cancelled"
                break
        tail = scanner.flush()
        if on_text and tail:
            on_text(index, tail)
        sample.text, sample.finish_reason = scanner.text, finish
        return sample

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        """Draw the samples concurrently (interleaved when ``token_delay`` > 0).

        ``should_stop(i, partial)`` runs on the event loop after every token that does not end
        sample i anyway (its last token, a stop string, ``max_tokens``).
        """
        self.requests.append(request)
        start = time.perf_counter()
        samples = list(
            await asyncio.gather(
                *(self._one(request, i, on_text, should_stop) for i in range(request.n))
            )
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

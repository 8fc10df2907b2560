"""OpenAI-compatible HTTP backend: any server that speaks `/v1/chat/completions` (vLLM, SGLang,
llama.cpp server, Ollama, OpenAI itself), through the official async `openai` SDK.

Chat requests go to chat.completions, raw-text requests to the legacy completions endpoint. Token
counts come from the server's ``usage`` report, never from a local tokenizer (there is none over
HTTP). Retries with exponential backoff on 429/5xx/timeouts/connection errors are the SDK's own
(``max_retries``; it honours ``Retry-After``). Servers that ignore ``n`` are detected and served by
parallel single requests instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import time
from typing import Any

from ponder.budget import Usage
from ponder.models.base import Completion, ModelError, Request, Sample, TextCallback

try:
    import openai
except ImportError as exc:  # pragma: no cover - openai is a declared dependency
    raise ModelError("the openai backend needs the `openai` package: pip install openai") from exc

_LENGTH_REASONS = {"length", "max_tokens", "model_length"}


def _finish(reason: str | None) -> str:
    # Servers disagree ("eos", "stop_sequence", None, ...); the protocol knows only two outcomes.
    return "length" if reason in _LENGTH_REASONS else "stop"


def _split(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder); the parts add up exactly."""
    if not weights:
        return []
    wsum = sum(weights)
    if wsum <= 0:
        weights, wsum = [1] * len(weights), len(weights)
    exact = [total * w / wsum for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


class _Choice:
    """One choice as it is assembled (from a full response or from stream chunks)."""

    def __init__(self) -> None:
        self.text = ""
        self.chunks = 0  # stream chunks that carried text: about one token each
        self.logprobs: list[float] | None = None
        self.finish: str | None = None

    def add_logprobs(self, values: list[Any] | None) -> None:
        if values is not None:
            self.logprobs = (self.logprobs or []) + [float(v) for v in values if v is not None]


def _logprob_values(lp: Any, chat: bool) -> list[Any] | None:
    if lp is None:
        return None
    if chat:
        return None if lp.content is None else [t.logprob for t in lp.content]
    return lp.token_logprobs


class OpenAIModel:
    """A model served over HTTP by an OpenAI-compatible server (``openai:MODEL@BASE_URL``).

    At most ``max_concurrency`` requests are in flight at once per instance; each is retried up to
    ``max_retries`` times by the SDK and times out after ``timeout`` seconds.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 4,
        timeout: float = 120.0,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ModelError(
                f"no server URL for OpenAI model {model!r}: use openai:{model}@http://HOST:PORT/v1 "
                "or set OPENAI_BASE_URL"
            )
        self.name = model
        self.base_url = base_url.rstrip("/")
        # vLLM/llama.cpp servers accept any key unless started with one; "EMPTY" is the convention.
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._max_concurrency = max_concurrency
        self._max_retries = max_retries
        self._timeout = timeout
        self.lacks_n = False  # learnt on the first n>1 call that gets fewer choices than asked
        self.honours_n = False  # learnt on the first n>1 call that gets all its choices
        # The client's connection pool and the semaphore belong to one event loop; the object may be
        # built outside any loop and used under several asyncio.run() calls, so both are made lazily
        # and remade when the running loop changes.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._sem: asyncio.Semaphore | None = None

    def _bind(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._client is None or self._sem is None or self._loop is not loop:
            self._loop = loop
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=self._max_retries,  # backoff 0.5s*2^k (max 8s), honours Retry-After
                timeout=self._timeout,
            )
            self._sem = asyncio.Semaphore(self._max_concurrency)
        return self._client, self._sem

    def count_prompt_tokens(self, request: Request) -> int:
        """An ESTIMATE of the prompt's tokens: characters / 3 (rounded up) plus 8 per chat message.

        There is no tokenizer over HTTP, so this errs high and is used only for budget planning;
        the tokens actually charged come from the server's ``usage`` report. Until the server has
        shown that it honours ``n``, an n-sample request is planned as n single requests (the prompt
        charged n times), so that a budget is never overspent by the fallback.
        """
        if request.prompt is not None:
            per_call = math.ceil(len(request.prompt) / 3)
        else:
            per_call = sum(math.ceil(len(m.get("content", "")) / 3) + 8 for m in request.messages or ())
        return per_call if self.honours_n else per_call * request.n

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.name, "base_url": self.base_url}

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = self._sem = self._loop = None

    async def generate(self, request: Request, on_text: TextCallback | None = None) -> Completion:
        """Draw ``request.n`` samples.

        Per-sample ``completion_tokens``: servers report only a total per response. With one
        choice per response that total is the sample's. With n choices in one response it is the
        number of logprob entries when logprobs came back; otherwise the total is split in
        proportion to each choice's length (characters, or text chunks when streamed, ~1 token
        each), so that the samples add up exactly to what the server charged.
        """
        start = time.perf_counter()
        try:
            if request.n > 1 and self.lacks_n:
                results = await asyncio.gather(
                    *(self._call(request, 1, i, on_text) for i in range(request.n))
                )
            else:
                results = [await self._call(request, request.n, 0, on_text)]
                got = len(results[0][0])
                if got == 0:
                    raise ModelError(f"server at {self.base_url} returned no completion choices")
                if request.n > 1 and got == request.n:
                    self.honours_n = True
                if got < request.n:
                    self.lacks_n = True  # remember: later calls go straight to single requests
                    results += await asyncio.gather(
                        *(self._call(request, 1, i, on_text) for i in range(got, request.n))
                    )
        except openai.APIError as exc:
            raise self._user_error(exc) from None
        samples = [s for batch, _ in results for s in batch][: request.n]
        usage = Usage(
            prompt_tokens=sum(u[0] for _, u in results),
            completion_tokens=sum(u[1] for _, u in results),
            calls=len(results),
            seconds=time.perf_counter() - start,
        )
        return Completion(samples, usage)

    async def _call(
        self, request: Request, n: int, first: int, on_text: TextCallback | None
    ) -> tuple[list[Sample], tuple[int, int]]:
        """One HTTP request for ``n`` choices, reported as samples ``first``, ``first+1``, ...

        Returns the samples and (prompt_tokens, completion_tokens) for the request.
        """
        client, sem = self._bind()
        chat = request.messages is not None
        args: dict[str, Any] = {
            "model": self.name,
            "n": n,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.stop:
            args["stop"] = list(request.stop)
        if request.seed is not None:
            # Distinct seeds for single requests, or the n "samples" would be identical.
            args["seed"] = request.seed + first
        if request.logprobs:
            args["logprobs"] = True if chat else 1
        if chat:
            args["messages"] = [dict(m) for m in request.messages or ()]
            create = client.chat.completions.create
        else:
            args["prompt"] = request.prompt
            create = client.completions.create

        choices: dict[int, _Choice] = {}
        usage = None
        async with sem:  # held for the whole request, stream included: that is the server's load
            if on_text is None:
                resp = await create(**args)
                usage = resp.usage
                for c in resp.choices:
                    ch = choices.setdefault(c.index, _Choice())
                    ch.text = (c.message.content or "") if chat else c.text
                    ch.finish = c.finish_reason
                    ch.add_logprobs(_logprob_values(c.logprobs, chat))
            else:
                stream = await create(
                    **args, stream=True, stream_options={"include_usage": True}
                )
                async with stream:
                    async for chunk in stream:
                        if chunk.usage is not None:
                            usage = chunk.usage
                        for c in chunk.choices:
                            ch = choices.setdefault(c.index, _Choice())
                            piece = (c.delta.content or "") if chat else c.text
                            if piece:
                                ch.text += piece
                                ch.chunks += 1
                                on_text(first + c.index, piece)
                            ch.add_logprobs(_logprob_values(c.logprobs, chat))
                            if c.finish_reason:
                                ch.finish = c.finish_reason

        ordered = [choices[k] for k in sorted(choices)]
        if usage is not None:
            prompt_tokens, total = usage.prompt_tokens, usage.completion_tokens
        else:
            # The server sent no usage chunk (some ignore stream_options): fall back to our prompt
            # estimate and to one token per text chunk, which is how servers stream.
            prompt_tokens = self.count_prompt_tokens(dataclasses.replace(request, n=1))
            total = sum(c.chunks for c in ordered)
        if len(ordered) == 1:
            per_choice = [total]
        elif all(c.logprobs is not None for c in ordered):
            per_choice = [len(c.logprobs or ()) for c in ordered]
        else:
            per_choice = _split(total, [c.chunks if on_text else len(c.text) for c in ordered])
        samples = [
            Sample(
                text=c.text,
                prompt_tokens=prompt_tokens,
                completion_tokens=k,
                finish_reason=_finish(c.finish),
                logprobs=c.logprobs if request.logprobs else None,
            )
            for c, k in zip(ordered, per_choice)
        ]
        return samples, (prompt_tokens, total)

    def _user_error(self, exc: openai.APIError) -> Exception:
        """One-line ModelErrors for setup mistakes; anything else (e.g. a 400 that means our request
        was malformed) keeps the SDK's error, whose traceback is then useful."""
        url = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(
                f"OpenAI-compatible server at {url} did not answer within {self._timeout:g}s"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = " ".join(str(exc.__cause__ or exc).split()) or type(exc.__cause__).__name__
            return ModelError(f"cannot reach OpenAI-compatible server at {url}: {cause}")
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ModelError(f"server at {url} rejected the API key (set OPENAI_API_KEY)")
        if isinstance(exc, openai.NotFoundError):
            return ModelError(
                f"server at {url} has no model {self.name!r} "
                "(or no such endpoint: does the URL end in /v1?)"
            )
        if isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500):
            # Only after the SDK's retries are spent: the server is down or overloaded.
            message = " ".join(str(exc.message).split())
            return ModelError(
                f"server at {url} kept failing (HTTP {exc.status_code}) "
                f"after {self._max_retries} retries: {message}"
            )
        return exc

"""OpenAI-compatible HTTP backend: any server that speaks `/v1/chat/completions` (vLLM, SGLang,
llama.cpp server, Ollama, OpenAI itself), through the official async `openai` SDK.

Chat requests go to chat.completions, raw-text requests to the legacy completions endpoint. Token
counts come from the server's ``usage`` report, never from a local tokenizer (there is none over
HTTP). Retries with exponential backoff on 429/5xx/timeouts/connection errors are the SDK's own
(``max_retries``; it honours ``Retry-After``). Servers that ignore ``n`` are detected and served by
parallel single requests instead.

``should_stop`` needs the tokens as they come, so a request with one is always streamed, and one
with n > 1 becomes n parallel single-sample streams, so that one sample can be stopped without the
others. Stopping a sample closes its stream: the connection goes, and servers such as vLLM abort a
request whose connection closed.

A continuation (chat messages ending with a partial assistant answer, see ``Request``) is sent as it
is, with ``continue_final_message: true, add_generation_prompt: false`` in the body: vLLM's and
SGLang's names for "render the last assistant message without its end of turn and continue it".
A server that lacks them may ignore the fields and start a new assistant turn instead (the text
then does not continue the prefix); OpenAI's own API is such a server.

Client tools are native here (``native_tools``): ``Request.tools`` goes to the server as ``tools``,
``tool_choice`` and ``parallel_tool_calls`` (sent only when false), the conversation's assistant
``tool_calls`` and ``tool`` turns as OpenAI messages, and the calls the server answers with (whole,
or assembled from streamed ``delta.tool_calls`` pieces by their index) become the sample's
``tool_calls``. The server must support them (vLLM with ``--enable-auto-tool-choice
--tool-call-parser ...``, SGLang with ``--tool-call-parser``, llama.cpp's server with ``--jinja``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import time
from typing import Any

from ponder.budget import Usage
from ponder.models.base import (
    Completion,
    Message,
    ModelError,
    Request,
    Sample,
    StopCheck,
    TextCallback,
)
from ponder.problems.conversation import ToolCall

try:
    import openai
except ImportError as exc:  # pragma: no cover - openai is a declared dependency
    raise ModelError("the openai backend needs the `openai` package: pip install openai") from exc

_LENGTH_REASONS = {"length", "max_tokens", "model_length"}


def _finish(reason: str | None) -> str:
    # Servers disagree ("eos", "stop_sequence", None, ...); the protocol knows "stop" and "length"
    # (and "cancelled", which only we set).
    if reason in ("cancelled", "incomplete"):
        return reason
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


def _wire(m: Message) -> dict[str, Any]:
    """A message as OpenAI takes it (assistant calls in their wire form)."""
    out = dict(m)
    if m.get("tool_calls"):
        out["tool_calls"] = [c.openai() for c in m["tool_calls"]]
        out["content"] = m.get("content") or None
    return out


class _Choice:
    """One choice as it is assembled (from a full response or from stream chunks)."""

    def __init__(self) -> None:
        self.text = ""
        self.chunks = 0  # stream chunks that carried text or call pieces: about one token each
        self.calls: dict[int, list[str]] = {}  # tool call index -> [id, name, arguments so far]
        self.logprobs: list[float] | None = None
        self.top_logprobs: list[list[float]] | None = None
        self.finish: str | None = None
        self.partial: Sample | None = None  # what should_stop sees, made on first use

    def add_logprobs(self, lp: Any, chat: bool, k: int) -> bool:
        """Append the entries of one logprobs object; k > 0 also keeps the top k (highest first)
        at each position. Returns whether there were any."""
        if lp is None or (lp.content if chat else lp.token_logprobs) is None:
            return False
        if chat:
            entries = [(t.logprob, [a.logprob for a in t.top_logprobs or ()]) for t in lp.content]
        else:  # completions: top_logprobs is one {token: logprob} dict per position
            tops = lp.top_logprobs or []
            entries = [
                (v, list((tops[j] or {}).values()) if j < len(tops) else [])
                for j, v in enumerate(lp.token_logprobs)
            ]
        entries = [(v, top) for v, top in entries if v is not None]
        if self.logprobs is None:
            self.logprobs = []
        self.logprobs += [float(v) for v, _ in entries]
        if k:
            if self.top_logprobs is None:
                self.top_logprobs = []
            self.top_logprobs += [sorted(map(float, top), reverse=True)[:k] for _, top in entries]
        return bool(entries)

    def add_calls(self, calls: Any) -> bool:
        """Merge tool calls (a full message's, or one stream delta's pieces, by their index)."""
        for j, c in enumerate(calls or ()):
            index = getattr(c, "index", None)
            call = self.calls.setdefault(j if index is None else index, ["", "", ""])
            f = getattr(c, "function", None)  # None: a custom tool's call, which we never offer
            call[0] = c.id or call[0]
            call[1] = (f.name or call[1]) if f is not None else call[1]
            call[2] += (f.arguments or "") if f is not None else ""
        return bool(calls)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(cid or f"call_{j}", name, args or "{}")
            for j, (cid, name, args) in sorted(self.calls.items())
        )

    @property
    def tokens(self) -> int:
        """Tokens received: exact when logprobs came (one entry each), else one per text chunk."""
        return len(self.logprobs) if self.logprobs is not None else self.chunks

    def snapshot(self, request: Request) -> Sample:
        """The partial sample, updated in place (its prompt_tokens is 0: the server reports that
        at the end)."""
        if self.partial is None:
            self.partial = Sample("", 0, 0, "")
        s = self.partial
        s.text, s.completion_tokens = self.text, self.tokens
        if request.logprobs:
            s.logprobs = self.logprobs if self.logprobs is not None else []
        if request.top_logprobs:
            s.top_logprobs = self.top_logprobs if self.top_logprobs is not None else []
        return s


class OpenAIModel:
    """A model served over HTTP by an OpenAI-compatible server (``openai:MODEL@BASE_URL``).

    At most ``max_concurrency`` requests are in flight at once per instance; each is retried up to
    ``max_retries`` times by the SDK and times out after ``timeout`` seconds.
    """

    # Prompt counts are estimates (no tokenizer over HTTP): the budget meter charges what the
    # server reports and does not hold a call to its estimated plan (see think.meter).
    exact_usage = False
    native_tools = True  # Request.tools go to the server (see the module's docstring)

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
            per_call = sum(
                math.ceil(len(json.dumps(_wire(m), ensure_ascii=False)) / 3) + 8
                if m.get("tool_calls") else math.ceil(len(m.get("content") or "") / 3) + 8
                for m in request.messages or ()
            )  # fmt: skip
            if request.tools is not None:  # the server renders the schemas into the prompt
                per_call += math.ceil(len(json.dumps(request.tools.openai_tools())) / 3) + 8
        return per_call if self.honours_n else per_call * request.n

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.name, "base_url": self.base_url}

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = self._sem = self._loop = None

    async def generate(
        self,
        request: Request,
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Completion:
        """Draw ``request.n`` samples.

        Per-sample ``completion_tokens``: servers report only a total per response. With one
        choice per response that total is the sample's. With n choices in one response it is the
        number of logprob entries when logprobs came back; otherwise the total is split in
        proportion to each choice's length (characters, or text chunks when streamed, ~1 token
        each), so that the samples add up exactly to what the server charged.

        ``should_stop(i, partial)`` runs on the event loop after each stream chunk that carried
        tokens of sample i (one token per chunk from vLLM, SGLang, llama.cpp), unless the sample
        has reached ``max_tokens``; ``partial.prompt_tokens`` is 0 until the end. A stopped
        sample's stream is closed, so no usage report comes for it: its completion tokens are
        those received (the logprob entries when logprobs were asked for, else one per text
        chunk), and its prompt is charged as a sibling stream's report says (our estimate if no
        stream of the call finished). Tokens the server generated after the last chunk read are
        not seen, hence not charged.
        """
        start = time.perf_counter()
        try:
            if request.n > 1 and (self.lacks_n or should_stop is not None):
                results = await asyncio.gather(
                    *(self._call(request, 1, i, on_text, should_stop) for i in range(request.n))
                )
            else:
                results = [await self._call(request, request.n, 0, on_text, should_stop)]
                got = len(results[0][0])
                if got == 0:
                    raise ModelError(f"server at {self.base_url} returned no completion choices")
                if request.n > 1 and got == request.n:
                    self.honours_n = True
                if got < request.n:
                    self.lacks_n = True  # remember: later calls go straight to single requests
                    results += await asyncio.gather(
                        *(
                            self._call(request, 1, i, on_text, should_stop)
                            for i in range(got, request.n)
                        )
                    )
            results = await self._retry_incomplete(request, results, on_text, should_stop)
        except openai.APIError as exc:
            raise self._user_error(exc) from None
        reported = [u[0] for _, u, exact in results if exact]
        if reported:  # same prompt: a stream cut before its usage report is charged like the others
            for batch, u, exact in results:
                if not exact:
                    u[0] = reported[0]
                    for s in batch:
                        s.prompt_tokens = reported[0]
        samples = [s for batch, _, _ in results for s in batch][: request.n]
        usage = Usage(
            prompt_tokens=sum(u[0] for _, u, _ in results),
            completion_tokens=sum(u[1] for _, u, _ in results),
            calls=len(results),
            seconds=time.perf_counter() - start,
        )
        return Completion(samples, usage)

    async def _retry_incomplete(self, request, results, on_text, should_stop):
        """Ask once more for each sample whose stream was cut (no finish reason: the server
        dropped it). The retry's sample replaces it; both calls are charged (both were computed).
        A retry that is cut too stays ``incomplete``, for the strategy to warn about."""
        extra = []
        first = 0
        for batch, _, _ in results:
            for j, s in enumerate(batch):
                if s.finish_reason == "incomplete":
                    again = await self._call(request, 1, first + j, on_text, should_stop)
                    batch[j] = again[0][0]
                    extra.append(([], again[1], again[2]))
            first += len(batch)
        return results + extra

    async def _call(
        self,
        request: Request,
        n: int,
        first: int,
        on_text: TextCallback | None,
        should_stop: StopCheck | None = None,
    ) -> tuple[list[Sample], list[int], bool]:
        """One HTTP request for ``n`` choices, reported as samples ``first``, ``first+1``, ...

        Returns the samples, [prompt_tokens, completion_tokens] for the request, and whether the
        server reported them (False: counted from the chunks received, the prompt estimated).
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
        k = request.top_logprobs
        if request.logprobs:
            args["logprobs"] = True if chat else max(k, 1)
            if chat and k:
                args["top_logprobs"] = k
        if chat:
            args["messages"] = [_wire(m) for m in request.messages or ()]
            if request.tools is not None:
                args["tools"] = request.tools.openai_tools()
                args["tool_choice"] = request.tools.openai_choice()
                if not request.tools.parallel:
                    args["parallel_tool_calls"] = False
            if request.prefix is not None:  # continue the partial answer (vLLM / SGLang fields)
                args["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
            create = client.chat.completions.create
        else:
            args["prompt"] = request.prompt
            create = client.completions.create

        choices: dict[int, _Choice] = {}
        usage = None
        async with sem:  # held for the whole request, stream included: that is the server's load
            if on_text is None and should_stop is None:
                resp = await create(**args)
                usage = resp.usage
                for c in resp.choices:
                    ch = choices.setdefault(c.index, _Choice())
                    ch.text = (c.message.content or "") if chat else c.text
                    if chat:
                        ch.add_calls(c.message.tool_calls)
                    ch.finish = c.finish_reason
                    ch.add_logprobs(c.logprobs, chat, k)
            else:
                stream = await create(
                    **args, stream=True, stream_options={"include_usage": True}
                )
                async with stream:  # leaving it closes the connection: the server aborts
                    stopped = False
                    async for chunk in stream:
                        if chunk.usage is not None:
                            usage = chunk.usage
                        for c in chunk.choices:
                            ch = choices.setdefault(c.index, _Choice())
                            piece = (c.delta.content or "") if chat else c.text
                            if piece:
                                ch.text += piece
                                ch.chunks += 1
                                if on_text is not None:
                                    on_text(first + c.index, piece)
                            called = chat and ch.add_calls(c.delta.tool_calls)
                            ch.chunks += bool(called)  # a piece of a call: about one token
                            got = ch.add_logprobs(c.logprobs, chat, k)
                            if c.finish_reason:
                                ch.finish = c.finish_reason
                            elif (
                                should_stop is not None
                                and (piece or got or called)
                                and ch.tokens < request.max_tokens
                                and should_stop(first + c.index, ch.snapshot(request))
                            ):
                                ch.finish = "cancelled"
                                stopped = True
                        if stopped:  # one choice per stream when should_stop is given
                            break
                for ch in choices.values():  # a stream that ended with no finish reason was cut
                    if ch.finish is None:
                        ch.finish = "incomplete"

        ordered = [choices[j] for j in sorted(choices)]
        if usage is not None:
            prompt_tokens, total = usage.prompt_tokens, usage.completion_tokens
        else:
            # No usage chunk: the stream was stopped, or the server ignores stream_options. Fall
            # back to our prompt estimate and to the tokens received.
            prompt_tokens = self.count_prompt_tokens(dataclasses.replace(request, n=1))
            total = sum(c.tokens for c in ordered)
        if len(ordered) == 1:
            per_choice = [total]
        elif all(c.logprobs is not None for c in ordered):
            per_choice = [len(c.logprobs or ()) for c in ordered]
        else:
            streamed = on_text is not None or should_stop is not None
            per_choice = _split(total, [c.chunks if streamed else len(c.text) for c in ordered])
        samples = [
            Sample(
                text=c.text,
                prompt_tokens=prompt_tokens,
                completion_tokens=used,
                finish_reason=_finish(c.finish),
                logprobs=c.logprobs if request.logprobs else None,
                top_logprobs=(c.top_logprobs or []) if k else None,
                tool_calls=c.tool_calls(),
            )
            for c, used in zip(ordered, per_choice)
        ]
        return samples, [prompt_tokens, total], usage is not None

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

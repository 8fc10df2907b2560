"""A tiny OpenAI-compatible HTTP server for tests (standard library only).

Serves ``/v1/chat/completions`` (JSON and SSE streaming), ``/v1/completions`` and ``/v1/models`` on
127.0.0.1 at a free port, from a list of scripted replies (consumed in order, wrapping around).
A token is a whitespace-separated word (with the spaces before it, so tokens join back to the text).
Logprobs are deterministic (``logprob_of``; the j-th of the top logprobs at a position is
``logprob_of(k) - j``). A streaming client that hangs up is noticed at the next write that fails: the
request's record then says ``aborted`` and how many tokens were actually written (``streamed_tokens``).

    with StubServer(["Hello world"], honour_n=False) as srv:
        ...  # srv.base_url, srv.requests

A reply may also be a dict ``{"content": str, "tool_calls": [{"name", "arguments"}]}``: the choice
then answers with those calls (native function calling), ``finish_reason: "tool_calls"``; streamed
as OpenAI does, a head delta (id, type, name) then the arguments in two pieces.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOKEN = re.compile(r"\s*\S+")


def words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def logprob_of(k: int) -> float:
    """The stub's logprob for the k-th token of a reply (deterministic, so tests can check it)."""
    return -0.25 * (k + 1)


class StubServer:
    def __init__(
        self,
        replies: Sequence[str] = ("Hello there world",),
        *,
        honour_n: bool = True,
        fail_first: Sequence[int] = (),
        api_key: str | None = None,
        models: Sequence[str] = ("stub-model",),
        stream_usage: bool = True,
        delay: float = 0.0,
        retry_after: str = "0",
        token_delay: float = 0.0,
        interrupt_first: int = 0,
        interrupt_after: int = 2,
    ) -> None:
        self.replies = list(replies)
        # the first `interrupt_first` streams end after `interrupt_after` tokens with no finish
        # reason, no usage and no [DONE], as a server that drops concurrent requests does
        self.interrupt_first, self.interrupt_after = interrupt_first, interrupt_after
        self.honour_n = honour_n
        self.fail_first = list(fail_first)
        self.api_key = api_key
        self.models = list(models)
        self.stream_usage = stream_usage  # False: ignore stream_options, like some servers do
        self.retry_after = retry_after  # Retry-After header sent with scripted 429s
        self.delay = delay  # seconds each completion request takes, to observe concurrency
        self.token_delay = token_delay  # seconds before each streamed token, to stop a stream mid-way
        # every POST: {"path", "body", "status", "time"}; streamed ones also "streamed_tokens" and
        # "aborted" (the client closed the connection before the end)
        self.requests: list[dict[str, Any]] = []
        self.inflight = 0
        self.max_inflight = 0  # most completion requests being served at once
        self._lock = threading.Lock()
        self._next_reply = 0
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> StubServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- behaviour ---------------------------------------------------------------------------
    def take_reply(self) -> str | dict:
        with self._lock:
            text = self.replies[self._next_reply % len(self.replies)]
            self._next_reply += 1
            return text

    def record(self, path: str, body: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        """Record a request; return the status it must fail with, if it is one of the first ones,
        and its record."""
        with self._lock:
            status = self.fail_first.pop(0) if self.fail_first else None
            entry = {"path": path, "body": body, "status": status or 200, "time": time.monotonic()}
            self.requests.append(entry)
            return status, entry


def _prompt_words(body: dict[str, Any]) -> int:
    if "messages" in body:
        return sum(len(words(m.get("content") or "")) for m in body["messages"])
    return len(words(body.get("prompt", "")))


class _Tokens(list):
    """A choice's tokens, and the tool calls it answers with (``calls``)."""

    calls: list[dict[str, Any]] = []


def _make_choice_tokens(body: dict[str, Any], reply: str | dict) -> tuple[list[str], str]:
    calls = reply.get("tool_calls") if isinstance(reply, dict) else None
    toks = _Tokens(words(reply.get("content") or "" if isinstance(reply, dict) else reply))
    finish = "tool_calls" if calls else "stop"
    limit = body.get("max_tokens")
    if limit is not None and len(toks) > limit:
        toks, finish = _Tokens(toks[:limit]), "length"
    if calls:
        toks.calls = [
            {"id": f"call_stub{j}", "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for j, c in enumerate(calls)
        ]  # fmt: skip
    return toks, finish


def _calls_of(toks: list[str]) -> list[dict[str, Any]]:
    return getattr(toks, "calls", [])


def _make_handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(status, {"error": {"message": message, "type": "error", "code": status}}, headers)

        def _authorised(self) -> bool:
            if stub.api_key is None or self.headers.get("Authorization") == f"Bearer {stub.api_key}":
                return True
            self._error(401, "Incorrect API key provided")
            return False

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path.rstrip("/") == "/v1/models":
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in stub.models]
                self._json(200, {"object": "list", "data": data})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            chat = self.path == "/v1/chat/completions"
            if not chat and self.path != "/v1/completions":
                self._error(404, f"no route {self.path}")
                return
            fail, entry = stub.record(self.path, body)
            if not self._authorised():
                return
            if fail is not None:
                self._error(fail, f"scripted failure {fail}", {"Retry-After": stub.retry_after} if fail == 429 else None)
                return
            if body.get("model") not in stub.models:
                self._error(404, f"The model `{body.get('model')}` does not exist.")
                return
            n = int(body.get("n") or 1) if stub.honour_n else 1
            choices = [_make_choice_tokens(body, stub.take_reply()) for _ in range(n)]
            logprobs = bool(body.get("logprobs"))
            # chat: logprobs=True, top_logprobs=k; completions: logprobs=k (an int)
            top_k = int(body.get("top_logprobs") or 0) if chat else int(body.get("logprobs") or 0)
            usage = {
                "prompt_tokens": _prompt_words(body),
                "completion_tokens": sum(len(t) for t, _ in choices),
            }
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            with stub._lock:
                stub.inflight += 1
                stub.max_inflight = max(stub.max_inflight, stub.inflight)
            try:
                time.sleep(stub.delay)
                if body.get("stream"):
                    entry["streamed_tokens"], entry["aborted"] = 0, False
                    try:
                        self._stream(body, chat, choices, logprobs, top_k, usage, entry)
                    except (BrokenPipeError, ConnectionResetError):
                        entry["aborted"] = True  # the client hung up: stop generating, as vLLM does
                        self.close_connection = True
                else:
                    self._json(200, _full_response(body, chat, choices, logprobs, top_k, usage))
            finally:
                with stub._lock:
                    stub.inflight -= 1

        def _stream(self, body, chat, choices, logprobs, top_k, usage, entry) -> None:  # type: ignore[no-untyped-def]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
            include_usage = stub.stream_usage and (body.get("stream_options") or {}).get("include_usage")
            base = _envelope(body, chat, chunk=True)
            if include_usage:
                base["usage"] = None

            def send(obj: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.wfile.flush()

            with stub._lock:
                cut = stub.interrupt_first > 0
                stub.interrupt_first -= cut
            if cut:  # a stream the server drops: a few tokens, then the connection closes
                entry["interrupted"] = True
                for k, tok in enumerate(choices[0][0][: stub.interrupt_after]):
                    send({**base, "choices": [_piece(0, tok, k, chat, logprobs, top_k)]})
                return
            # Interleave the choices token by token, as a batching server does.
            for k in range(max(len(t) for t, _ in choices)):
                for i, (toks, _) in enumerate(choices):
                    if k < len(toks):
                        time.sleep(stub.token_delay)
                        send({**base, "choices": [_piece(i, toks[k], k, chat, logprobs, top_k)]})
                        entry["streamed_tokens"] += 1
            for i, (toks, _) in enumerate(choices):
                for j, call in enumerate(_calls_of(toks)):
                    head = {"index": j, "id": call["id"], "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""}}
                    args = call["function"]["arguments"]
                    pieces = [args[: len(args) // 2], args[len(args) // 2 :]]
                    for delta in [head] + [{"index": j, "function": {"arguments": p}} for p in pieces]:
                        piece = {"index": i, "finish_reason": None, "logprobs": None,
                                 "delta": {"tool_calls": [delta]}}
                        send({**base, "choices": [piece]})
            for i, (_, finish) in enumerate(choices):
                end = {"index": i, "finish_reason": finish, "logprobs": None}
                end.update({"delta": {}} if chat else {"text": ""})
                send({**base, "choices": [end]})
            if include_usage:
                send({**base, "choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def _envelope(body: dict[str, Any], chat: bool, chunk: bool = False) -> dict[str, Any]:
    obj = ("chat.completion.chunk" if chunk else "chat.completion") if chat else "text_completion"
    return {"id": "stub-1", "object": obj, "created": int(time.time()), "model": body.get("model")}


def _logprobs(toks: list[str], offset: int, chat: bool, top_k: int) -> dict[str, Any]:
    values = [logprob_of(offset + k) for k in range(len(toks))]
    # The top k alternatives, highest first: the sampled token itself, then made-up ones below it.
    tops = [[(t if j == 0 else f"alt{j}", v - j) for j in range(top_k)] for t, v in zip(toks, values)]
    if chat:
        content = [
            {
                "token": t,
                "logprob": v,
                "bytes": None,
                "top_logprobs": [{"token": a, "logprob": x, "bytes": None} for a, x in top],
            }
            for t, v, top in zip(toks, values, tops)
        ]
        return {"content": content}
    top_logprobs = [dict(top) for top in tops] if top_k else None
    return {"tokens": toks, "token_logprobs": values, "top_logprobs": top_logprobs, "text_offset": [0] * len(toks)}


def _piece(i: int, tok: str, k: int, chat: bool, logprobs: bool, top_k: int) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": i, "finish_reason": None}
    piece["logprobs"] = _logprobs([tok], k, chat, top_k) if logprobs else None
    piece.update({"delta": {"role": "assistant", "content": tok}} if chat else {"text": tok})
    return piece


def _full_response(body, chat, choices, logprobs, top_k, usage) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out = []
    for i, (toks, finish) in enumerate(choices):
        c: dict[str, Any] = {"index": i, "finish_reason": finish}
        c["logprobs"] = _logprobs(toks, 0, chat, top_k) if logprobs else None
        text = "".join(toks)
        c.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        if chat and _calls_of(toks):
            c["message"]["tool_calls"] = _calls_of(toks)
            c["message"]["content"] = text or None
        out.append(c)
    return {**_envelope(body, chat), "choices": out, "usage": usage}

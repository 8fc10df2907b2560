"""The FastAPI app: ``create_app(model, settings)``.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``, and ``GET /``, the
live page.

State: the app holds the model (shared by every request, loaded once by the caller), the settings
and the concurrency gate, nothing else. Each request parses its own ``ChatRequest`` (strategy
object, budget, sampling settings) and keeps it in its own handler, so concurrent requests with
different strategies cannot see each other's settings.

Cancellation: the work of a request runs as a task raced against the client's disconnect (ASGI
``http.disconnect``). When the client goes away first the task is cancelled; cancelling closes the
strategy's event generator, which cancels its in-flight model calls (the llama.cpp backend stops at
its next decode step; HTTP backends drop the connection) and starts no new ones. Waiting for the
disconnect instead of for a failed write matters: a strategy can work for a long time without
writing anything (a judge call, held-back samples), and uvicorn drops writes to a closed socket
silently.

Models that run in-process serialise their decoding themselves (llama.cpp: one worker thread and a
lock around the one context), so concurrent requests queue at the model, not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from ponder.models.base import Model
from ponder.serve import page
from ponder.serve.limits import Gate, check_api_key, read_json
from ponder.serve.preflight import preflight
from ponder.serve.protocol import MODEL_PREFIX, ApiError, parse_chat_request
from ponder.serve.run import problem_of
from ponder.serve.settings import ServeSettings
from ponder.serve.stream import complete, stream
from ponder.think import STRATEGIES

T = TypeVar("T")
GONE = object()  # what unless_disconnected returns when the client left first


async def until_disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request body must already have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(work: Awaitable[T], receive: Receive) -> T | object:
    """``work``'s result, or GONE (with ``work`` cancelled) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(until_disconnect(receive))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        return task.result() if task.done() else GONE
    finally:
        for t in (task, watch):
            t.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)


class EventStream(StreamingResponse):
    """``text/event-stream`` that stops producing when the client disconnects, and calls
    ``on_close`` once it is over, however it ended (the gate's slot is held until then)."""

    def __init__(self, chunks: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(chunks, media_type="text/event-stream", headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
            await send(start)
            await unless_disconnected(self._pump(send), receive)
        finally:
            self.on_close()

    async def _pump(self, send: Send) -> None:
        async with aclosing(self.body_iterator) as chunks:
            async for text in chunks:
                await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _error(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


def create_app(model: Model, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    gate = Gate(settings.max_concurrency, settings.retry_after)
    started = int(time.time())
    app = FastAPI(title="ponder serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.model, app.state.settings, app.state.gate = model, settings, gate

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, e: ApiError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, e: HTTPException) -> JSONResponse:
        kind = "not_found" if e.status_code == 404 else None
        return _error(ApiError(e.status_code, str(e.detail), code=kind, headers=e.headers))

    @app.get("/", response_class=HTMLResponse)
    async def live_page() -> HTMLResponse:
        return HTMLResponse(
            page.html(
                sorted(STRATEGIES),
                model.name,
                settings.default_strategy,
                settings.api_key is not None,
            )
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": model.name,
            "in_flight": gate.in_flight,
            "max_concurrency": gate.limit,
        }

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_api_key(request.headers, settings.api_key)
        ids = [MODEL_PREFIX + name for name in sorted(STRATEGIES)] + [model.name]
        data = [{"id": i, "object": "model", "created": started, "owned_by": "ponder"} for i in ids]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        check_api_key(request.headers, settings.api_key)
        body = await read_json(request.headers, request.stream(), settings.max_body_bytes)
        chat = parse_chat_request(body, settings)
        await preflight(chat, model, problem_of(chat))  # a 400 now, not an empty 200 later
        gate.enter()
        if chat.stream:
            try:
                return EventStream(stream(chat, model), on_close=gate.leave)
            except BaseException:
                gate.leave()
                raise
        try:
            out = await unless_disconnected(complete(chat, model), request.receive)
        finally:
            gate.leave()
        if out is GONE:
            return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
        return JSONResponse(out)

    return app

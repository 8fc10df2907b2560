"""`ponder serve`: an OpenAI-compatible reasoning server.

``POST /v1/chat/completions`` runs a strategy per request (chosen by the ``model`` field,
``ponder/vote:n=8``, or by ``extra_body={"ponder": {"strategy": ..., "budget": ...}}``) and streams
its work as it happens: reasoning as ``delta.reasoning_content``, the answer as ``delta.content``,
and exact usage summed over every internal model call. ``GET /`` is a live page that shows the
samples, votes and agents as they arrive.

Modules, one job each: ``settings`` (the server's limits), ``protocol`` (parse and validate an
OpenAI request), ``transcript`` (events -> readable reasoning text), ``run`` (one request's work:
the strategy's events, the answer and its usage), ``stream`` (OpenAI response bodies and SSE),
``limits`` (auth, body size, concurrency), ``app`` (the FastAPI app), ``page`` (the live page),
``background`` (a server on a thread, for tests and notebooks), ``cli``.

FastAPI and uvicorn are the optional extra ``ponder[serve]``; nothing here imports them at package
import time, so ``ponder --help`` works without them.
"""

from ponder.serve.settings import ServeSettings

__all__ = ["ServeSettings"]

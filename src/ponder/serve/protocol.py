"""Parse and validate one OpenAI chat-completions request into a ``ChatRequest``.

What ponder reads from the body (everything else OpenAI defines is accepted and ignored, so that
existing clients work unchanged; what ponder cannot honour is refused with a 400):

- ``messages``: the conversation. Its **last user message is the question** the strategy solves,
  and every strategy prompts with the whole conversation: the client's system prompt comes first
  in one system message, the strategy's instructions (its answer format) after it; the earlier
  user, assistant and tool turns follow as sent (``think.base.chat_messages``). Text content parts
  are joined; other parts (images, audio) are refused. A conversation that ends in an assistant
  turn is refused (there would be nothing to answer).
- the strategy, first found of: ``ponder.strategy`` (sent as ``extra_body={"ponder": {...}}``),
  ``model: "ponder/SPEC"`` (``ponder/vote:n=8``, ``ponder/auto``), and the server's default for any
  other model name (``ponder``, the served model's own name, or whatever a client hard-codes).
- ``ponder.budget``: cap on the request's total tokens (prompt + completion over all model calls),
  at most the server's ``max_budget``, which is also the budget when none is named.
- ``ponder.events``: also send every strategy event as a ``ponder`` field of the stream's chunks
  (the live page uses it).
- ``max_completion_tokens`` (or the older ``max_tokens``), ``temperature``, ``top_p`` and ``seed``
  fill the strategy's ``Sampling`` where the spec leaves them out (``max_tokens`` is per sample);
  they are checked by ``Sampling`` itself, exactly as the spec's own keys are.
- ``stream`` and ``stream_options.include_usage``.
- ``n`` (1 to the server's ``max_n``): n independent runs of the strategy, one choice each, seeded
  ``seed``, ``seed + 1``, ... when a seed is given; the budget applies to each run and the usage
  is their sum.
- ``tools``, ``tool_choice`` (auto, none, required, or ``{"type": "function", "function":
  {"name": ...}}``) and ``parallel_tool_calls`` (OpenAI function calling): the strategy's samples
  may answer with calls, which a sampling strategy votes over (``think.sampling``); a backend
  with native tool calling gets them as they are, the others through ``tools.calls``' prompt
  and parse. Only strategies that answer with one whole sample (``client_tools``) take tools; the
  others are refused unless tool_choice is none. The legacy ``functions`` are refused.

Every problem is an ``ApiError``: an HTTP status and an OpenAI-style error body naming the field.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import Any

from ponder.budget import Budget
from ponder.problems.conversation import ConversationError, Tools, parse_conversation, parse_tools
from ponder.serve.settings import ServeSettings
from ponder.think import STRATEGIES, StrategySpecError, parse_strategy
from ponder.think.base import Strategy

MODEL_PREFIX = "ponder/"
PONDER_KEYS = ("strategy", "budget", "events")


class ApiError(Exception):
    """A request the server refuses, as OpenAI reports it:
    ``{"error": {"message", "type", "param", "code"}}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = (
            status,
            message,
            param,
            code,
            type,
        )
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid(param: str | None, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass(frozen=True)
class ChatRequest:
    """One request's settings. Built per request and owned by it: nothing here is shared."""

    question: str  # the last user message
    strategy: Strategy  # a fresh object, built from this request's spec
    budget: Budget
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with usage
    events: bool = False  # ponder.events: strategy events as a `ponder` field of each chunk
    messages: tuple[dict[str, Any], ...] = ()  # the whole conversation, the question's turn included
    n: int = 1  # independent runs of the strategy (seeds seed, seed+1, ...), one choice each
    tools: Tools | None = None  # the client's tools, tool_choice and parallel_tool_calls


def _int(body: dict, key: str, label: str, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(label, f"{label} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(label, f"{label} must be {bound}, got {value}")
    return value


def _bool(body: dict, key: str, label: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(label, f"{label} must be true or false, got {value!r}")
    return value


def conversation_of(messages: Any) -> tuple[str, tuple[dict[str, Any], ...]]:
    """``problems.conversation.parse_conversation``, its refusals as 400s naming the field."""
    try:
        return parse_conversation(messages)
    except ConversationError as e:
        code = "missing_required_parameter" if e.param == "messages" and not messages else None
        raise invalid(e.param, str(e), **({"code": code} if code else {})) from None


def tools_of(body: dict) -> Tools | None:
    """``problems.conversation.parse_tools`` on the body, its refusals as 400s naming the field."""
    if body.get("functions") or body.get("function_call"):
        key = "functions" if body.get("functions") else "function_call"
        raise invalid(key, f"{key} (deprecated by OpenAI) are not supported: send tools and "
                           "tool_choice instead")  # fmt: skip
    try:
        return parse_tools(body.get("tools"), body.get("tool_choice"),
                           body.get("parallel_tool_calls"))  # fmt: skip
    except ConversationError as e:
        raise invalid(e.param, str(e)) from None


def _strategy_spec(body: dict, ponder: dict, settings: ServeSettings) -> tuple[str, str]:
    """(spec, the field it came from)."""
    if "strategy" in ponder:
        spec = ponder["strategy"]
        if not isinstance(spec, str) or not spec.strip():
            raise invalid("ponder.strategy", "ponder.strategy must be a non-empty strategy spec")
        return spec.strip(), "ponder.strategy"
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("model", f"model must be a string, got {model!r}")
    if model and model.startswith(MODEL_PREFIX):
        spec = model[len(MODEL_PREFIX) :].strip()
        if not spec:
            raise invalid(
                "model", "model 'ponder/' names no strategy; e.g. ponder/cot or ponder/vote:n=8"
            )
        return spec, "model"
    return settings.default_strategy, "model"


def _with_corpus(strategy, param: str, settings: ServeSettings):
    """A strategy that researches a folder (``research``: it has a ``corpus`` field) gets the
    server's ``--corpus``; a client may not name one (it would read the server's files)."""
    if "corpus" not in {f.name for f in dataclasses.fields(strategy)}:
        return strategy
    if strategy.corpus is not None:
        raise invalid(param, f"{param}: corpus is the server's (ponder serve --corpus DIR), "
                      "not a request's", code="invalid_strategy")  # fmt: skip
    if settings.corpus is None:
        raise invalid(param, f"{param}: {strategy.name} needs a corpus: start the server with "
                      "ponder serve --corpus DIR", code="invalid_strategy")  # fmt: skip
    return dataclasses.replace(strategy, corpus=settings.corpus)


def parse_chat_request(body: Any, settings: ServeSettings) -> ChatRequest:
    if not isinstance(body, dict):
        raise invalid(None, "the request body must be a JSON object")
    question, messages = conversation_of(body.get("messages"))

    ponder = body.get("ponder") or {}
    if not isinstance(ponder, dict):
        raise invalid("ponder", "ponder must be an object: {strategy, budget, events}")
    unknown = sorted(set(ponder) - set(PONDER_KEYS))
    if unknown:
        raise invalid(
            f"ponder.{unknown[0]}",
            f"unknown ponder option {unknown[0]!r}; known: {', '.join(PONDER_KEYS)}",
            code="unknown_parameter",
        )
    cap = settings.max_budget
    budget = _int(ponder, "budget", "ponder.budget", 1, cap) or cap

    n = _int(body, "n", "n", 1, settings.max_n) or 1
    tools = tools_of(body)

    # Sampling fields go to the strategy's Sampling, which checks them (the same checks, and the
    # same messages, as for a spec's keys and the CLI's flags).
    tokens_key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    labels = {"max_tokens": tokens_key, "temperature": "temperature", "top_p": "top_p",
              "seed": "seed"}  # fmt: skip
    sampling = {
        "max_tokens": body.get(tokens_key),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "seed": body.get("seed"),
    }
    spec, param = _strategy_spec(body, ponder, settings)
    try:
        strategy = parse_strategy(spec, **sampling)
    except StrategySpecError as e:
        if e.field in labels and not e.from_spec:  # a body field's value, not the spec's
            raise invalid(labels[e.field], e.detail) from None
        raise invalid(param, f"{param}: {e}", code="invalid_strategy") from None
    if strategy.sampling.max_tokens > cap:
        where = param if sampling["max_tokens"] is None else tokens_key
        raise invalid(
            where,
            f"max_tokens must be at most {cap} (the server's budget per request), "
            f"got {strategy.sampling.max_tokens}",
        )

    strategy = _with_corpus(strategy, param, settings)
    if tools is not None and tools.offered and not getattr(strategy, "client_tools", False):
        able = ", ".join(sorted(k for k, cls in STRATEGIES.items() if cls.client_tools is True))
        raise invalid(
            "tools",
            f"the strategy {strategy.name} cannot answer with tool calls (it builds its answer "
            f"from steps or rewrites it); tools work with {able}, or send tool_choice none",
        )

    stream = _bool(body, "stream", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise invalid("stream_options", "stream_options must be an object")
    return ChatRequest(
        question=question,
        messages=messages,
        n=n,
        tools=tools,
        strategy=settings.guarded(strategy),  # inside the policy guard under --policy
        budget=Budget(budget),
        stream=stream,
        include_usage=_bool(options, "include_usage", "stream_options.include_usage"),
        events=_bool(ponder, "events", "ponder.events"),
    )

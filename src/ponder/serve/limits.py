"""What a request must pass before any model work: the API key, the body size, a free slot."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ponder.serve.protocol import ApiError


class Gate:
    """At most ``limit`` requests in flight. One more is refused at once (429 with Retry-After),
    never queued: a queue would hide overload from the client, which can retry or go elsewhere.

    Used from the event loop's thread only, so a plain counter is enough.
    """

    def __init__(self, limit: int, retry_after: int = 1) -> None:
        self.limit, self.retry_after = limit, retry_after
        self.in_flight = 0

    def enter(self) -> None:
        if self.in_flight >= self.limit:
            raise ApiError(
                429,
                f"ponder serve is at its limit of {self.limit} concurrent requests; retry shortly",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1


def check_api_key(headers: Mapping[str, str], api_key: str | None) -> None:
    """401 unless ``Authorization: Bearer <api_key>`` (what OpenAI clients send); no key: open."""
    if api_key is None:
        return
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        raise ApiError(
            401,
            "missing or wrong API key: send the server's --api-key as 'Authorization: Bearer KEY'",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")


MAX_DEPTH = 64  # nesting no chat request needs; deeper is refused before anything walks it


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_values(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """400 for what JSON parsers let through but nothing downstream should see: nesting deeper
    than ``max_depth``, and strings that are not valid Unicode (a lone surrogate such as
    ``"\\ud800"``), named by their path. Iterative, so no input can exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        v, path, depth = stack.pop()
        if depth > max_depth:
            raise ApiError(400, f"the request body is nested deeper than {max_depth} levels",
                           param=path or None, code="invalid_json")  # fmt: skip
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, f"{path or 'the body'} is not valid Unicode (a lone surrogate?)",
                               param=path or None, code="invalid_value") from None  # fmt: skip
        elif isinstance(v, dict):
            for k, item in v.items():
                stack.append((k, path, depth + 1))
                stack.append((item, f"{path}.{k}" if path else str(k), depth + 1))
        elif isinstance(v, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(v))


async def read_json(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> Any:
    """The JSON body, read no further than ``limit`` bytes (413 beyond; 400 if it is not JSON,
    nests too deeply, holds NaN or Infinity, or a string that is not valid Unicode)."""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, f"the request body is nested deeper than {MAX_DEPTH} levels",
                       code="invalid_json") from None  # fmt: skip
    except (ValueError, UnicodeDecodeError) as e:
        why = f" ({e})" if "is not a JSON number" in str(e) else ""
        raise ApiError(400, f"the request body is not valid JSON{why}", code="invalid_json") from None
    check_values(value)
    return value

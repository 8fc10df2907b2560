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


async def read_json(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> Any:
    """The JSON body, read no further than ``limit`` bytes (413 beyond; 400 if it is not JSON)."""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from None

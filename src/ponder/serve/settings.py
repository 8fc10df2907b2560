"""ServeSettings: the limits one `ponder serve` process enforces on every request, and its policy.

These are server-wide settings only. A request's own settings (strategy, budget, sampling) are parsed
from that request into its own objects (``protocol.ChatRequest``) and never stored here.
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ponder.think.base import Strategy


@dataclass(frozen=True)
class ServeSettings:
    default_strategy: str = "cot"  # the strategy for a model field that does not name one
    api_key: str | None = None  # when set, /v1/* needs "Authorization: Bearer KEY" (else 401)
    max_concurrency: int = 4  # requests in flight at once; one more gets 429 at once, never queued
    max_budget: int = 32768  # cap on one request's total tokens; also its budget when it names none
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    retry_after: int = 1  # seconds, sent as Retry-After with a 429
    max_n: int = 8  # a request's n (independent runs of its strategy, one choice each) at most
    policy: str | None = None  # --policy FILE: every request's strategy runs inside think/guard.py
    corpus: str | None = None  # --corpus DIR: what model="ponder/research" researches in

    def __post_init__(self) -> None:
        from ponder.think import StrategySpecError, parse_strategy

        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key is empty; leave it out to serve without a key")
        for name in ("max_concurrency", "max_budget", "max_body_bytes", "retry_after", "max_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer")
        try:
            parse_strategy(self.default_strategy)
        except StrategySpecError as e:
            raise ValueError(f"default strategy: {e}") from None
        if self.policy is not None:
            from ponder.think.guard import read_policy

            read_policy(self.policy)  # a missing or unreadable file: a ValueError at start-up
        if self.corpus is not None and not os.path.isdir(self.corpus):
            raise ValueError(f"--corpus {self.corpus}: not a directory")

    def guarded(self, strategy: Strategy) -> Strategy:
        """A request's strategy as the server runs it: inside the policy guard when the server has
        a policy (``--policy``), else as it is. Request parsing calls this on every strategy it
        builds, so that no request, whatever strategy it names, is answered unguarded."""
        if self.policy is None:
            return strategy
        from ponder.think.guard import Guard

        return Guard.around(strategy, self.policy)

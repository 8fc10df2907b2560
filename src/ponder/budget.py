"""Usage (what compute was spent) and Budget (how much may be spent).

Every strategy is charged from Usage, so it is counted exactly: tokens come from the backend's own
tokenizer or the server's usage report, never estimated after the fact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
            self.seconds + other.seconds,
        )

    def __sub__(self, other: Usage) -> Usage:
        """What was spent since ``other`` (an earlier reading of the same meter)."""
        return Usage(
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
            self.calls - other.calls,
            self.seconds - other.seconds,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total_tokens"] = self.total_tokens
        return d


@dataclass(frozen=True)
class Budget:
    """A cap on total tokens (prompt + completion over all calls) for one problem; ``Budget()``
    (``max_tokens=None``) is no cap, its only spelling. ``think.meter.Meter`` enforces it."""

    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"a budget must be a positive number of tokens, got {self.max_tokens}")

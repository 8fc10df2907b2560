"""Sampling: one validated set of sampling settings, in the spirit of vLLM's ``SamplingParams``.

Every strategy holds one (``strategy.sampling``); the CLI flags, the spec keys
(``cot:temperature=0.5``) and the server's request fields all build it, so a value is checked once,
here, and every front end refuses the same value with the same message (each names the field as
its user wrote it: ``--temperature``, ``temperature=`` in a spec, the ``temperature`` body field).

Fields:

- ``max_tokens``: completion tokens per sample (a strategy's own per-step or per-answer lengths
  are its own fields); 1 to ``MAX_TOKENS``, and a backend clips it to its context.
- ``temperature``: 0 is greedy decoding; at most 2, as OpenAI's API.
- ``top_p``: nucleus sampling, in (0, 1].
- ``seed``: makes sampling reproducible where the backend can; strategies derive the seeds of
  their later calls from it (seed + samples drawn so far). None: unseeded.
- ``stop``: strings that end a sample (kept out of its text); strategies add their own (step
  boundaries) to these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

MAX_TOKENS = 1 << 20  # more than any context a backend has: larger is a typo, not a request
MAX_TEMPERATURE = 2.0
_INT64 = 1 << 63


class SamplingError(ValueError):
    """A sampling value that cannot be used; ``field`` is the Sampling field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.max_tokens) or not 1 <= self.max_tokens <= MAX_TOKENS:
            raise SamplingError(
                "max_tokens",
                f"max_tokens must be an integer from 1 to {MAX_TOKENS}, got {self.max_tokens!r}",
            )
        t = self.temperature
        if not _is_number(t) or not math.isfinite(t) or not 0 <= t <= MAX_TEMPERATURE:
            raise SamplingError(
                "temperature",
                f"temperature must be a number from 0 to {MAX_TEMPERATURE:g}, got {t!r}",
            )
        p = self.top_p
        if not _is_number(p) or not math.isfinite(p) or not 0 < p <= 1:
            raise SamplingError("top_p", f"top_p must be a number in (0, 1], got {p!r}")
        if self.seed is not None and (not _is_int(self.seed) or not -_INT64 <= self.seed < _INT64):
            raise SamplingError("seed", f"seed must be a 64-bit integer, got {self.seed!r}")
        stop = self.stop
        if isinstance(stop, str):
            stop = (stop,)
        if not all(isinstance(s, str) and s for s in stop):
            raise SamplingError("stop", f"stop must be non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(stop))
        object.__setattr__(self, "temperature", float(t))
        object.__setattr__(self, "top_p", float(p))

    def request_args(self, **changes) -> dict:
        """Keyword arguments for ``Request`` (``changes`` override a field for one call)."""
        args = {f.name: getattr(self, f.name) for f in fields(self)}
        args.update(changes)
        return args

    def require_temperature(self, owner: str, why: str) -> None:
        """For strategies that need diverse samples: refuse greedy decoding with ``why``."""
        if self.temperature <= 0:
            raise SamplingError("temperature", f"temperature must be > 0 for {owner} ({why})")


SAMPLING_FIELDS = tuple(f.name for f in fields(Sampling))

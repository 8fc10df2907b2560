"""Strategies that spend test-time compute, and ``parse_strategy`` for ``NAME[:key=value,...]`` specs."""

from __future__ import annotations

import dataclasses
import typing

from ponder.think.adaptive import Adaptive
from ponder.think.auto import Auto
from ponder.think.base import Strategy, final_result
from ponder.think.beam import Beam
from ponder.think.best_of_n import BestOfN
from ponder.think.confidence import Confidence
from ponder.think.cot import Cot
from ponder.think.deepthink import DeepThink
from ponder.think.mcts import Mcts
from ponder.think.reflect import Reflect
from ponder.think.think import Think
from ponder.think.vote import Vote

STRATEGIES: dict[str, type] = {"cot": Cot, "vote": Vote}
STRATEGIES["best_of_n"] = BestOfN
STRATEGIES["adaptive"] = Adaptive
STRATEGIES["confidence"] = Confidence
STRATEGIES["deepthink"] = DeepThink
STRATEGIES["reflect"] = Reflect
STRATEGIES["think"] = Think
STRATEGIES["beam"] = Beam
STRATEGIES["mcts"] = Mcts
STRATEGIES["auto"] = Auto


class StrategySpecError(ValueError):
    """A strategy spec the user wrote that cannot be built."""


def _convert(name: str, key: str, raw: str, kind) -> object:
    kinds = typing.get_args(kind) or (kind,)
    if raw.lower() in ("none", "null") and type(None) in kinds:
        return None
    for k in kinds:
        try:
            if k is bool:
                if raw.lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.lower() in ("0", "false", "no", "off"):
                    return False
                continue
            if k in (int, float, str):
                return k(raw)
        except ValueError:
            continue
    raise StrategySpecError(f"{name}: {key}={raw!r} is not a valid {getattr(kind, '__name__', kind)}")


def parse_strategy(spec: str, **defaults) -> Strategy:
    """Build a strategy from ``NAME[:key=value,...]``; ``defaults`` fill fields the spec leaves out
    (only those the strategy has: e.g. a seed or temperature from the command line)."""
    name, _, params = spec.strip().partition(":")
    cls = STRATEGIES.get(name)
    if cls is None:
        raise StrategySpecError(
            f"unknown strategy {name!r} in {spec!r}; known: {', '.join(sorted(STRATEGIES))}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in defaults.items() if k in fields and v is not None}
    for part in filter(None, (p.strip() for p in params.split(","))):
        key, eq, raw = part.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise StrategySpecError(
                f"bad parameter {part!r} in {spec!r}; {name} takes "
                + ", ".join(f"{k}=<{getattr(t, '__name__', t)}>" for k, t in fields.items())
            )
        kwargs[key] = _convert(name, key, raw.strip(), fields[key])
    try:
        strategy = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise StrategySpecError(str(e)) from None
    strategy.spec = canonical_spec(name, strategy, cls)
    return strategy


def canonical_spec(name: str, strategy, cls) -> str:
    """NAME:key=value for every field that differs from the class default (seed left out)."""
    parts = []
    for f in dataclasses.fields(cls):
        value = getattr(strategy, f.name)
        if f.name != "seed" and value != f.default:
            parts.append(f"{f.name}={value}")
    return name + (":" + ",".join(parts) if parts else "")


__all__ = ["STRATEGIES", "Strategy", "StrategySpecError", "final_result", "parse_strategy"]

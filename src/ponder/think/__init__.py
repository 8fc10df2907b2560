"""Strategies that spend test-time compute, and ``parse_strategy`` for ``NAME[:key=value,...]`` specs.

A spec's keys are the strategy's own options and the fields of its ``Sampling`` (``max_tokens``,
``temperature``, ``top_p``, ``seed``): ``vote:n=8,temperature=0.5``. A wrapping strategy's inner
spec is its last key and takes the rest of the spec: ``guard:policy=p.txt,then=vote:n=4``. A
strategy that builds another by name (``auto``'s ``hard_with``) takes that one's options as
dotted keys named by that strategy, in any place: ``auto:hard_with=beam,beam.floor=1``.
"""

from __future__ import annotations

import dataclasses
import typing

from ponder.specs import SpecError, parse_spec
from ponder.think.adaptive import Adaptive
from ponder.think.auto import Auto
from ponder.think.base import Run, Strategy, StrategyBase, final_result
from ponder.think.beam import Beam
from ponder.think.best_of_n import BestOfN
from ponder.think.code import Code
from ponder.think.config import SAMPLING_FIELDS, Sampling, SamplingError
from ponder.think.confidence import Confidence
from ponder.think.cot import Cot
from ponder.think.deepthink import DeepThink
from ponder.think.guard import Guard
from ponder.think.mcts import Mcts
from ponder.think.meter import Meter, OverspendError
from ponder.think.reflect import Reflect
from ponder.think.think import Think
from ponder.think.vote import Vote

STRATEGIES: dict[str, type[StrategyBase]] = {
    cls.name: cls
    for cls in (Cot, Vote, BestOfN, Adaptive, Confidence, DeepThink, Reflect, Think, Beam, Mcts,
                Code, Auto)
}  # fmt: skip

# Strategies only the machine's own user may name (the command line: `ponder solve`, `bench`):
# guard reads the file its spec names (its policy) into the model's prompt, which a server's
# client must not be able to make it do. A server's guard is `ponder serve --policy FILE`.
OPERATOR_STRATEGIES: dict[str, type[StrategyBase]] = {Guard.name: Guard}


class StrategySpecError(ValueError):
    """A strategy spec the user wrote that cannot be built.

    ``field``: the Sampling field at fault, when it is one; ``from_spec``: whether its value was
    written in the spec (else it came from ``defaults``: a CLI flag or a request field), so that
    each front end can say where the bad value came from.
    """

    def __init__(
        self, message: str, field: str | None = None, from_spec: bool = True, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.field, self.from_spec = field, from_spec
        self.detail = detail or message  # the message without the strategy's name


# Strategies defined above this layer (the research loop, research/strategy.py): the command line
# registers them, so that parse_strategy (and with it `ponder bench`) builds them; STRATEGIES
# stays think's own, the ones every front end (serve's model list) offers.
REGISTERED: dict[str, type[StrategyBase]] = {}


def register_strategy(cls: type[StrategyBase]) -> None:
    REGISTERED[cls.name] = cls


def option_types(cls: type[StrategyBase]) -> dict[str, object]:
    """The options a spec may set on ``cls``, with their types (its nested field left out)."""
    hints = typing.get_type_hints(cls)
    nested = getattr(cls, "nested_key", None)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and f.name != nested}


def convert_option(name: str, key: str, raw: str, kind) -> object:
    """A spec's string ``raw`` as option ``key``'s type ``kind``; a StrategySpecError if not."""
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


def _type_name(kind) -> str:
    """``int``, ``int | None``; a verifier field (a name or a Scorer object) reads ``str``."""
    kinds = typing.get_args(kind) or (kind,)
    plain = (int, float, str, bool, type(None))
    names = ["None" if k is type(None) else k.__name__ for k in kinds if k in plain]
    return " | ".join(names) or getattr(kind, "__name__", str(kind))


def parse_strategy(spec: str, *, operator: bool = False, **defaults) -> StrategyBase:
    """Build a strategy from ``NAME[:key=value,...]``; ``defaults`` fill the sampling settings
    (``max_tokens``, ``temperature``, ``top_p``, ``seed``) the spec leaves out: values from the
    command line or a request body. ``operator``: the spec comes from the machine's own user (the
    command line), who may also name ``OPERATOR_STRATEGIES``."""
    try:
        name, pairs = parse_spec(spec, "strategy")
    except SpecError as e:
        raise StrategySpecError(str(e)) from None
    cls = STRATEGIES.get(name) or REGISTERED.get(name)
    if cls is None and name in OPERATOR_STRATEGIES:
        if not operator:
            raise StrategySpecError(
                f"strategy {name!r} is for the command line (ponder solve, ponder bench); a "
                "server guards its requests with `ponder serve --policy FILE`"
            )
        cls = OPERATOR_STRATEGIES[name]
    if cls is None:
        offered = STRATEGIES | REGISTERED | (OPERATOR_STRATEGIES if operator else {})
        known = ", ".join(sorted(offered))
        raise StrategySpecError(f"unknown strategy {name!r} in {spec!r}; known: {known}")
    nested = getattr(cls, "nested_key", None)  # the field for NAME.option=value pairs
    options = option_types(cls)
    inner: list[tuple[str, str, str]] = []
    kwargs = {k: v for k, v in defaults.items() if k in SAMPLING_FIELDS and v is not None}
    from_spec: set[str] = set()
    rest = getattr(cls, "rest_key", None)  # a wrapper's inner spec: the rest of the pairs
    for i, (key, raw) in enumerate(pairs):
        if key == rest:
            kwargs[key] = ",".join([raw, *(f"{k}={v}" for k, v in pairs[i + 1 :])])
            from_spec.add(key)
            break
        strategy, dot, option = (part.strip() for part in key.partition("."))
        if nested and dot and strategy and option:
            inner.append((strategy, option, raw))  # checked by the strategy that builds it
            continue
        if key in from_spec:  # `vote:n=4,n=5` would otherwise run n=5 without a word
            raise StrategySpecError(f"parameter {key!r} is given twice in {spec!r}; write it once")
        if key not in options:
            takes = [f"{k}=<{_type_name(t)}>" for k, t in options.items()]
            if nested:
                takes.append("<strategy>.<option>=<value>")
            raise StrategySpecError(f"bad parameter '{key}={raw}' in {spec!r}; {name} takes "
                                    + ", ".join(takes))  # fmt: skip
        kwargs[key] = convert_option(name, key, raw, options[key])
        from_spec.add(key)
    if inner:
        kwargs[nested] = tuple(inner)
    try:
        return cls(**kwargs)
    except SamplingError as e:
        raise StrategySpecError(
            f"{name}: {e}", field=e.field, from_spec=e.field in from_spec, detail=str(e)
        ) from None
    except (TypeError, ValueError) as e:
        raise StrategySpecError(str(e)) from None


__all__ = [
    "OPERATOR_STRATEGIES", "REGISTERED", "STRATEGIES", "Guard", "Meter", "OverspendError", "Run",
    "Sampling", "SamplingError", "Strategy", "StrategyBase", "StrategySpecError", "final_result",
    "parse_strategy",
    "register_strategy",
]  # fmt: skip

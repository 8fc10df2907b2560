"""The one parser of ``NAME[:key=value,...]`` specs (strategies, tasks).

``parse_spec("vote:n=8,verifier=prm:/models/prm")`` -> ``("vote", [("n", "8"), ("verifier",
"prm:/models/prm")])``: the name ends at the first colon, parameters are split on commas, a value
may hold colons. Values stay strings; each caller converts them to its own types.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A spec the user wrote that cannot be read; the message says what to write instead."""


def parse_spec(text: str, what: str = "spec") -> tuple[str, list[tuple[str, str]]]:
    name, _, params = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise SpecError(f"{what} {text!r} has no name; write NAME[:key=value,...]")
    pairs = []
    for piece in filter(None, (p.strip() for p in params.split(","))):
        key, eq, value = piece.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"bad parameter {piece!r} in {text!r}; write NAME:key=value,...")
        pairs.append((key.strip(), value.strip()))
    return name, pairs

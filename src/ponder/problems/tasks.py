"""``parse_task("arith:digits=5,op=mul")`` -> ``("arith", {"digits": 5, "op": "mul"})``: a task spec
as ``ponder bench --task`` and ``ponder data synth --task`` take it (integers become ints)."""

from __future__ import annotations

import re

from ponder.problems.errors import ProblemSetError
from ponder.specs import SpecError, parse_spec


def parse_task(text: str) -> tuple[str, dict]:
    try:
        name, pairs = parse_spec(text, "--task")
    except SpecError as e:
        raise ProblemSetError(f"--task: {e}") from None
    keys = [k for k, _ in pairs]
    if twice := sorted({k for k in keys if keys.count(k) > 1}):
        raise ProblemSetError(f"--task: {', '.join(twice)} given twice in {text!r}; write each once")
    return name, {k: int(v) if re.fullmatch(r"-?\d+", v) else v for k, v in pairs}

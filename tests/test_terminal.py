"""What `ponder solve` prints for a search: warnings and backtracks get a line each on stderr."""

from __future__ import annotations

import asyncio

from ponder.budget import Budget
from ponder.models import ScriptedModel
from ponder.problems.base import Problem
from ponder.terminal import solve_and_render
from ponder.think import parse_strategy

PROBLEM = Problem(id="p1", question="Compute 47 + 85.", answer="132", kind="numeric")
TABLE = {
    "": ["7+5+0=12 > 2", "7+5=12 > 2"],
    "7+5+0=12 > 2\n": ["4+8+1=14 > 142", "4+8+1=15 > 152"],  # both wrong: the search backs off
    "7+5=12 > 2\n": ["4+8+1=13 > 132"],
    "7+5=12 > 2\n4+8+1=13 > 132\n": ["Answer: 132"],
    "7+5+0=12\n": ["4+8+1=13 > 132\nAnswer: 132"],  # completing a first step cut at 1 token
}


def table_model() -> ScriptedModel:
    served: dict[str, int] = {}

    def reply(request, i):
        prefix = request.prefix or ""
        served[prefix] = served.get(prefix, 0) + 1
        options = TABLE[prefix]
        return options[(served[prefix] - 1) % len(options)]

    return ScriptedModel(reply)


def render(spec: str, capsys) -> tuple[str, str, str | None]:
    strategy = parse_strategy(spec, seed=0)
    result = asyncio.run(solve_and_render(PROBLEM, table_model(), strategy, Budget()))
    out, err = capsys.readouterr()
    return out, err, result.answer


def test_a_search_that_backs_off_prints_its_backtrack(capsys):
    spec = "beam:beams=1,expand=2,verifier=arith,split=line,max_steps=6,floor=1"
    out, err, answer = render(spec, capsys)
    assert answer == "132" and "Answer: 132" in out
    assert "[back] step 1, round 1: depth 1 kept too few steps at or above the floor; back to node 2" in err
    assert "[warning]" not in err


def test_steps_cut_at_step_tokens_print_a_warning(capsys):
    spec = "beam:beams=1,expand=2,verifier=arith,split=line,max_steps=1,step_tokens=1"
    out, err, _ = render(spec, capsys)
    assert "[warning] 2 of " in err and "cut at step_tokens=1" in err
    assert "[back]" not in err

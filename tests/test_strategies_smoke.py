"""Every strategy end to end on the real embedded model, with a tiny budget."""

import asyncio

import pytest

from ponder.budget import Budget
from ponder.events import Final
from ponder.models import resolve
from ponder.problems.base import Problem
from ponder.think import STRATEGIES, parse_strategy
from test_core import NO_SANDBOX

pytestmark = pytest.mark.slow

SPECS = {
    "cot": "cot:max_tokens=24",
    "vote": "vote:n=3,max_tokens=24",
    "best_of_n": "best_of_n:n=2,max_tokens=24,verifier=judge",
    "adaptive": "adaptive:wave=2,max_samples=4,max_tokens=24",
    "confidence": "confidence:warmup=2,wave=2,max_samples=4,max_tokens=24,window=8",
    "deepthink": "deepthink:agents=2,max_tokens=24",
    "reflect": "reflect:max_tokens=24,rounds=1",
    "think": "think:min_think=8,max_think=24,max_tokens=12",
    "beam": "beam:beams=2,expand=2,max_steps=2,step_tokens=12,max_tokens=24",
    "mcts": "mcts:simulations=2,expand=2,step_tokens=12,max_tokens=24",
    "auto": "auto:probe=2,probe_tokens=24,max_tokens=24,hard=1",
    "code": "code:rounds=1,max_tokens=24",
}
BUDGET = 700


@pytest.fixture(scope="module")
def model():
    m = resolve("default")
    yield m
    m.close()


def test_every_registered_strategy_has_a_smoke_spec():
    assert set(SPECS) == set(STRATEGIES) - {"research"}  # research needs its own corpus


@pytest.mark.parametrize("name", sorted(SPECS))
def test_strategy_runs_on_the_embedded_model_within_budget(model, name):
    if name == "code" and NO_SANDBOX:
        pytest.skip(f"no sandbox: {NO_SANDBOX}")
    strategy = parse_strategy(SPECS[name], seed=1)
    problem = Problem("smoke", "What is 6 + 7?", "13")

    async def go():
        return [ev async for ev in strategy.run(problem, model, Budget(BUDGET))]

    events = asyncio.run(go())
    assert isinstance(events[-1], Final)
    result = events[-1].result
    assert 0 < result.usage.total_tokens <= BUDGET
    assert result.usage.calls >= 1
    assert result.how

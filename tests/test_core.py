"""The core contracts: the budget meter, one scorer for three uses, one sampling config.

Every strategy runs on a scripted model here (fast); the meter's guarantees are checked for all of
them at once, so a new strategy is covered the moment it is registered.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from ponder.bench.runner import Cell, run_cell
from ponder.budget import Budget, Usage
from ponder.cli import main
from ponder.events import Sampled
from ponder.lab.rewards import problem_columns, scorer_reward
from ponder.models import ScriptedModel
from ponder.models.base import Completion
from ponder.problems.base import Problem
from ponder.serve.protocol import ApiError, parse_chat_request
from ponder.serve.settings import ServeSettings
from ponder.think import STRATEGIES, OverspendError, StrategySpecError, final_result, parse_strategy
from ponder.think.best_of_n import BestOfN
from ponder.tools.sandbox import SandboxUnavailable, sandbox_host
from ponder.verify import Attempt, Check

# One spec per strategy, small enough to run in milliseconds on the scripted model. Step-level
# strategies use the arith verifier (free), the others the judge (which calls the model).
SPECS = {
    "cot": "cot:max_tokens=32",
    "vote": "vote:n=4,max_tokens=32,weighted=verifier",
    "best_of_n": "best_of_n:n=3,max_tokens=32,verifier=judge",
    "adaptive": "adaptive:wave=2,max_samples=6,max_tokens=32",
    "confidence": "confidence:warmup=2,wave=2,max_samples=6,max_tokens=32,window=4",
    "deepthink": "deepthink:agents=3,max_tokens=32",
    "reflect": "reflect:max_tokens=32,rounds=2,verifier=arith,split=line",
    "think": "think:min_think=6,max_think=24,max_tokens=12",
    "beam": "beam:beams=2,expand=2,max_steps=3,step_tokens=8,max_tokens=32,verifier=arith,split=line",
    "mcts": "mcts:simulations=4,expand=2,step_tokens=8,max_tokens=32,verifier=arith,split=line",
    "auto": "auto:probe=3,probe_tokens=32,max_tokens=32,hard=1,verifier=arith,split=line",
    "code": "code:rounds=1,max_tokens=32",
}
try:
    sandbox_host()
    NO_SANDBOX = ""
except SandboxUnavailable as e:
    NO_SANDBOX = str(e)
# The names to parametrize over: `code` refuses to start without the sandbox, so it skips there.
NAMES = [
    pytest.param(n, marks=pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox: {NO_SANDBOX}"))
    if n == "code" else n
    for n in sorted(SPECS)
]
PROBLEM = Problem("p", "What is 3 + 4?", "7", kind="numeric")


def reply(request, i):
    """Judges say Yes; solvers write two arithmetic lines, right or wrong by sample number."""
    if request.messages and "Answer Yes or No" in request.messages[-1]["content"]:
        return "Yes"
    if request.prefix is not None and request.prefix:
        return "so 3+4=7\n\\boxed{7}"
    return "3+4=7\n\\boxed{7}" if i % 3 else "3+4=8\nthen \\boxed{8}"


class Overcharging(ScriptedModel):
    """Reports far more usage than any plan allows on call number ``bad`` (0-based)."""

    def __init__(self, bad: int) -> None:
        super().__init__(reply)
        self.bad, self.calls = bad, 0

    async def generate(self, request, on_text=None, should_stop=None) -> Completion:
        c = await super().generate(request, on_text, should_stop)
        self.calls += 1
        if self.calls - 1 == self.bad:
            extra = Usage(prompt_tokens=10**6)
            return Completion(c.samples, c.usage + extra)
        return c


def result_of(spec: str, model, budget: Budget = Budget(), seed: int = 0):
    strategy = parse_strategy(spec, seed=seed)
    return asyncio.run(final_result(strategy.run(PROBLEM, model, budget)))


def test_every_strategy_is_covered_here():
    # research registers itself when the CLI is built, and runs only on research problems, which
    # carry their corpus (tests/test_research*.py cover it)
    assert set(SPECS) == set(STRATEGIES) - {"research"}


@pytest.mark.parametrize("name", NAMES)
def test_the_meter_catches_a_backend_that_spends_more_than_planned(name):
    """The post-call check is real: an overspending call raises, first call or last."""
    counting = ScriptedModel(reply)
    result_of(SPECS[name], counting)
    calls = len(counting.requests)
    assert calls >= 1
    for bad in sorted({0, calls - 1}):
        with pytest.raises(OverspendError, match="planned at most"):
            result_of(SPECS[name], Overcharging(bad))


@pytest.mark.parametrize("name", NAMES)
def test_no_strategy_exceeds_any_budget(name):
    """Budgets from 1 token to generous, over several seeds: the total never passes the cap, and
    the Result's usage is exactly what the model was charged."""
    for cap in (1, 4, 16, 40, 80, 150, 300, 600, 1200, None):
        for seed in range(3):
            model = ScriptedModel(reply)
            result = result_of(SPECS[name], model, Budget(cap), seed)
            if cap is not None:
                assert result.usage.total_tokens <= cap, (name, cap, seed, result.how)
            assert result.usage.calls == len(model.requests)
            if result.chosen is not None:  # the chosen sample is one the trace shows
                sampled = [e for e in result.trace if isinstance(e, Sampled)]
                assert any(e.sample == result.chosen.index for e in sampled), result.how


def test_events_carry_time_since_the_run_began():
    result = result_of(SPECS["vote"], ScriptedModel(reply))
    times = [e.t for e in result.trace]
    assert times == sorted(times) and times[-1] >= 0 and len(set(times)) > 1


class CountingCheck(Check):
    """The task's check scorer, counting its calls (to prove one object serves all three uses)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def score(self, problem, attempt, model):
        self.calls += 1
        return await super().score(problem, attempt, model)


def test_one_verifier_object_grades_selects_and_rewards():
    scorer = CountingCheck()
    problem = Problem("c", "Using 3, 7 and 25, make 46.", None, "countdown",
                      {"numbers": [3, 7, 25], "target": 46})  # fmt: skip
    texts = ["25+7+3=35\nAnswer: \\boxed{25+7+3}", "25-7=18\nAnswer: \\boxed{(25-7)+3}",
             "(7-3)=4\nAnswer: \\boxed{25*3-7*4}", "25+3*7=46\nAnswer: \\boxed{25+3*7}"]  # fmt: skip
    model = ScriptedModel(lambda request, i: texts[i % len(texts)])

    # 1. test-time selection: best_of_n keeps the sample the verifier accepts
    result = asyncio.run(final_result(BestOfN(n=4, verifier=scorer).run(problem, model, Budget())))
    assert result.answer == "25+3*7" and scorer.calls == 4

    # 2. grading a bench cell
    row = asyncio.run(run_cell("t", Cell(problem, parse_strategy("cot"), Budget(), 0), model, scorer))
    assert row.correct is False and scorer.calls == 5  # cot's one sample is texts[0]: 35, not 46

    # 3. the GRPO reward
    reward = scorer_reward(scorer)
    columns = {k: [v, v] for k, v in problem_columns(problem).items()}
    completions = ["Answer: 25+3*7", "Answer: 25+7+3"]
    assert reward(["", ""], completions, **columns) == [1.0, 0.0] and scorer.calls == 7


def test_a_scorer_that_calls_a_model_cannot_be_a_reward():
    from ponder.verify.judge import Judge

    with pytest.raises(ValueError, match="calls a model"):
        scorer_reward(Judge())


# --- one sampling config: the same refusal from every front end -------------------------------

BAD = [
    ("temperature", "nan", float("nan"), "temperature must be a number from 0 to 2, got nan"),
    ("temperature", "5", 5, "temperature must be a number from 0 to 2, got 5"),
    ("max_tokens", "0", 0, "max_tokens must be an integer from 1 to"),
    ("top_p", "0", 0, "top_p must be a number in (0, 1], got 0"),
]


@pytest.mark.parametrize(("field", "text", "value", "message"), BAD)
def test_sampling_refused_alike_by_spec_cli_and_server(field, text, value, message, capsys):
    # a spec string
    with pytest.raises(StrategySpecError) as info:
        parse_strategy(f"cot:{field}={text}")
    assert message in str(info.value) and info.value.field == field

    # the CLI (top_p has no flag: it is set in the spec)
    flag = {"temperature": "--temperature", "max_tokens": "--max-tokens"}.get(field)
    if flag:
        assert main(["solve", "hi", flag, text]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"ponder: error: {flag}: ") and message in err
    assert main(["solve", "hi", "--strategy", f"cot:{field}={text}"]) == 2
    assert message in capsys.readouterr().err

    # the server: the same value in the model field and in the body
    settings = ServeSettings(max_budget=5000)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(ApiError) as spec_err:
        parse_chat_request({"model": f"ponder/cot:{field}={text}", "messages": messages}, settings)
    assert spec_err.value.status == 400 and message in json.dumps(spec_err.value.body())
    assert spec_err.value.body()["error"]["param"] == "model"
    with pytest.raises(ApiError) as body_err:
        parse_chat_request({"model": "ponder/cot", "messages": messages, field: value}, settings)
    assert body_err.value.status == 400 and body_err.value.body()["error"]["param"] == field
    assert message in body_err.value.body()["error"]["message"]


def test_a_strategy_constraint_on_a_body_field_blames_that_field():
    """temperature=0 in the body, sent to beam (which needs > 0), is the body field's fault."""
    settings = ServeSettings(max_budget=5000)
    b = {"model": "ponder/beam", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    with pytest.raises(ApiError) as info:
        parse_chat_request(b, settings)
    assert info.value.body()["error"]["param"] == "temperature"
    assert "temperature must be > 0 for beam" in info.value.body()["error"]["message"]


def test_spec_is_a_real_attribute_and_round_trips():
    for name, cls in STRATEGIES.items():
        assert cls().spec == name  # defaults: the bare name
    s = parse_strategy("vote:n=8,temperature=0.5,seed=3")
    assert s.spec == "vote:n=8,temperature=0.5"  # the seed is left out (bench keys it apart)
    assert parse_strategy(s.spec).spec == s.spec
    assert s.sampling.seed == 3 and s.sampling.temperature == 0.5
    assert re.fullmatch(r"beam:verifier=arith", parse_strategy("beam:verifier=arith").spec)

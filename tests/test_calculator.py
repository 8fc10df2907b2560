"""The calculator tool: equations a sample writes are completed with their exact values."""

from __future__ import annotations

import asyncio

import pytest

from ponder.budget import Budget
from ponder.models.base import Request
from ponder.models.scripted import ScriptedModel
from ponder.problems.base import Problem
from ponder.think import final_result, parse_strategy
from ponder.tools.calculator import Calculating, calculating, value_for


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("57*3=", "171"),
        ("so 4 + 5 =", " 9"),
        ("84/7=", "12"),
        ("8/3=", "2.67"),  # an inexact division: two decimals, as Toolformer rounds
        ("12-15=", "-3"),
        ("2.5*4=", "10"),
        ("0.1+0.2=", "0.3"),  # decimal arithmetic, not binary floating point
        ("6×7=", "42"),
        ("100-75=25,25-8=", "17"),  # a countdown beam path: the last operation
        ("[57 3|46] 57+3=60 57-3=", "54"),
    ],
)
def test_an_equation_at_the_end_gets_its_exact_value(text, value):
    assert value_for(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "57*3",  # no "=" yet
        "57*3=171",  # already answered
        "x+3=",  # not two numbers
        "5/0=",  # left to the model
        "1,000+5=",  # "000" is the tail of a longer number
        "3.14159265358979323+1=",  # a decimal part too long to be one number
        "the answer is =",
        "",
    ],
)
def test_no_value_where_there_is_no_equation_to_compute(text):
    assert value_for(text) is None


def slipping_model() -> ScriptedModel:
    """Writes an equation with a wrong product, and, once it is corrected, reads the value the
    calculator wrote and goes on from it (as a model continues its own text)."""

    def reply(request: Request, _: int) -> str:
        prefix = request.prefix or ""
        if not prefix:
            return "We need 12 * 7 = 86 apples"
        if prefix.endswith("12 * 7 = 84"):
            return " apples, and 84 + 6 = 91 in all. \\boxed{91}"
        if prefix.endswith("84 + 6 = 90"):
            return " in all. \\boxed{90}"
        return " lost"

    return ScriptedModel(reply)


def run(coro):
    return asyncio.run(coro)


def test_the_sample_goes_on_from_the_calculators_value_and_is_charged_once_per_token():
    model = slipping_model()
    pieces: list[tuple[int, str]] = []
    request = Request.chat("How many?", max_tokens=50, temperature=0)
    on_text = lambda i, piece: pieces.append((i, piece))  # noqa: E731
    completion = run(Calculating(model).generate(request, on_text=on_text))
    (s,) = completion.samples
    assert s.text == "We need 12 * 7 = 84 apples, and 84 + 6 = 90 in all. \\boxed{90}"
    assert "".join(p for _, p in pieces) == s.text  # the values are streamed as they are written
    assert {i for i, _ in pieces} == {0}
    # Three calls: the first stopped at "=", each continuation starts after a value.
    assert [r.prefix for r in model.requests] == [
        None, "We need 12 * 7 = 84", "We need 12 * 7 = 84 apples, and 84 + 6 = 90",
    ]  # fmt: skip
    # The model wrote 6 + 6 + 3 tokens; the two values are 1 token each, charged as prompt tokens
    # (processed, not generated); the re-sent text so far is not charged again.
    assert s.completion_tokens == 15
    assert completion.usage.completion_tokens == 15
    first_prompt = model.count_prompt_tokens(request)
    assert completion.usage.prompt_tokens == first_prompt + 2
    assert completion.usage.calls == 3
    assert s.finish_reason == "stop"


def test_max_tokens_holds_for_the_whole_text_values_included():
    request = Request.chat("How many?", max_tokens=13, temperature=0)
    (s,) = run(Calculating(slipping_model()).generate(request)).samples
    # 6 model tokens, 1 value, then 6 more model tokens reach the cap at the next "=": no room
    # is left for its value.
    assert s.text == "We need 12 * 7 = 84 apples, and 84 + 6 ="
    assert s.finish_reason == "length"
    assert s.completion_tokens == 12


def test_a_sample_that_fills_the_context_ends_there_without_an_error():
    model = slipping_model()
    request = Request.chat("How many?", max_tokens=50, temperature=0)
    model.context_length = model.count_prompt_tokens(request) + 7  # up to and including "84"
    (s,) = run(Calculating(model).generate(request)).samples
    assert s.text == "We need 12 * 7 = 84"
    assert s.finish_reason == "length"
    assert len(model.requests) == 1


def test_a_callers_should_stop_sees_the_whole_sample_and_ends_it():
    seen: list[str] = []

    def stop_at_and(_: int, partial) -> bool:
        seen.append(partial.text)
        return partial.text.endswith("and")

    request = Request.chat("How many?", max_tokens=50, temperature=0)
    (s,) = run(Calculating(slipping_model()).generate(request, should_stop=stop_at_and)).samples
    assert s.text == "We need 12 * 7 = 84 apples, and"
    assert s.finish_reason == "cancelled"
    assert "We need 12 * 7 = 84 apples," in seen  # the value is part of what the check reads


def test_n_samples_each_continue_on_their_own_and_pay_for_their_own_values():
    class ChargedPerSample(ScriptedModel):
        """Prices a request's prompt once per sample, as the hf backend does (n copies)."""

        def count_prompt_tokens(self, request: Request) -> int:
            return super().count_prompt_tokens(request) * request.n

    model = ChargedPerSample(slipping_model()._replies)
    request = Request.chat("How many?", n=3, max_tokens=50, temperature=0)
    one = model.count_prompt_tokens(Request.chat("How many?"))
    model.context_length = one + 30  # room for one sample's text, not for three prompts
    completion = run(Calculating(model).generate(request))
    assert [s.text[-10:] for s in completion.samples] == ["\\boxed{90}"] * 3
    assert [s.finish_reason for s in completion.samples] == ["stop"] * 3
    assert completion.usage.prompt_tokens == 3 * one + 3 * 2  # two 1-token values each


def test_a_strategy_with_calculator_on_answers_from_the_calculated_text():
    problem = Problem(id="p", question="How many?", answer="90")
    cot = parse_strategy("cot:calculator=on,max_tokens=50")
    assert cot.spec == "cot:calculator=True,max_tokens=50"
    result = run(final_result(cot.run(problem, slipping_model(), Budget())))
    assert result.answer == "90"
    plain = parse_strategy("cot:max_tokens=50")
    # Without it, the model's own "12 * 7 = 86" leads it nowhere (its script says " lost").
    assert run(final_result(plain.run(problem, slipping_model(), Budget()))).answer == "86"



def test_wrapping_twice_is_wrapping_once():
    model = calculating(ScriptedModel(["x"]))
    assert calculating(model) is model
    assert model.describe()["tools"] == ["calculator"]


@pytest.mark.slow
def test_the_lab_countdown_model_with_the_calculator_writes_no_wrong_equation():
    """The real hf backend: greedy samples of the shipped countdown searcher, whose own products
    slip (the stop-26 model wrote ``17*5=135`` on one of these puzzles), come back with every
    equation right, and each continuation goes on from the calculator's value."""
    import re

    from ponder.models import resolve
    from ponder.problems import load_problems
    from ponder.think.base import solve_request
    from ponder.think.config import Sampling

    model = resolve("lab:countdown-grpo", threads=1)
    problems = load_problems("countdown", limit=4, seed=10_000, count="3-4", split="test")
    # a value may have decimals: the calculator writes an inexact division to two (5/4=1.25)
    num = r"\d+(?:\.\d+)?"
    equation = re.compile(rf"(?<![\d.])({num})([-+*/])({num})=(-?{num})")

    def wrong(text: str) -> list[str]:
        from decimal import Decimal

        ops = {"+": Decimal.__add__, "-": Decimal.__sub__, "*": Decimal.__mul__}
        bad = []
        for a, op, b, c in equation.findall(text):
            x, y, z = Decimal(a), Decimal(b), Decimal(c)
            if op == "/":
                ok = y != 0 and round(x / y, 2) == z
            else:
                ok = ops[op](x, y) == z
            if not ok:
                bad.append(f"{a}{op}{b}={c}")
        return bad

    async def both():
        plain, calc = [], []
        for p in problems:
            request = solve_request(p, Sampling(300, 0.0))
            plain.append((await model.generate(request)).samples[0])
            calc.append((await Calculating(model).generate(request)).samples[0])
        return plain, calc

    plain, calc = run(both())
    assert any(wrong(s.text) for s in plain), "the model no longer slips: pick other puzzles"
    assert all(equation.search(s.text) for s in calc)
    assert [wrong(s.text) for s in calc] == [[] for _ in calc]
    assert all(0 < s.completion_tokens <= 300 for s in calc)

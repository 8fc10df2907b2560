"""`code` (tool-integrated reasoning) and `auto`'s tool route, on scripted models that write
programs: the real sandbox runs them (tests that need it skip where bwrap cannot run)."""

from __future__ import annotations

import asyncio

import pytest

from ponder.budget import Budget, Usage
from ponder.events import Final, Phase, Sampled, TextDelta, ToolCalled, ToolResult, Voted
from ponder.problems.base import Problem
from ponder.serve.transcript import Transcript as ServeTranscript
from ponder.terminal import tool_line
from ponder.think import StrategySpecError, parse_strategy
from ponder.think import auto as auto_module
from ponder.think import code as code_module
from ponder.think.auto import arithmetic_heavy
from ponder.think.code import CODE_TASK_SYSTEM, OUTPUT_TURN, TOOL_SYSTEM, cap, split_turn
from ponder.tools.sandbox import SandboxUnavailable, sandbox_host
from ponder.verify import check
from recording import Recorder

try:
    sandbox_host()
    NO_SANDBOX = ""
except SandboxUnavailable as e:
    NO_SANDBOX = str(e)
needs_sandbox = pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox here: {NO_SANDBOX}")

MUL = Problem("mul", "Compute 487 * 596.", "290252", "numeric")
PROGRAM = "I will compute it.\n```python\nprint(487 * 596)\n```\n"

# A code problem with visible (docstring) examples and a hidden test they do not cover.
ADD_PROMPT = '''def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
'''
ADD_TEST = (
    "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(10, 20) == 30\n"
)
ADD = Problem(
    "add", f"```python\n{ADD_PROMPT}```", None, "code",
    {"prompt": ADD_PROMPT, "entry_point": "add", "test": ADD_TEST},
)  # fmt: skip


def events_of(spec: str, model, problem: Problem = MUL, budget: Budget | None = None):
    strategy = parse_strategy(spec) if isinstance(spec, str) else spec

    async def go():
        return [ev async for ev in strategy.run(problem, model, budget or Budget())]

    return asyncio.run(go())


def result_of(events, model: Recorder):
    """The Result, after checking that its trace is its events and its usage is exactly the sum
    of the model's calls (the meter charged every one of them, tool outputs as prompt tokens)."""
    assert isinstance(events[-1], Final)
    result = events[-1].result
    assert result.trace == [e for e in events[:-1] if not isinstance(e, TextDelta)]
    total = sum(model.usages, Usage())
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.calls) == (
        total.prompt_tokens, total.completion_tokens, total.calls
    )
    return result


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def last_content(request) -> str:
    return request.prompt if request.prompt is not None else request.messages[-1]["content"]


# --- code ---


@needs_sandbox
def test_the_programs_output_reaches_the_next_turn_and_every_call_is_metered():
    def reply(request, i):
        last = last_content(request)
        if last.startswith(OUTPUT_TURN):
            return "The program says 290252, so \\boxed{290252}"
        return PROGRAM + "The product is about 5."  # never written: the block's end stops it

    model = Recorder(reply)
    events = events_of("code", model)
    result = result_of(events, model)
    assert result.answer == "290252" and len(model.requests) == 2
    first, second = model.requests
    assert first.messages[0]["content"] == TOOL_SYSTEM and "```output" in first.stop
    # the model's turn up to its program, then the output as a user turn
    assert second.messages[-2] == {"role": "assistant", "content": PROGRAM.rstrip("\n")}
    assert second.messages[-1]["content"].startswith(OUTPUT_TURN + "[stdout]\n290252\n")
    # the output is charged as prompt tokens of the call that reads it
    assert model.usages[1].prompt_tokens > model.usages[0].prompt_tokens
    (called,), (ran,) = of(events, ToolCalled), of(events, ToolResult)
    assert (called.call, called.language, called.code) == (0, "python", "print(487 * 596)\n")
    assert ran.exit_code == 0 and ran.killed_by is None and "290252" in ran.output
    turns = of(events, Sampled)
    assert [e.sample for e in turns] == [0, 0]
    # stopped one token after the closing fence (until then "```" could still become "```output",
    # the stop string, so the text held it back): 9 tokens of program, "The" dropped
    assert turns[0].finish_reason == "cancelled" and model.usages[0].completion_tokens == 10
    assert result.how == "1 tool call; answered; answer stated"
    assert "```output\n[stdout]\n290252" in result.text and result.text.endswith("\\boxed{290252}")


@needs_sandbox
def test_rounds_cap_the_tool_calls():
    model = Recorder(lambda request, i: f"```python\nprint({i})\n```")
    events = events_of("code:rounds=2", model)
    result = result_of(events, model)
    assert len(of(events, ToolCalled)) == 2 and len(model.requests) == 3
    assert "its program was not run: the 2 tool calls were used" in result.how
    # no boxed answer: program-of-thought reads what the last program that ran printed
    assert result.answer == "1" and "read from the last program's output" in result.how


@needs_sandbox
def test_bad_code_is_the_models_mistake_shown_to_it_not_a_crash():
    def reply(request, i):
        last = last_content(request)
        if "SyntaxError" in last:
            return "I made a mistake.\n```python\nprint(487 * 596)\n```"
        if last.startswith(OUTPUT_TURN):
            return "\\boxed{290252}"
        return "```python\nprint(487 *\n```"

    model = Recorder(reply)
    events = events_of("code", model)
    result = result_of(events, model)
    bad, good = of(events, ToolResult)
    assert bad.exit_code == 1 and "SyntaxError" in bad.output and good.exit_code == 0
    assert result.answer == "290252" and "2 tool calls" in result.how


@needs_sandbox
def test_text_turns_append_the_output_to_a_raw_prompt():
    def reply(request, i):
        return "\\boxed{290252}" if "```output" in request.prompt else PROGRAM

    model = Recorder(reply)
    result = result_of(events_of("code:turns=text", model), model)
    first, second = model.requests
    assert first.prompt.startswith(TOOL_SYSTEM) and "Compute 487 * 596." in first.prompt
    assert second.prompt.startswith(first.prompt + PROGRAM)
    assert "```output\n[stdout]\n290252\n" in second.prompt and result.answer == "290252"


@needs_sandbox
def test_a_program_that_runs_too_long_is_killed_and_the_run_goes_on():
    def reply(request, i):
        if OUTPUT_TURN in last_content(request):
            return "\\boxed{1}"
        return "```python\nwhile True: pass\n```"

    model = Recorder(reply)
    events = events_of("code:timeout=1", model)
    (ran,) = of(events, ToolResult)
    assert ran.exit_code is None and ran.killed_by == "timeout"
    assert "wall-clock timeout" in ran.output
    assert result_of(events, model).answer == "1"


@needs_sandbox
def test_long_output_is_capped_for_the_model():
    model = Recorder(lambda r, i: "\\boxed{0}" if i else "```python\nprint('x' * 100000)\n```")
    events = events_of("code:output_chars=400", model)
    (ran,) = of(events, ToolResult)
    assert len(ran.output) < 500 and "characters cut" in ran.output
    assert OUTPUT_TURN + ran.output == last_content(model.requests[1])


@needs_sandbox
@pytest.mark.parametrize("budget", [25, 60, 90, 140, None])
def test_budget_is_never_exceeded_and_usage_is_exact(budget):
    model = Recorder(lambda r, i: f"Step {i}.\n```python\nprint({i} * 7)\n```\nmore words here")
    events = events_of("code:rounds=3,max_tokens=20", model, budget=Budget(budget))
    result = result_of(events, model)
    if budget is not None:
        assert result.usage.total_tokens <= budget
    assert result.how


@needs_sandbox
def test_n_runs_are_majority_voted():
    answers = {0: "5", 1: "7", 2: "5"}

    def reply(request, i):
        if request.n == 3:
            return f"```python\nprint({i})\n```"
        ran = last_content(request).split("[stdout]\n")[1].split("\n")[0]
        return f"\\boxed{{{answers[int(ran)]}}}"

    model = Recorder(reply)
    events = events_of("code:n=3,temperature=0.7,seed=4", model)
    result = result_of(events, model)
    assert model.requests[0].n == 3 and [r.n for r in model.requests[1:]] == [1, 1, 1]
    assert of(events, Voted)[-1].tally == {"5": 2.0, "7": 1.0}
    assert result.answer == "5"
    assert result.how.startswith("majority vote over 3 tool-integrated runs, 2 agree; run 0: ")
    # the batched first turns draw seed 4; each run's later turns seeds of their own
    assert model.requests[0].seed == 4 and {r.seed for r in model.requests[1:]} == {7, 10, 13}


def test_no_sandbox_is_a_one_line_setup_error_before_any_model_call(monkeypatch):
    def refuse():
        raise SandboxUnavailable("the Python sandbox needs bubblewrap, which is not installed")

    monkeypatch.setattr(code_module, "check_available", refuse)
    model = Recorder(["```python\nprint(1)\n```"])
    with pytest.raises(SandboxUnavailable, match="needs bubblewrap"):
        events_of("code", model)
    assert model.requests == []


@needs_sandbox
def test_on_a_code_task_the_tool_runs_the_visible_examples_never_the_hidden_tests():
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    # passes both visible examples, fails the hidden add(10, 20) == 30
    sneaky = "```python\ndef add(a, b):\n    return 5 if a == 2 else a + b if a < 0 else 0\n```"

    def reply(request, i):
        return sneaky if OUTPUT_TURN in last_content(request) else wrong

    model = Recorder(reply)
    events = events_of("code", model, problem=ADD)
    result = result_of(events, model)
    assert model.requests[0].messages[0]["content"] == CODE_TASK_SYSTEM
    first, second = of(events, ToolResult)
    assert "example 1: add(2, 3) returned -1, expected 5" in first.output
    assert "0/2 examples pass" in first.output and "ponder-done" not in first.output
    assert "2/2 examples pass" in second.output and "10, 20" not in first.output + second.output
    assert result.how == (
        "2 tool calls; its function passes the 2 visible examples; answer the last function written"
    )
    assert result.answer.startswith("def add") and "a < 0" in result.answer
    assert not check(ADD, result.text).ok  # graded by the hidden tests, which it never saw


def test_split_turn_and_cap():
    text = "Let me see.\n```python\nprint(1)\n```\nthen more\n```python\nprint(2)\n```"
    assert split_turn(text) == ("Let me see.\n```python\nprint(1)\n```", "print(1)\n")
    assert split_turn("no code \\boxed{3}") == ("no code \\boxed{3}", None)
    assert split_turn("```python\nx = 1\n```\nso \\boxed{1}")[1] is None  # answered after it
    assert split_turn("```python\nx = 1\n```\nso \\boxed{1}", stated_after=False)[1] == "x = 1\n"
    assert split_turn("```python\nprint(1)")[1] is None  # cut before the block closed
    assert split_turn("```output\n3\n```")[1] is None
    assert cap("abc", 10) == "abc"
    capped = cap("a" * 50 + "b" * 50, 20)
    assert capped.startswith("a" * 10) and capped.endswith("b" * 10)
    assert "80 characters cut" in capped


def test_code_options_are_checked_once():
    for bad, match in [("code:rounds=-1", "rounds"), ("code:turns=xml", "turns"),
                       ("code:n=2", "temperature must be > 0"), ("code:timeout=0", "timeout"),
                       ("code:memory=8", "memory"), ("code:output_chars=10", "output_chars")]:
        with pytest.raises(StrategySpecError, match=match):
            parse_strategy(bad)
    strategy = parse_strategy("code:rounds=2,n=4,temperature=0.5")
    assert strategy.spec == "code:rounds=2,n=4,temperature=0.5"
    assert parse_strategy(strategy.spec).spec == strategy.spec


def test_tool_events_render_as_one_short_line_each():
    called = ToolCalled(3, "python", "x = 1\nprint(x)\n")
    ran = ToolResult(3, "[stdout]\n1\n[exit status 0 · 0.05 s]", 0, None, 0.05)
    killed = ToolResult(4, "[killed: wall-clock timeout (1 s) · 1.00 s]", None, "timeout", 1.0)
    assert tool_line(called) == "[tool] call 3: running 2 lines of python"
    assert tool_line(ran) == "[tool] call 3: exit status 0, 0.05 s: 1"
    assert tool_line(killed) == "[tool] call 4: killed (timeout), 1.00 s"
    t = ServeTranscript()
    text = t.feed(Sampled(0, "```python\nx = 1\nprint(x)\n```", None, 9, "stop"))
    text += t.feed(called) + t.feed(ran) + t.feed(killed) + t.finish()
    assert "· tool call 3: running 2 lines of python\n" in text
    assert "· tool call 3: exit status 0, 0.05 s: 1\n" in text
    assert "· tool call 4: stopped (timeout limit), 1.00 s\n" in text
    assert called.to_dict()["type"] == "ToolCalled" and ran.to_dict()["killed_by"] is None


# --- auto's tool route ---


def test_arithmetic_heavy_is_a_rule_on_digits_and_operators():
    assert arithmetic_heavy("Compute 47 + 85.") == ""
    assert arithmetic_heavy("Compute 487 * 596.").startswith("arithmetic-heavy (6 digits")
    assert arithmetic_heavy("Janet has 3 ducks and 16 eggs.") == ""
    assert arithmetic_heavy("A loan of 120000 at 4.5 percent over 30 years") != ""


@needs_sandbox
def test_auto_routes_a_code_task_to_code_without_a_probe():
    model = Recorder(["```python\ndef add(a, b):\n    return a + b\n```"])
    events = events_of("auto", model, problem=ADD)
    result = result_of(events, model)
    assert len(model.requests) == 1 and model.requests[0].n == 1  # no probe
    assert model.requests[0].messages[0]["content"] == CODE_TASK_SYSTEM
    assert result.how.startswith("auto: a code task -> code (runs its function on the prompt's")
    (phase,) = of(events, Phase)
    assert phase.name == "route" and phase.detail.startswith("a code task -> code")
    assert check(ADD, result.text).ok


WRONG = ["\\boxed{290000}", "\\boxed{290252}", "\\boxed{300000}", "\\boxed{280000}"]


@needs_sandbox
def test_auto_routes_a_disagreeing_probe_on_heavy_arithmetic_to_code():
    def reply(request, i):
        if request.n == 4:
            return WRONG[i]
        return "\\boxed{290252}" if OUTPUT_TURN in last_content(request) else PROGRAM

    model = Recorder(reply)
    events = events_of("auto:verifier=arith", model)
    result = result_of(events, model)
    assert result.answer == "290252" and len(of(events, ToolCalled)) == 1
    assert result.how.startswith(
        "auto: arithmetic-heavy (6 digits in 2 numbers, 1 operator) and the probe disagrees "
        "(1/4 probe samples agree"
    )
    assert result.how.endswith("-> code: 1 tool call; answered; answer stated")
    assert [p.name for p in of(events, Phase)] == ["probe", "route"]


@needs_sandbox
@pytest.mark.parametrize("budget", [30, 70, 120, 200, None])
def test_auto_through_code_never_exceeds_the_budget(budget):
    def reply(request, i):
        if request.n == 4:
            return WRONG[i] + " and some more words"
        return "\\boxed{290252}" if OUTPUT_TURN in last_content(request) else PROGRAM

    model = Recorder(reply)
    spec = "auto:verifier=arith,probe_tokens=8,max_tokens=24"
    events = events_of(spec, model, budget=Budget(budget))
    result = result_of(events, model)
    if budget is not None:
        assert result.usage.total_tokens <= budget
    assert result.how.startswith("auto: ")


def test_auto_with_tools_off_or_no_sandbox_routes_as_before(monkeypatch):
    def reply(request, i):
        return WRONG[i % 4] if request.n == 4 else "4+8+1=13\n\\boxed{290252}"

    model = Recorder(reply)
    off = result_of(events_of("auto:verifier=arith,split=line,tools=off", model), model)
    assert off.how.startswith("auto: hard (1/4 probe samples agree") and "-> reflect" in off.how
    assert "sandbox" not in off.how

    def refuse():
        raise SandboxUnavailable("bwrap cannot create a sandbox here")

    monkeypatch.setattr(auto_module, "check_available", refuse)
    model = Recorder(reply)
    events = events_of("auto:verifier=arith,split=line", model)
    result = result_of(events, model)
    assert "-> reflect" in result.how and not of(events, ToolCalled)
    unavailable = "the sandbox is unavailable (bwrap cannot create a sandbox here): routed as usual"
    assert unavailable in result.how
    assert of(events, Phase)[-1].name == "route"
    # a code task without a sandbox: probed and voted as any problem, and the trace says why
    model = Recorder(["```python\ndef add(a, b):\n    return a + b\n```"])
    events = events_of("auto", model, problem=ADD)
    result = result_of(events, model)
    assert model.requests[0].n == 4 and not of(events, ToolCalled)
    assert result.how.startswith("auto: easy (4/4 probe samples agree")
    assert result.how.endswith("a code task, but the sandbox is unavailable (bwrap cannot create a "
                               "sandbox here): routed as usual")
    with pytest.raises(StrategySpecError, match="tools must be one of auto, off"):
        parse_strategy("auto:tools=always")

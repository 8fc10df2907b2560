"""Client tool calls (OpenAI function calling) through `ponder serve`, with the real `openai` SDK
against a server on 127.0.0.1: the scripted fake through the prompt-and-parse fallback
(``tools.calls``), an OpenAI-compatible upstream with native tool calls (the stub), and the
embedded model's fallback. Plain and streamed; a vote over calls; tool results that continue the
conversation; tool_choice none / required / named; parallel_tool_calls."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from ponder.budget import Budget
from ponder.models import ScriptedModel
from ponder.models.openai_http import OpenAIModel
from ponder.problems.base import Problem
from ponder.problems.conversation import ToolCall, Tools, calls_key, parse_tools
from ponder.serve.background import BackgroundServer
from ponder.serve.settings import ServeSettings
from ponder.think import final_result, parse_strategy
from ponder.tools import calls as fallback

from openai_stub_server import StubServer

pytestmark = pytest.mark.slow  # starts servers (each test well under a few seconds)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def call_block(name: str, args: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'


PARIS = "I will look it up.\n" + call_block("get_weather", '{"city": "Paris"}')


def client(srv: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)


def serve(model, **kw) -> BackgroundServer:
    return BackgroundServer(model, ServeSettings(max_budget=20000, **kw))


def rendered(request) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in request.messages or ())


def streamed_calls(chunks) -> tuple[list[dict], str | None, str]:
    """Reassemble tool-call deltas by index, as a client does: (calls, finish, reasoning)."""
    calls: dict[int, dict] = {}
    finish, reasoning = None, ""
    for ch in chunks:
        if not ch.choices:
            continue
        d = ch.choices[0].delta
        reasoning += getattr(d, "reasoning_content", None) or ""
        for t in d.tool_calls or ():
            c = calls.setdefault(t.index, {"id": None, "name": "", "arguments": ""})
            c["id"] = t.id or c["id"]
            c["name"] += (t.function.name or "") if t.function else ""
            c["arguments"] += (t.function.arguments or "") if t.function else ""
        finish = ch.choices[0].finish_reason or finish
    return [calls[i] for i in sorted(calls)], finish, reasoning


# --- the fallback's format -------------------------------------------------------------------


def test_the_fallback_reads_calls_and_records_the_models_mistakes():
    tools = parse_tools([WEATHER, TIME])
    calls, warning = fallback.parse(PARIS, tools)
    assert warning is None and [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})]  # fmt: skip
    assert calls[0].id.startswith("call_")
    two = call_block("get_time", "{}") + "\n" + call_block("get_weather", '"{\\"city\\": \\"Rome\\"}"')
    assert [c.name for c in fallback.parse(two, tools)[0]] == ["get_time", "get_weather"]
    unclosed = '<tool_call>\n{"name": "get_time", "arguments": {}}'  # EOS before the close tag
    assert [c.name for c in fallback.parse(unclosed, tools)[0]] == ["get_time"]
    for bad, words in [
        ("<tool_call>\n{not json}\n</tool_call>", "not JSON"),
        (call_block("launch_rockets", "{}"), "'launch_rockets', which is not offered"),
        (call_block("get_weather", '["Paris"]'), "not a JSON object"),
        ('<tool_call>\n{"name": "get_weather", "arguments": {"ci', "(unclosed)"),
    ]:
        calls, warning = fallback.parse(bad, tools)
        assert calls == () and words in warning, (bad, warning)
    single = parse_tools([WEATHER, TIME], parallel=False)
    calls, warning = fallback.parse(two, single)
    assert [c.name for c in calls] == ["get_time"] and "kept the first of 2" in warning
    assert fallback.parse("The weather is fine. \\boxed{fine}", tools) == ((), None)
    assert fallback.parse(PARIS, parse_tools([WEATHER], "none")) == ((), None)


def test_the_vote_key_normalises_arguments_and_ignores_call_order():
    a = [ToolCall("call_1", "get_weather", '{"city": "Paris", "unit": "C"}'),
         ToolCall("call_2", "get_time", "{}")]  # fmt: skip
    b = [ToolCall("x", "get_time", "{ }"), ToolCall("y", "get_weather", '{"unit":"C","city":"Paris"}')]
    assert calls_key(a) == calls_key(b) == 'get_time({}); get_weather({"city": "Paris", "unit": "C"})'
    assert calls_key([ToolCall("z", "get_weather", '{"city": "Rome"}')]) != calls_key(a)


def test_a_conversation_with_calls_is_written_out_for_a_model_without_tools():
    tools = Tools(parse_tools([WEATHER]).functions)
    call = ToolCall("call_9", "get_weather", '{"city": "Paris"}')
    messages = (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": (call,)},
        {"role": "tool", "content": "18 C, sunny", "tool_call_id": "call_9"},
        {"role": "tool", "content": "humidity 40%", "tool_call_id": "call_9"},
    )
    out = fallback.render(messages, tools)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.\n\n# Tools") and '"get_weather"' in out[0]["content"]
    assert out[2]["content"] == call_block("get_weather", '{"city": "Paris"}')
    assert out[3]["content"] == ("<tool_response>\n18 C, sunny\n</tool_response>\n"
                                 "<tool_response>\nhumidity 40%\n</tool_response>")  # fmt: skip
    assert all(set(m) == {"role", "content"} for m in out)


# --- the scripted model through the fallback, via the openai SDK ------------------------------


def test_a_fallback_call_reaches_the_sdk_as_tool_calls_plain_and_streamed():
    model = ScriptedModel([PARIS])
    with serve(model) as srv:
        c = client(srv)
        r = c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER])
        chunks = list(c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER],
                                                stream=True))  # fmt: skip
        with c.chat.completions.stream(model="ponder/cot", messages=ASK, tools=[WEATHER]) as s:
            final = s.get_final_completion()
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert "<tool_call>" in choice.message.reasoning_content  # the work still shows
    assert r.ponder["answer"] == 'get_weather({"city": "Paris"})'

    calls, finish, reasoning = streamed_calls(chunks)
    assert finish == "tool_calls" and "<tool_call>" in reasoning
    assert [(x["name"], json.loads(x["arguments"])) for x in calls] == [
        ("get_weather", {"city": "Paris"})]  # fmt: skip
    assert calls[0]["id"].startswith("call_")

    (fc,) = final.choices[0].message.tool_calls  # the SDK's own stream accumulator
    assert final.choices[0].finish_reason == "tool_calls"
    assert fc.function.name == "get_weather" and json.loads(fc.function.arguments) == {"city": "Paris"}

    system = model.requests[0].messages[0]["content"]
    assert "# Tools" in system and '"name": "get_weather"' in system and "<tool_call>" in system
    assert "<tool_response>" in model.requests[0].stop  # no invented tool results


def test_a_vote_over_calls_picks_the_majority_call():
    # 2 x Rome first, 3 x Paris with different spellings of the same arguments
    replies = [
        call_block("get_weather", '{"city": "Rome"}'),
        call_block("get_weather", '{"city": "Paris", "unit": "C"}'),
        call_block("get_weather", '{"city":"Rome"}'),
        call_block("get_weather", '{"unit": "C", "city": "Paris"}'),
        "Let me check.\n" + call_block("get_weather", '{ "city" : "Paris", "unit" : "C" }'),
    ]
    with serve(ScriptedModel(replies)) as srv:
        c = client(srv)
        r = c.chat.completions.create(model="ponder/vote:n=5", messages=ASK, tools=[WEATHER])
        chunks = list(c.chat.completions.create(model="ponder/vote:n=5", messages=ASK,
                                                tools=[WEATHER], stream=True))  # fmt: skip
    (call,) = r.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "C"}
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.ponder["how"] == "majority vote: 3/5 samples agree"
    assert "votes: get_weather" in r.choices[0].message.reasoning_content
    calls, finish, _ = streamed_calls(chunks)
    assert finish == "tool_calls" and json.loads(calls[0]["arguments"])["city"] == "Paris"


def test_calls_and_text_answers_compete_in_one_majority():
    text = "It is sunny in Paris. \\boxed{sunny}"
    replies = [PARIS, text, text, PARIS, text]
    problem = Problem("p", ASK[0]["content"], messages=tuple(ASK), tools=parse_tools([WEATHER]))
    strategy = parse_strategy("vote:n=5")
    result = asyncio.run(final_result(strategy.run(problem, ScriptedModel(replies), Budget())))
    assert result.answer == "sunny" and result.tool_calls == ()
    result = asyncio.run(final_result(strategy.run(problem, ScriptedModel(replies[3:] + replies[:3]),
                                                   Budget())))  # fmt: skip
    assert result.answer == "sunny"  # 3 text answers beat 2 calls, whichever came first
    calls_win = [PARIS, PARIS, text, PARIS, text]
    result = asyncio.run(final_result(strategy.run(problem, ScriptedModel(calls_win), Budget())))
    assert [c.name for c in result.tool_calls] == ["get_weather"]


def test_a_tool_result_reaches_the_model_and_continues_the_conversation():
    def reply(request, _i):
        last = request.messages[-1]["content"]
        return "It is 18 C and sunny in Paris. \\boxed{18}" if "<tool_response>" in last else PARIS

    model = ScriptedModel(reply)
    with serve(model) as srv:
        c = client(srv)
        first = c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER])
        call = first.choices[0].message.tool_calls[0]
        history = [
            *ASK,
            first.choices[0].message.model_dump(include={"role", "content", "tool_calls"}),
            {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"},
        ]
        second = c.chat.completions.create(model="ponder/cot", messages=history, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content.endswith("\\boxed{18}")
    assert second.choices[0].message.tool_calls is None
    seen = model.requests[-1].messages
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "user"]
    assert seen[2]["content"] == call_block("get_weather", '{"city": "Paris"}')
    assert seen[3]["content"] == "<tool_response>\n18 C, sunny\n</tool_response>"


def test_tool_choice_none_required_and_named():
    model = ScriptedModel(["Sunny, I think. \\boxed{sunny}"])
    with serve(model) as srv:
        c = client(srv)
        none = c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER],
                                         tool_choice="none")  # fmt: skip
        required = c.chat.completions.create(model="ponder/cot", messages=ASK,
                                             tools=[WEATHER, TIME], tool_choice="required")
        named = c.chat.completions.create(
            model="ponder/cot", messages=ASK, tools=[WEATHER, TIME],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    systems = [r.messages[0]["content"] for r in model.requests]
    assert "# Tools" not in systems[0] and none.choices[0].finish_reason == "stop"  # not offered
    assert "You must call at least one function" in systems[1]
    assert '"get_time"' in systems[1] and '"get_weather"' in systems[1]
    assert "You must call get_time now." in systems[2] and '"get_weather"' not in systems[2]
    # a required call that never came: the text answer stands, with a warning
    assert required.choices[0].finish_reason == "stop"
    assert required.choices[0].message.content.endswith("\\boxed{sunny}")
    assert any("tool_choice requires a call" in w for w in required.ponder["warnings"])
    assert any("get_time" in w for w in named.ponder["warnings"])


def test_tool_choice_none_leaves_a_call_block_as_text():
    with serve(ScriptedModel([PARIS])) as srv:
        r = client(srv).chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER],
                                                tool_choice="none")  # fmt: skip
    assert r.choices[0].finish_reason == "stop" and "<tool_call>" in r.choices[0].message.content


def test_parallel_calls_and_the_parallel_tool_calls_switch():
    both = call_block("get_weather", '{"city": "Paris"}') + "\n" + call_block("get_time", "{}")
    model = ScriptedModel([both])
    with serve(model) as srv:
        c = client(srv)
        many = c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER, TIME])
        chunks = list(c.chat.completions.create(model="ponder/cot", messages=ASK,
                                                tools=[WEATHER, TIME], stream=True))  # fmt: skip
        one = c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER, TIME],
                                        parallel_tool_calls=False)  # fmt: skip
    assert [t.function.name for t in many.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    calls, _, _ = streamed_calls(chunks)
    assert [x["name"] for x in calls] == ["get_weather", "get_time"]
    assert len({x["id"] for x in calls}) == 2
    assert [t.function.name for t in one.choices[0].message.tool_calls] == ["get_weather"]
    assert any("kept the first of 2" in w for w in one.ponder["warnings"])
    assert "Make at most one call." in model.requests[-1].messages[0]["content"]


def test_a_malformed_call_is_the_models_mistake_and_a_plain_answer():
    with serve(ScriptedModel(['<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}}\n'
                              "</tool_call>"])) as srv:  # fmt: skip
        r = client(srv).chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER])
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None
    assert any("malformed" in w for w in r.ponder["warnings"])
    assert r.ponder["answer"] is None  # the text states no answer: it abstains


def test_n_choices_each_answer_with_their_own_calls():
    with serve(ScriptedModel([PARIS])) as srv:
        r = client(srv).chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER],
                                                n=2)  # fmt: skip
    assert [ch.finish_reason for ch in r.choices] == ["tool_calls", "tool_calls"]
    assert r.choices[0].message.tool_calls[0].id != r.choices[1].message.tool_calls[0].id


# --- an upstream with native tool calls ------------------------------------------------------


def test_native_tool_calls_of_an_upstream_pass_through():
    native = {"content": "", "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]}
    with StubServer([native]) as stub:
        with serve(OpenAIModel("stub-model", base_url=stub.base_url, max_retries=0)) as srv:
            c = client(srv)
            r = c.chat.completions.create(model="ponder/cot", messages=ASK, tools=[WEATHER],
                                          tool_choice="required", parallel_tool_calls=False)
            chunks = list(c.chat.completions.create(model="ponder/cot", messages=ASK,
                                                    tools=[WEATHER], stream=True))  # fmt: skip
            vote = c.chat.completions.create(model="ponder/vote:n=3", messages=ASK, tools=[WEATHER])
            call = r.choices[0].message.tool_calls[0]
            history = [*ASK, r.choices[0].message.model_dump(include={"role", "content", "tool_calls"}),
                       {"role": "tool", "tool_call_id": call.id, "content": "18 C"}]  # fmt: skip
            stub.replies = ["It is 18 C. \\boxed{18}"]
            after = c.chat.completions.create(model="ponder/cot", messages=history, tools=[WEATHER])
    sent = stub.requests[0]["body"]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is False
    assert "# Tools" not in sent["messages"][0]["content"]  # native: no fallback prompt
    assert r.choices[0].finish_reason == "tool_calls" and call.id == "call_stub0"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    calls, finish, _ = streamed_calls(chunks)  # upstream streamed its call in pieces
    assert finish == "tool_calls" and calls == [
        {"id": "call_stub0", "name": "get_weather", "arguments": '{"city": "Paris"}'}]  # fmt: skip
    assert vote.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert vote.ponder["how"] == "majority vote: 3/3 samples agree"
    last = stub.requests[-1]["body"]["messages"]
    assert last[2]["tool_calls"] == [{"id": "call_stub0", "type": "function",
                                      "function": {"name": "get_weather",
                                                   "arguments": '{"city": "Paris"}'}}]  # fmt: skip
    assert last[3] == {"role": "tool", "content": "18 C", "tool_call_id": "call_stub0"}
    assert after.choices[0].message.content.endswith("\\boxed{18}")


# --- the embedded model's fallback -----------------------------------------------------------


def test_the_embedded_model_gets_the_fallback_and_the_response_is_well_formed():
    from ponder.models import resolve

    model = resolve("default")
    try:
        with serve(model) as srv:
            r = client(srv).chat.completions.create(
                model="ponder/cot:max_tokens=48", messages=ASK, tools=[WEATHER],
                tool_choice="required",
            )
    finally:
        model.close()
    choice = r.choices[0]
    # The 135M model may or may not manage the format: either way the answer is well formed, and
    # a missed or malformed call is recorded as the model's mistake.
    if choice.finish_reason == "tool_calls":
        assert choice.message.content is None
        for t in choice.message.tool_calls:
            assert t.function.name == "get_weather" and isinstance(json.loads(t.function.arguments), dict)
    else:
        assert choice.message.tool_calls is None and r.ponder["warnings"]
    assert r.usage.prompt_tokens > 100  # the tools section was in the prompt


def test_strategies_without_client_tools_are_not_offered_them_but_read_the_history():
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    history = (*ASK, {"role": "assistant", "content": "", "tool_calls": (call,)},
               {"role": "tool", "content": "18 C", "tool_call_id": "call_1"})  # fmt: skip
    problem = Problem("p", ASK[0]["content"], messages=history, tools=parse_tools([WEATHER]))
    model = ScriptedModel(["18 C it is. \\boxed{18}"])
    result = asyncio.run(final_result(parse_strategy("think:max_tokens=32").run(
        problem, model, Budget())))  # fmt: skip
    assert result.tool_calls == () and model.requests
    for r in model.requests:
        assert r.tools is None and "# Tools" not in rendered(r)
        assert "<tool_response>\n18 C\n</tool_response>" in rendered(r)


def test_the_langchain_agent_example_calls_its_tool_and_answers(capsys):
    pytest.importorskip("langchain_openai")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "langchain_agent.py"
    spec = importlib.util.spec_from_file_location("langchain_agent", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with serve(ScriptedModel(example.scripted_reply)) as srv:
        example.agent(srv.base_url, "vote:n=3", "What is the weather in Paris?")
    out = capsys.readouterr().out
    assert "finish_reason=tool_calls" in out and "get_weather({'city': 'Paris'}) -> '18 C, sunny'" in out
    assert out.strip().endswith("final answer: The tool says it is 18 C, sunny. \\boxed{18 C, sunny}")

"""`ponder serve` pieces without a server: request parsing, the reasoning transcript, usage."""

from __future__ import annotations

import asyncio

import pytest

from ponder.budget import Usage
from ponder.events import Chosen, Phase, Result, Sampled, Scored, Spent, Stopped, TextDelta, Voted
from ponder.models import ScriptedModel
from ponder.serve.protocol import ApiError, parse_chat_request
from ponder.serve.run import settle, think
from ponder.serve.settings import ServeSettings
from ponder.serve.transcript import Transcript

SETTINGS = ServeSettings(max_budget=5000)


def body(**fields):
    return {
        "model": "ponder",
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        **fields,
    }


def refused(b) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_chat_request(b, SETTINGS)
    assert info.value.status == 400
    return info.value


def test_strategy_from_model_field_extra_body_or_default():
    assert parse_chat_request(body(model="ponder/vote:n=8"), SETTINGS).strategy.spec == "vote:n=8"
    assert parse_chat_request(body(model="gpt-4o"), SETTINGS).strategy.spec == "cot"
    assert parse_chat_request(body(model="ponder"), SETTINGS).strategy.spec == "cot"
    r = parse_chat_request(
        body(
            model="ponder/cot",
            ponder={"strategy": "adaptive:wave=2", "budget": 900, "events": True},
        ),
        SETTINGS,
    )
    assert (r.strategy.spec, r.budget.max_tokens, r.events) == ("adaptive:wave=2", 900, True)
    default = ServeSettings(default_strategy="vote:n=3")
    assert parse_chat_request(body(model="anything"), default).strategy.spec == "vote:n=3"


def test_request_fields_fill_the_strategy_and_stay_in_the_request():
    r = parse_chat_request(
        body(
            model="ponder/vote:n=2",
            max_completion_tokens=64,
            max_tokens=99,
            temperature=0.3,
            seed=5,
            stream=True,
            stream_options={"include_usage": True},
        ),
        SETTINGS,
    )
    s = r.strategy
    assert (s.n, s.max_tokens, s.temperature, s.seed) == (2, 64, 0.3, 5)
    assert r.stream and r.include_usage and not r.events
    assert r.budget.max_tokens == SETTINGS.max_budget  # no budget named: the server's cap
    # the spec's own values win over the request's sampling fields
    assert (
        parse_chat_request(
            body(model="ponder/cot:max_tokens=7", max_tokens=64), SETTINGS
        ).strategy.max_tokens
        == 7
    )
    # two requests never share a strategy object
    a, b = (parse_chat_request(body(model="ponder/vote"), SETTINGS) for _ in range(2))
    assert a.strategy is not b.strategy


def test_question_is_the_last_user_message():
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an earlier answer"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is"}, {"type": "text", "text": "3 + 3?"}],
        },
    ]
    assert (
        parse_chat_request({"model": "ponder", "messages": msgs}, SETTINGS).question
        == "What is\n3 + 3?"
    )


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"model": "ponder/nonesuch"}, "model", "unknown strategy 'nonesuch'"),
        ({"model": "ponder/vote:n=zero"}, "model", "n='zero'"),
        ({"model": "ponder/vote:k=2"}, "model", "bad parameter 'k=2'"),
        ({"model": "ponder/"}, "model", "names no strategy"),
        ({"ponder": {"strategy": "cot:max_tokens=0"}}, "ponder.strategy", "max_tokens"),
        ({"ponder": {"budget": 5001}}, "ponder.budget", "between 1 and 5000"),
        ({"ponder": {"budget": "lots"}}, "ponder.budget", "must be an integer"),
        ({"ponder": {"bugdet": 5}}, "ponder.bugdet", "unknown ponder option 'bugdet'"),
        ({"ponder": "vote"}, "ponder", "must be an object"),
        ({"max_tokens": 6000}, "max_tokens", "at most 5000"),
        ({"max_completion_tokens": 0}, "max_completion_tokens", "max_tokens must be an integer from 1"),
        ({"model": "ponder/cot:max_tokens=6000"}, "model", "at most 5000"),
        ({"temperature": float("nan")}, "temperature", "from 0 to 2, got nan"),
        ({"model": "ponder/cot:temperature=99"}, "model", "from 0 to 2, got 99"),
        ({"temperature": 3}, "temperature", "from 0 to 2"),
        ({"n": 9}, "n", "between 1 and 8"),
        ({"n": 0}, "n", "between 1 and 8"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "needs a function object"),
        ({"tools": {"type": "function"}}, "tools", "must be a list"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name",
         "1 to 64 letters"),
        ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools[0].type",
         "only function tools"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
         "tools[0].function.parameters", "JSON Schema object"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}] * 2},
         "tools[1].function.name", "two tools are named 'f'"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "always"},
         "tool_choice", "must be one of auto, none, required"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}],
          "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice",
         "not among the tools"),
        ({"tool_choice": "required"}, "tool_choice", "no tools were given"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "true or false"),
        ({"functions": [{"name": "f"}]}, "functions", "send tools"),
        ({"model": "ponder/beam", "tools": [{"type": "function", "function": {"name": "f"}}]},
         "tools", "cannot answer with tool calls"),
        ({"messages": [{"role": "user", "content": "hi"},
                       {"role": "assistant", "content": None, "tool_calls": [{"type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]},
                       {"role": "tool", "content": "1"}]}, "messages[1].tool_calls[0].id",
         "needs its id"),
        ({"messages": [{"role": "user", "content": "hi"},
                       {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]},
         "messages[1]", "its tool calls have no results"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "messages", "no user message"),
        ({"messages": [{"role": "user", "content": "  "}]}, "messages[0].content", "is empty"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0]",
            "only text content",
        ),
    ],
)
def test_bad_requests_name_what_is_wrong(fields, param, words):
    e = refused(body(**fields))
    assert e.param == param
    assert words in e.message
    err = e.body()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]


def test_body_must_be_an_object():
    assert refused(["not", "an", "object"]).param is None


# --- the transcript --------------------------------------------------------------------------


def test_transcript_follows_one_sample_at_a_time():
    t = Transcript()
    out = [
        t.feed(TextDelta(0, "A0")),
        t.feed(TextDelta(1, "B0")),  # held back: sample 0 is being shown
        t.feed(TextDelta(0, " A1")),
        t.feed(TextDelta(1, " B1")),
        t.feed(Voted({"x": 1.0}, "x")),  # a note mid-sample waits for the sample to end
        t.feed(Sampled(1, "B0 B1 B2", "2", 3, "stop")),  # finished while held back
        t.feed(Sampled(0, "A0 A1", "1", 2, "length")),
        t.feed(Spent(Usage(1, 5, 1))),
        t.feed(Stopped("enough")),
    ]
    assert out[0] == "── sample 0 ──\nA0"
    assert out[1] == "" and out[2] == " A1" and out[3] == "" and out[4] == "" and out[5] == ""
    assert out[6] == (
        "\n── sample 0: answer 1, 2 tokens, cut at max_tokens ──\n\n"
        "· votes: x ×1 → x\n"
        "── sample 1 ──\nB0 B1 B2\n── sample 1: answer 2, 3 tokens ──\n\n"
    )
    assert out[7] == "" and out[8] == "· stopped: enough\n"
    assert t.finish() == ""


def test_transcript_reused_numbers_notes_and_unfinished_samples():
    t = Transcript()
    text = t.feed(TextDelta(0, "plan")) + t.feed(Sampled(0, "plan", None, 1, "stop"))
    text += t.feed(Phase("propose", Usage(), "1 approach"))
    text += t.feed(TextDelta(0, "solve"))  # number 0 again: a new sample
    text += t.feed(Scored(0, 0.5, "judge said Yes"))
    text += t.feed(TextDelta(1, "other"))
    text += t.finish()  # the strategy ended without finishing them
    assert text == (
        "── sample 0 ──\nplan\n── sample 0: answer none found, 1 tokens ──\n\n"
        "· propose done: 1 approach\n"
        "── sample 0 ──\nsolve\n\n── sample 1 ──\nother\n\n"
        "· sample 0 scored 0.500: judge said Yes\n"
    )


# --- usage -----------------------------------------------------------------------------------


def test_reasoning_tokens_are_what_did_not_reach_the_answer():
    model = ScriptedModel(["unused"])
    usage = Usage(prompt_tokens=40, completion_tokens=9, calls=3)  # 4 more tokens: judge calls
    a = settle(Result("e", Chosen(1, "d e", 2, "length"), "how", usage), "best_of_n")
    assert a.usage == {
        "prompt_tokens": 40,
        "completion_tokens": 9,
        "total_tokens": 49,
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    assert a.finish_reason == "length" and a.content == "d e"
    # a synthesis is a sample of its own, with its own tokens
    b = settle(Result("x", Chosen(3, "so x it is", 4, "stop"), "synthesis", usage), "deepthink")
    assert b.usage["completion_tokens_details"]["reasoning_tokens"] == 9 - 4
    assert b.finish_reason == "stop"
    # nothing fitted the budget: empty content, cut
    c = settle(Result(None, None, "budget too small for the prompt", Usage()), "cot")
    assert c.finish_reason == "length" and c.usage["total_tokens"] == 0


def test_think_streams_progress_then_the_answer():
    model = ScriptedModel(["two and two make 4 \\boxed{4}"])
    req = parse_chat_request(body(model="ponder/vote:n=2"), SETTINGS)

    async def go():
        return [item async for item in think(req, model)]

    items = asyncio.run(go())
    answer = items[-1]
    reasoning = "".join(i.reasoning for i in items[:-1])
    assert reasoning.count("two and two make 4") == 2 and "votes: 4 ×2 → 4" in reasoning
    assert answer.content == "two and two make 4 \\boxed{4}" and answer.result.answer == "4"
    assert answer.usage["completion_tokens"] == 12  # 2 samples x 6 tokens
    assert answer.usage["completion_tokens_details"]["reasoning_tokens"] == 6


def test_events_of_newer_strategies_get_a_generic_note():
    from dataclasses import dataclass

    from ponder.events import Event

    @dataclass
    class Expanded(Event):
        node: int
        children: list[int]
        scores: list[float | None]

    @dataclass
    class Tree(Event):
        nodes: list[dict]

    t = Transcript()
    assert (
        t.feed(Expanded(3, [4, 5], [0.5, None]))
        == "· expanded: node=3, children=[4, 5], scores=[0.5, None]\n"
    )
    assert t.feed(Tree([{"id": 0}])) == ""  # bulky: left to the event stream

"""Conversations reach every strategy: the client's system prompt and every earlier turn are in
every request a strategy makes, with the strategy's own instructions after the system prompt."""

from __future__ import annotations

import asyncio
import json

import pytest

from ponder.budget import Budget
from ponder.cli import main
from ponder.models import ScriptedModel
from ponder.problems.base import Problem
from ponder.serve.protocol import ApiError, parse_chat_request
from ponder.serve.settings import ServeSettings
from ponder.think import STRATEGIES, final_result, parse_strategy
from ponder.think.base import SYSTEM_PROMPT
from test_core import NAMES, SPECS, reply

TURNS = [
    {"role": "system", "content": "Answer like a pirate."},
    {"role": "user", "content": "I have 3 apples."},
    {"role": "assistant", "content": "Arr, 3 apples ye have."},
    {"role": "user", "content": "I buy 4 more. What is 3 + 4?"},
]
PROBLEM = Problem.conversation("c", TURNS, answer="7", kind="numeric")


def rendered(request) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in request.messages or ())


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_sends_the_whole_conversation(name):
    model = ScriptedModel(reply)
    asyncio.run(final_result(parse_strategy(SPECS[name], seed=0).run(PROBLEM, model, Budget())))
    assert model.requests
    for request in model.requests:
        text = rendered(request)
        # every request quotes the earlier turns (solvers as turns, judges inside their prompt)
        assert "I have 3 apples." in text and "Arr, 3 apples ye have." in text, (name, text)
        assert "What is 3 + 4?" in text
    solves = [r for r in model.requests if SYSTEM_PROMPT in rendered(r)]
    assert solves or name in ("think", "code"), name  # these bring their own instructions
    for r in solves:
        system = r.messages[0]
        assert system["role"] == "system"
        assert system["content"].startswith("Answer like a pirate.")  # the client's, then ours
        assert system["content"].endswith(SYSTEM_PROMPT)
        roles = [m["role"] for m in r.messages[1:4]]
        assert roles == ["user", "assistant", "user"]


def test_think_keeps_the_client_system_prompt_too():
    model = ScriptedModel(reply)
    asyncio.run(final_result(parse_strategy(SPECS["think"]).run(PROBLEM, model, Budget())))
    assert model.requests[0].messages[0]["content"].startswith("Answer like a pirate.")


def test_the_server_reads_the_conversation():
    settings = ServeSettings(max_budget=5000)
    chat = parse_chat_request({"model": "ponder/cot", "messages": TURNS}, settings)
    assert chat.question == "I buy 4 more. What is 3 + 4?" and len(chat.messages) == 4
    tool_turn = [*TURNS, {"role": "tool", "content": "7"}]
    assert parse_chat_request({"model": "ponder", "messages": tool_turn}, settings).messages[-1] == {
        "role": "tool", "content": "7"}  # fmt: skip
    for bad, param in [
        ([*TURNS, {"role": "assistant", "content": "Arr"}], "messages[4]"),
        ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
        ([{"role": "system", "content": "x"}], "messages"),
    ]:
        with pytest.raises(ApiError) as info:
            parse_chat_request({"model": "ponder", "messages": bad}, settings)
        assert info.value.param == param and info.value.status == 400


def test_solve_reads_a_conversation_file_and_a_system_prompt(tmp_path, capsys):
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(TURNS[1:]))
    assert main(["solve", "--messages", str(path), "--system", "Be brief.", "--model",
                 "default", "--max-tokens", "8", "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["question"] == "I buy 4 more. What is 3 + 4?"
    path.write_text("{not json")
    assert main(["solve", "--messages", str(path)]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert main(["solve", "hi", "--messages", str(path)]) == 2
    assert "not both" in capsys.readouterr().err


def test_every_registered_strategy_is_covered():
    # research registers itself when the CLI is built, and runs only on research problems, which
    # carry their corpus (tests/test_research*.py cover it)
    assert set(SPECS) == set(STRATEGIES) - {"research"}


def test_a_multi_turn_exchange_through_the_openai_sdk():
    openai = pytest.importorskip("openai")
    from ponder.serve.background import BackgroundServer

    model = ScriptedModel(reply)
    with BackgroundServer(model, ServeSettings(max_budget=5000)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        history = [TURNS[0], TURNS[1]]
        first = client.chat.completions.create(model="ponder/cot", messages=history)
        history += [{"role": "assistant", "content": first.choices[0].message.content}, TURNS[3]]
        second = client.chat.completions.create(model="ponder/vote:n=3", messages=history)
    assert second.choices[0].message.content
    last = [r for r in model.requests if SYSTEM_PROMPT in rendered(r)][-1]
    assert last.messages[0]["content"].startswith("Answer like a pirate.")
    assert [m["role"] for m in last.messages] == ["system", "user", "assistant", "user"]
    assert last.messages[2]["content"] == first.choices[0].message.content

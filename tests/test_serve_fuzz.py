"""No input reaches a 5xx: a corpus of malformed and hostile requests against a real server.

Hand-written cases (every problem named in issue 15) plus seeded random mutations of valid bodies,
sent as raw bytes over HTTP to a server on 127.0.0.1. Each must end, within a bounded time, in a
status below 500 (a 4xx with an OpenAI-style error body naming the field, or a 200); the server
stays healthy after each; memory stays flat.
"""

from __future__ import annotations

import json
import random
import re
import resource

import pytest

from ponder.models import ScriptedModel
from ponder.serve.background import BackgroundServer
from ponder.serve.settings import ServeSettings

httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.slow  # starts a server; about 10 s

CONTEXT = 400  # the scripted model's context, so that long prompts are refused
VALID = {"model": "ponder/cot", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}


def reply(request, _i):
    text = request.messages[-1]["content"] if request.messages else ""
    if "Answer Yes or No" in text:
        return "Yes"
    m = re.search(r"(\d+) \+ (\d+)", text)
    return f"so \\boxed{{{int(m.group(1)) + int(m.group(2)) if m else 0}}}"


def raw(obj) -> bytes:
    return json.dumps(obj).encode()


def nested(depth: int) -> bytes:
    return b'{"model": "ponder", "messages": ' + b"[" * depth + b"]" * depth + b"}"


HAND_WRITTEN: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("not json", b"{nope"),
    ("invalid utf-8", b'{"model": "ponder", "messages": [{"role": "user", "content": "\xff\xfe"}]}'),
    ("a json string", raw("hello")),
    ("a json list", raw([1, 2])),
    ("null", b"null"),
    ("nested 10000 deep", nested(10_000)),
    ("nested 100 deep", nested(100)),
    ("lone surrogate", b'{"model": "ponder", "messages": [{"role": "user", "content": "a\\ud800b"}]}'),
    ("lone surrogate in a key", b'{"model": "ponder", "\\udc00": 1, "messages": []}'),
    ("NaN temperature", b'{"model": "ponder", "temperature": NaN, "messages": [{"role": "user", "content": "2 + 3"}]}'),
    ("Infinity max_tokens", b'{"model": "ponder", "max_tokens": Infinity, "messages": [{"role": "user", "content": "2 + 3"}]}'),
    ("temperature=nan in model", raw({**VALID, "model": "ponder/cot:temperature=nan"})),
    ("temperature=99 in model", raw({**VALID, "model": "ponder/cot:temperature=99"})),
    ("max_tokens=1e9 in model", raw({**VALID, "model": "ponder/cot:max_tokens=1000000000"})),
    ("temperature 5 in body", raw({**VALID, "temperature": 5})),
    ("temperature as a string", raw({**VALID, "temperature": "hot"})),
    ("max_tokens as a float", raw({**VALID, "max_tokens": 2.5})),
    ("seed huge", raw({**VALID, "seed": 2**80})),
    ("top_p zero", raw({**VALID, "top_p": 0})),
    ("n = 100000 samples", raw({**VALID, "model": "ponder/vote:n=100000"})),
    ("budget 1", raw({**VALID, "ponder": {"budget": 1}})),
    ("budget 0", raw({**VALID, "ponder": {"budget": 0}})),
    ("budget as a string", raw({**VALID, "ponder": {"budget": "lots"}})),
    ("prompt longer than the context", raw({**VALID, "messages": [{"role": "user", "content": "2 + 3 " * 500}]})),
    ("messages missing", raw({"model": "ponder"})),
    ("messages empty", raw({"model": "ponder", "messages": []})),
    ("messages a string", raw({"model": "ponder", "messages": "hi"})),
    ("message without role", raw({"model": "ponder", "messages": [{"content": "hi"}]})),
    ("unknown role", raw({"model": "ponder", "messages": [{"role": "wizard", "content": "hi"}]})),
    ("content a number", raw({"model": "ponder", "messages": [{"role": "user", "content": 5}]})),
    ("content an image", raw({"model": "ponder", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})),
    ("only a system message", raw({"model": "ponder", "messages": [{"role": "system", "content": "x"}]})),
    ("ends with the assistant", raw({"model": "ponder", "messages": [*VALID["messages"], {"role": "assistant", "content": "5"}]})),
    ("model a number", raw({**VALID, "model": 7})),
    ("model ponder/", raw({**VALID, "model": "ponder/"})),
    ("unknown strategy", raw({**VALID, "model": "ponder/tree_of_magic"})),
    ("bad strategy key", raw({**VALID, "model": "ponder/vote:k=2"})),
    ("strategy spec garbage", raw({**VALID, "model": "ponder/vote:::,,,=,="})),
    ("ponder not an object", raw({**VALID, "ponder": "vote"})),
    ("unknown ponder key", raw({**VALID, "ponder": {"bugdet": 5}})),
    ("stream a string", raw({**VALID, "stream": "yes"})),
    ("stream_options a list", raw({**VALID, "stream": True, "stream_options": [1]})),
    ("n = 3", raw({**VALID, "n": 3})),
    ("tools given", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f"}}]})),
    ("tools a dict", raw({**VALID, "tools": {"type": "function"}})),
    ("tools a list of strings", raw({**VALID, "tools": ["get_weather"]})),
    ("tool without a function", raw({**VALID, "tools": [{"type": "function"}]})),
    ("tool name with spaces", raw({**VALID, "tools": [{"type": "function", "function": {"name": "rm -rf /"}}]})),
    ("tool name 10000 long", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f" * 10_000}}]})),
    ("tool parameters a string", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]})),
    ("tool parameters nested deep", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f", "parameters": json.loads("[" * 60 + "]" * 60)}}]})),
    ("200 tools", raw({**VALID, "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(200)]})),
    ("duplicate tools", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f"}}] * 2})),
    ("tool_choice unknown", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "maybe"})),
    ("tool_choice names a missing tool", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}})),
    ("tool_choice a number", raw({**VALID, "tool_choice": 3})),
    ("tool_choice required, no tools", raw({**VALID, "tool_choice": "required"})),
    ("parallel_tool_calls a string", raw({**VALID, "parallel_tool_calls": "no"})),
    ("tools on beam", raw({**VALID, "model": "ponder/beam", "tools": [{"type": "function", "function": {"name": "f"}}]})),
    ("legacy functions", raw({**VALID, "functions": [{"name": "f"}]})),
    ("tool_calls a string", raw({**VALID, "messages": [*VALID["messages"], {"role": "assistant", "tool_calls": "f()"}, {"role": "tool", "content": "1"}]})),
    ("tool call without function", raw({**VALID, "messages": [*VALID["messages"], {"role": "assistant", "tool_calls": [{"id": "c"}]}, {"role": "tool", "content": "1"}]})),
    ("tool call arguments a number", raw({**VALID, "messages": [*VALID["messages"], {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 5}}]}, {"role": "tool", "content": "1"}]})),
    ("tool message id a list", raw({**VALID, "messages": [*VALID["messages"], {"role": "tool", "content": "1", "tool_call_id": [1]}]})),
    ("tool message content null", raw({**VALID, "messages": [*VALID["messages"], {"role": "tool", "content": None}]})),
    ("valid tool history", raw({**VALID, "tools": [{"type": "function", "function": {"name": "f"}}], "messages": [*VALID["messages"], {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}, {"role": "tool", "tool_call_id": "c", "content": "5"}]})),
    ("valid tools, streamed", raw({**VALID, "stream": True, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required", "parallel_tool_calls": False})),
    ("a huge string", raw({**VALID, "user": "x" * 200_000})),
    ("beam with temperature 0", raw({**VALID, "model": "ponder/beam", "temperature": 0})),
    ("valid, plain", raw(VALID)),
    ("valid, streamed", raw({**VALID, "stream": True, "stream_options": {"include_usage": True}})),
]

POOL = [None, True, False, 0, -1, 1, 3.5, 1e308, -1e308, "", "x", "ponder/vote:n=2", "\u00e9\u4e2d",
        "x" * 5000, [], [1, "a"], {}, {"role": "user"}, {"role": "user", "content": "1 + 1"},
        "required", "none", {"type": "function", "function": {"name": "f"}},
        [{"type": "function", "function": {"name": "f"}}]]  # fmt: skip
FIELDS = ["model", "messages", "temperature", "max_tokens", "max_completion_tokens", "seed",
          "top_p", "n", "stream", "stream_options", "ponder", "tools", "tool_choice",
          "parallel_tool_calls", "stop", "user"]  # fmt: skip


def mutations(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """Random bodies: a valid one with fields replaced, added or dropped, and messages mangled."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        body = json.loads(json.dumps(VALID))
        for _ in range(rng.randint(1, 3)):
            action = rng.random()
            if action < 0.5:
                body[rng.choice(FIELDS)] = rng.choice(POOL)
            elif action < 0.7:
                body.pop(rng.choice(list(body) or ["model"]), None)
            elif action < 0.85 and isinstance(body.get("messages"), list) and body["messages"]:
                m = body["messages"][0]
                if isinstance(m, dict):
                    m[rng.choice(["role", "content", "name", "tool_calls", "tool_call_id"])] = rng.choice(POOL)
            else:
                body["ponder"] = {rng.choice(["strategy", "budget", "events"]): rng.choice(POOL)}
        data = raw(body)
        if rng.random() < 0.1:  # a cut-off body
            data = data[: rng.randint(0, len(data))]
        out.append((f"mutation {i}", data))
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_no_request_reaches_a_5xx_and_the_server_stays_healthy():
    corpus = HAND_WRITTEN + mutations(220)
    assert len(corpus) >= 200
    model = ScriptedModel(reply, context_length=CONTEXT)
    settings = ServeSettings(max_budget=4000, max_body_bytes=1_000_000)
    statuses: dict[int, int] = {}
    with BackgroundServer(model, settings) as srv, httpx.Client(timeout=15.0) as client:
        url = srv.base_url + "/chat/completions"
        client.post(url, content=raw(VALID), headers={"Content-Type": "application/json"})
        before = rss_mb()
        for name, data in corpus:
            r = client.post(url, content=data, headers={"Content-Type": "application/json"})
            body = r.read()
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (name, r.status_code, body[:300])
            if r.status_code >= 400:
                err = json.loads(body)["error"]  # an OpenAI-style error body
                assert err["message"] and err["type"], (name, err)
            assert client.get(srv.base_url.removesuffix("/v1") + "/health").status_code == 200
        grown = rss_mb() - before
    assert statuses.get(200, 0) >= 5 and sum(v for k, v in statuses.items() if k >= 400) >= 100
    assert grown < 150, f"the server's process grew {grown:.0f} MB over the corpus"


@pytest.mark.parametrize(
    ("name", "param", "code"),
    [
        ("nested 10000 deep", None, "invalid_json"),
        ("lone surrogate", "messages[0].content", "invalid_value"),
        ("NaN temperature", None, "invalid_json"),
        ("temperature=nan in model", "model", "invalid_strategy"),
        ("max_tokens=1e9 in model", "model", "invalid_strategy"),
        ("temperature 5 in body", "temperature", "invalid_value"),
        ("prompt longer than the context", "messages", "context_length_exceeded"),
        ("n = 100000 samples", "ponder.budget", "budget_too_small"),
        ("budget 1", "ponder.budget", "budget_too_small"),
        ("beam with temperature 0", "temperature", "invalid_value"),
        ("tool name with spaces", "tools[0].function.name", "invalid_value"),
        ("tool_choice names a missing tool", "tool_choice", "invalid_value"),
        ("tools on beam", "tools", "invalid_value"),
        ("tool call arguments a number", "messages[1].tool_calls[0].function.arguments",
         "invalid_value"),
    ],
)
def test_each_named_problem_is_a_400_that_names_its_field(name, param, code):
    data = dict(HAND_WRITTEN)[name]
    model = ScriptedModel(reply, context_length=CONTEXT)
    with BackgroundServer(model, ServeSettings(max_budget=4000)) as srv:
        r = httpx.post(srv.base_url + "/chat/completions", content=data, timeout=15.0,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["code"] == code, err
    assert model.requests == []  # refused before any model call

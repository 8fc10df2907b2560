"""`ponder serve` through the real `openai` SDK, against a server on 127.0.0.1 started by the test.

The model is the scripted fake: its reply to "What is A + B?" states A + B, so answers differ per
question and cross-talk between requests would show; it says "Yes" to the judge. Expected usage is
what the same strategy reports when run directly, without the server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import time

import openai
import pytest

from ponder.budget import Budget
from ponder.models import ModelError, ScriptedModel
from ponder.models.scripted import scripted_tokens
from ponder.problems.base import Problem
from ponder.serve.background import BackgroundServer
from ponder.serve.settings import ServeSettings
from ponder.think import final_result, parse_strategy

from gated_model import GatedModel

pytestmark = pytest.mark.slow  # starts servers (each test well under a few seconds)

MAX_BUDGET = 20000


def reply(request, _i):
    text = request.messages[-1]["content"]
    if "Is the candidate's final answer correct?" in text:
        return "Yes"
    a, b = map(int, re.search(r"(\d+) \+ (\d+)", text).groups())
    return f"We add {a} and {b} to get {a + b}. \\boxed{{{a + b}}}"


def long_reply(_request, _i):
    return "step " * 400 + "\\boxed{1}"


def settings(**kw) -> ServeSettings:
    return ServeSettings(**{"max_budget": MAX_BUDGET, **kw})


def client(srv: BackgroundServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=srv.base_url, api_key=kw.pop("api_key", "unused"), max_retries=0, **kw
    )


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def direct(spec: str, question: str, budget: int = MAX_BUDGET, **defaults):
    """The strategy's own Result, run without the server on a fresh scripted model."""
    strategy = parse_strategy(spec, **defaults)
    problem = Problem("direct", question, kind="math")
    return asyncio.run(final_result(strategy.run(problem, ScriptedModel(reply), Budget(budget))))


def usage_of(result) -> dict:
    """The usage the server must report for ``result``: its own, content = its text."""
    u, content_tokens = result.usage, len(scripted_tokens(result.text))
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "reasoning_tokens": u.completion_tokens - content_tokens,
    }


def flat(usage) -> dict:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "reasoning_tokens": usage.completion_tokens_details.reasoning_tokens,
    }


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(ScriptedModel(reply), settings(max_concurrency=16)) as srv:
        yield srv


# --- plain and streaming --------------------------------------------------------------------


def test_plain_call_answer_reasoning_and_exact_usage(server):
    r = client(server).chat.completions.create(
        model="ponder/vote:n=3", messages=ask("What is 3 + 4?")
    )
    msg = r.choices[0].message
    assert msg.content == "We add 3 and 4 to get 7. \\boxed{7}"
    assert msg.reasoning_content.count("We add 3 and 4 to get 7.") == 3
    assert "votes: 7 ×3 → 7" in msg.reasoning_content
    assert r.choices[0].finish_reason == "stop" and r.model == "ponder/vote:n=3"
    expected = direct("vote:n=3", "What is 3 + 4?")
    assert flat(r.usage) == usage_of(expected)
    assert flat(r.usage)["reasoning_tokens"] == 18  # the two 9-token samples that are not content
    assert r.ponder["answer"] == "7" and r.ponder["calls"] == 1


def test_streaming_call_same_as_plain_with_usage_last(server):
    c = client(server)
    kwargs = dict(model="ponder/best_of_n:n=2", messages=ask("What is 5 + 8?"))
    plain = c.chat.completions.create(**kwargs)
    chunks = list(
        c.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join(
        getattr(ch.choices[0].delta, "reasoning_content", None) or "" for ch in chunks if ch.choices
    )
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    finish = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert reasoning == plain.choices[0].message.reasoning_content
    assert "scored 0.905: judge said Yes" in reasoning
    assert content == plain.choices[0].message.content == "We add 5 and 8 to get 13. \\boxed{13}"
    assert finish == ["stop"]
    # usage comes once, in the last chunk, and equals the strategy's own count (judge calls too)
    assert [ch.usage is not None for ch in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].choices == []
    expected = usage_of(direct("best_of_n:n=2", "What is 5 + 8?"))
    assert flat(chunks[-1].usage) == flat(plain.usage) == expected
    # without include_usage there is no usage chunk
    assert all(ch.usage is None for ch in c.chat.completions.create(**kwargs, stream=True))


def test_stream_is_true_streaming():
    """The first reasoning arrives while the model call is still open, not with the answer: the
    model holds its completion until the client has seen reasoning (or 30 s pass)."""
    model = GatedModel(reply, token_delay=0.01)
    with BackgroundServer(model, settings()) as srv:
        stream = client(srv).chat.completions.create(
            model="ponder/cot", messages=ask("What is 1 + 2?"), stream=True
        )
        seen_at = None
        for ch in stream:
            if ch.choices and getattr(ch.choices[0].delta, "reasoning_content", None):
                seen_at = (model.returned, srv.in_flight)
                break
        model.gate.set()
        rest = list(stream)
    assert seen_at == (0, 1)
    assert "".join(ch.choices[0].delta.content or "" for ch in rest if ch.choices).endswith(
        "\\boxed{3}"
    )


def test_strategy_and_budget_from_extra_body(server):
    c = client(server)
    r = c.chat.completions.create(
        model="gpt-4o",  # a name a client hard-codes; extra_body decides
        messages=ask("What is 2 + 9?"),
        extra_body={"ponder": {"strategy": "adaptive:wave=2,max_samples=6", "budget": 300}},
    )
    assert r.model == "ponder/adaptive:wave=2,max_samples=6"
    expected = direct("adaptive:wave=2,max_samples=6", "What is 2 + 9?", budget=300)
    assert flat(r.usage) == usage_of(expected)
    assert r.usage.total_tokens <= 300
    # a plain model name: the server's default strategy (cot), with the request's max_tokens
    r = c.chat.completions.create(model="scripted", messages=ask("What is 2 + 9?"), max_tokens=4)
    assert r.model == "ponder/cot:max_tokens=4"
    assert r.choices[0].message.content == "We add 2 and" and r.choices[0].finish_reason == "length"
    assert (
        r.usage.completion_tokens == 4 and r.usage.completion_tokens_details.reasoning_tokens == 0
    )


def test_16_concurrent_streams_with_different_strategies_each_get_their_own():
    specs = ["cot", "vote:n=3", "best_of_n:n=2", "adaptive:wave=2,max_samples=6"]
    jobs = [
        (specs[k % 4], f"What is {10 + k} + {3 * k + 1}?", 64 if k % 3 else 8)  # some answers cut
        for k in range(16)
    ]
    model = ScriptedModel(reply, token_delay=0.002)  # interleave the requests' tokens

    async def one(c, spec, question, max_tokens):
        stream = await c.chat.completions.create(
            model=f"ponder/{spec}",
            messages=ask(question),
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [ch async for ch in stream]
        return chunks

    async def all_of_them(srv):
        c = openai.AsyncOpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        return await asyncio.gather(*(one(c, *job) for job in jobs))

    with BackgroundServer(model, settings(max_concurrency=16)) as srv:
        results = asyncio.run(all_of_them(srv))
        wait_for(lambda: srv.in_flight == 0)
    assert len(model.requests) >= 16
    for (spec, question, max_tokens), chunks in zip(jobs, results):
        expected = direct(spec, question, max_tokens=max_tokens)
        content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        reasoning = "".join(
            getattr(ch.choices[0].delta, "reasoning_content", None) or ""
            for ch in chunks
            if ch.choices
        )
        a, b = re.search(r"(\d+) \+ (\d+)", question).groups()
        assert {ch.model for ch in chunks} == {
            f"ponder/{parse_strategy(spec, max_tokens=max_tokens).spec}"
        }
        assert content == expected.text
        assert re.findall(r"We add (\d+) and (\d+)", reasoning) and all(
            pair == (a, b) for pair in re.findall(r"We add (\d+) and (\d+)", reasoning)
        )
        assert flat(chunks[-1].usage) == usage_of(expected), (spec, question)


# --- errors, auth and limits ----------------------------------------------------------------


def test_400_names_what_is_wrong(server):
    c = client(server)
    cases = [
        (dict(model="ponder/vote:n=lots"), "model", "n='lots'"),
        (dict(model="ponder/nonesuch"), "model", "unknown strategy 'nonesuch'"),
        (
            dict(model="ponder", extra_body={"ponder": {"budget": MAX_BUDGET + 1}}),
            "ponder.budget",
            "between 1",
        ),
        (
            dict(model="ponder", extra_body={"ponder": {"strategy": "cot:k=1"}}),
            "ponder.strategy",
            "bad parameter",
        ),
        (dict(model="ponder", max_tokens=MAX_BUDGET + 1), "max_tokens", f"at most {MAX_BUDGET}"),
        (dict(model="ponder/cot:temperature=nan"), "model", "temperature must be a number"),
        (dict(model="ponder/beam", temperature=0), "temperature", "must be > 0 for beam"),
        (dict(model="ponder", n=9), "n", "between 1 and 8"),
    ]
    for kwargs, param, words in cases:
        with pytest.raises(openai.BadRequestError) as info:
            c.chat.completions.create(messages=ask("What is 1 + 1?"), **kwargs)
        err = info.value.body
        assert err["param"] == param and words in err["message"], (kwargs, err)
        assert err["type"] == "invalid_request_error" and info.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="ponder", messages=[{"role": "system", "content": "hi"}])
    assert info.value.body["param"] == "messages"


def test_401_without_the_api_key():
    with BackgroundServer(ScriptedModel(reply), settings(api_key="s3cret")) as srv:
        for key in ("wrong", "s3cret-but-longer"):
            with pytest.raises(openai.AuthenticationError) as info:
                client(srv, api_key=key).chat.completions.create(
                    model="ponder", messages=ask("What is 1 + 1?")
                )
            assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            client(srv, api_key="wrong").models.list()
        r = client(srv, api_key="s3cret").chat.completions.create(
            model="ponder", messages=ask("What is 1 + 1?")
        )
        assert r.choices[0].message.content.endswith("\\boxed{2}")
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)  # no header at all
        conn.request(
            "POST", "/v1/chat/completions", body="{}", headers={"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        assert resp.status == 401 and json.loads(resp.read())["error"]["code"] == "invalid_api_key"
        conn.request("GET", "/health")  # health checks need no key
        assert conn.getresponse().status == 200


def test_429_beyond_max_concurrency_with_retry_after():
    model = ScriptedModel(long_reply, token_delay=0.01)
    with BackgroundServer(model, settings(max_concurrency=2)) as srv:
        c = client(srv)
        streams = [
            c.chat.completions.create(model="ponder/cot", messages=ask("Count."), stream=True)
            for _ in range(2)
        ]
        for s in streams:
            next(iter(s))  # the first chunk: both are in flight
        assert srv.in_flight == 2
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="ponder/cot", messages=ask("What is 1 + 1?"))
        e = info.value
        assert e.status_code == 429 and e.response.headers["retry-after"] == "1"
        assert e.body["type"] == "rate_limit_error" and "limit of 2" in e.body["message"]
        for s in streams:
            s.close()
        wait_for(lambda: srv.in_flight == 0)
        # the slots are free again (not queued, not leaked)
        model_ok = c.chat.completions.create(
            model="ponder/cot:max_tokens=3", messages=ask("Count.")
        )
        assert model_ok.usage.completion_tokens == 3


def test_413_body_too_large_and_400_not_json():
    with BackgroundServer(ScriptedModel(reply), settings(max_body_bytes=2000)) as srv:
        c = client(srv)
        with pytest.raises(openai.APIStatusError) as info:
            c.chat.completions.create(model="ponder", messages=ask("What is 1 + 1? " + "x" * 3000))
        assert info.value.status_code == 413 and info.value.body["code"] == "request_too_large"
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        conn.request(
            "POST",
            "/v1/chat/completions",
            body="{not json",
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        assert resp.status == 400 and json.loads(resp.read())["error"]["code"] == "invalid_json"


# --- cancellation ----------------------------------------------------------------------------


def test_client_disconnect_mid_stream_stops_the_model_calls():
    model = ScriptedModel(long_reply, token_delay=0.01)  # 401 tokens a sample: 4 s if left alone
    with BackgroundServer(model, settings()) as srv:
        stream = client(srv).chat.completions.create(
            model="ponder/adaptive:wave=1,max_samples=8", messages=ask("Count."), stream=True
        )
        pieces = 0
        for ch in stream:
            pieces += bool(ch.choices and getattr(ch.choices[0].delta, "reasoning_content", None))
            if pieces == 5:
                break
        stream.close()  # the client goes away mid-sample
        wait_for(lambda: srv.in_flight == 0)
        calls, tokens = len(model.requests), model.tokens_generated
        time.sleep(0.5)  # ~50 more tokens, and the next waves, if the work had gone on
        assert (len(model.requests), model.tokens_generated) == (calls, tokens)
    assert calls == 1 and tokens < 30


def test_client_timeout_stops_non_streaming_work():
    model = ScriptedModel(long_reply, token_delay=0.01)
    with BackgroundServer(model, settings()) as srv:
        with pytest.raises(openai.APITimeoutError):
            client(srv, timeout=0.5).chat.completions.create(
                model="ponder/vote:n=4", messages=ask("Count.")
            )
        wait_for(lambda: srv.in_flight == 0)
        tokens = model.tokens_generated
        time.sleep(0.3)
        assert model.tokens_generated == tokens < 4 * 100


# --- failures, discovery, the page -----------------------------------------------------------


class BrokenModel(ScriptedModel):
    async def generate(self, request, on_text=None, should_stop=None):
        raise ModelError("backend unreachable at http://nowhere")


def test_model_errors_are_reported_not_hidden():
    with BackgroundServer(BrokenModel(["x"]), settings()) as srv:
        c = client(srv)
        with pytest.raises(openai.APIStatusError) as info:
            c.chat.completions.create(model="ponder/cot", messages=ask("What is 1 + 1?"))
        assert info.value.status_code == 502 and "backend unreachable" in info.value.body["message"]
        with pytest.raises(openai.APIError) as info:
            list(
                c.chat.completions.create(
                    model="ponder/cot", messages=ask("What is 1 + 1?"), stream=True
                )
            )
        assert "backend unreachable" in str(info.value)
        wait_for(lambda: srv.in_flight == 0)


def test_models_health_and_page(server):
    ids = [m.id for m in client(server).models.list().data]
    assert {"ponder/cot", "ponder/vote", "ponder/best_of_n", "ponder/adaptive"} <= set(ids)
    assert ids[-1] == "scripted"
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.request("GET", "/health")
    assert json.loads(conn.getresponse().read())["status"] == "ok"
    conn.request("GET", "/")
    resp = conn.getresponse()
    page = resp.read().decode()
    assert resp.status == 200 and '"model": "scripted"' in page and '"ponder/" + spec' in page
    conn.request("GET", "/v1/nothing")
    resp = conn.getresponse()
    assert resp.status == 404 and json.loads(resp.read())["error"]["code"] == "not_found"


def test_n_choices_are_independent_runs_with_their_usage_summed():
    """n=3: three runs of the strategy (seeds s, s+1, s+2), three choices, the usage their sum."""
    model = ScriptedModel(reply)
    with BackgroundServer(model, settings()) as srv:
        c = client(srv)
        r = c.chat.completions.create(model="ponder/cot", messages=ask("What is 2 + 5?"), n=3, seed=4)
        assert [ch.index for ch in r.choices] == [0, 1, 2]
        assert all("\\boxed{7}" in ch.message.content for ch in r.choices)
        one = direct("cot", "What is 2 + 5?", seed=4)
        assert r.usage.completion_tokens == 3 * one.usage.completion_tokens
        assert r.usage.prompt_tokens == 3 * one.usage.prompt_tokens
        assert sorted(req.seed for req in model.requests) == [4, 5, 6]
        # streamed: every choice gets its content and its finish, usage summed at the end
        chunks = list(c.chat.completions.create(
            model="ponder/cot", messages=ask("What is 2 + 5?"), n=2, stream=True,
            stream_options={"include_usage": True},
        ))  # fmt: skip
    content = {0: "", 1: ""}
    finished = set()
    for ch in chunks:
        for choice in ch.choices:
            content[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1} and all("\\boxed{7}" in t for t in content.values())
    assert chunks[-1].usage.completion_tokens == 2 * one.usage.completion_tokens

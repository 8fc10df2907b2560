"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (openai_stub_server.py)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from ponder.models import ModelError, Request, resolve
from ponder.models.openai_http import OpenAIModel, _split

try:
    from openai_stub_server import StubServer, logprob_of
except ImportError:  # tests/ became a package
    from tests.openai_stub_server import StubServer, logprob_of

QUESTION = Request.chat("What is two plus two?", max_tokens=50)  # 5 stub tokens


def _run(model: OpenAIModel, request: Request, on_text=None):
    async def go():
        try:
            return await model.generate(request, on_text)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_plain_chat_call():
    with StubServer(["The answer is four."]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, QUESTION)
    assert out.texts == ["The answer is four."]
    s = out.samples[0]
    assert (s.prompt_tokens, s.completion_tokens, s.finish_reason, s.logprobs) == (5, 4, "stop", None)
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.calls) == (5, 4, 1)
    assert out.usage.seconds > 0
    body = srv.requests[0]["body"]
    assert body["messages"] == [{"role": "user", "content": "What is two plus two?"}]
    assert body["max_tokens"] == 50 and body["n"] == 1 and "stop" not in body and "seed" not in body


def test_n_honoured_is_one_request():
    with StubServer(["a b", "c d e", "f"]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, Request.chat("q", n=3, stop=["\n\n"], seed=7))
    assert out.texts == ["a b", "c d e", "f"]
    assert len(srv.requests) == 1 and srv.requests[0]["body"]["n"] == 3
    assert srv.requests[0]["body"]["stop"] == ["\n\n"] and srv.requests[0]["body"]["seed"] == 7
    # Per-sample counts are split from the total by characters and add up exactly.
    assert sum(s.completion_tokens for s in out.samples) == out.usage.completion_tokens == 6
    assert (out.usage.prompt_tokens, out.usage.calls) == (1, 1)
    assert not model.lacks_n


def test_n_ignored_falls_back_to_single_requests():
    with StubServer(["one", "two words", "three more words"], honour_n=False) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        request = Request.chat("a question", n=3, seed=10)

        async def go():
            first = await model.generate(request)
            n_before = len(srv.requests)
            second = await model.generate(request)
            await model.aclose()
            return first, n_before, second

        first, n_before, second = asyncio.run(go())
    assert sorted(first.texts) == ["one", "three more words", "two words"]
    assert n_before == 3  # the n=3 request, then 2 singles for the missing samples
    assert [r["body"]["n"] for r in srv.requests[:3]] == [3, 1, 1]
    assert sorted(r["body"]["seed"] for r in srv.requests[:3]) == [10, 11, 12]
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.calls) == (6, 6, 3)
    assert [s.prompt_tokens for s in first.samples] == [2, 2, 2]
    assert model.lacks_n
    # The second call goes straight to single requests.
    assert len(second.samples) == 3 and second.usage.calls == 3
    assert [r["body"]["n"] for r in srv.requests[3:]] == [1, 1, 1]


@pytest.mark.parametrize("status", [429, 500])
def test_transient_failure_is_retried(status):
    with StubServer(["fine"], fail_first=[status]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, QUESTION)
    assert out.texts == ["fine"]
    assert [r["status"] for r in srv.requests] == [status, 200]
    assert out.usage.calls == 1  # one logical request; the retry was not charged


@pytest.mark.parametrize("retry_after, min_gap, max_gap", [("1.5", 1.5, 5.0), ("0", 0.3, 1.5)])
def test_retry_after_header(retry_after, min_gap, max_gap):
    # The SDK sleeps for a positive Retry-After; "0" is not > 0, so it falls back to its own backoff
    # (0.5 s minus up to 25 % jitter for the first retry). The two ranges do not overlap, and each
    # leaves a loaded machine a second of slack above the sleep.
    with StubServer(["ok"], fail_first=[429], retry_after=retry_after) as srv:
        out = _run(OpenAIModel("stub-model", base_url=srv.base_url), QUESTION)
    assert out.texts == ["ok"]
    gap = srv.requests[1]["time"] - srv.requests[0]["time"]
    assert min_gap <= gap < max_gap


def test_timeout_is_retried_then_one_line_model_error():
    with StubServer(["slow"], delay=0.3) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url, max_retries=1, timeout=0.1)
        with pytest.raises(ModelError, match="did not answer within 0.1s"):
            _run(model, QUESTION)
        deadline = time.monotonic() + 5  # the stub logs the retry on its own thread
        while len(srv.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(srv.requests) == 2


def test_retries_exhausted_is_one_line_model_error():
    with StubServer(["x"], fail_first=[503, 503]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url, max_retries=1)
        with pytest.raises(ModelError, match="HTTP 503"):
            _run(model, QUESTION)
    assert len(srv.requests) == 2


def test_streaming_pieces_in_order():
    pieces: list[tuple[int, str]] = []
    with StubServer(["Four, because two and two make four."]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, QUESTION, on_text=lambda i, p: pieces.append((i, p)))
    assert srv.requests[0]["body"]["stream"] is True
    assert srv.requests[0]["body"]["stream_options"] == {"include_usage": True}
    assert [i for i, _ in pieces] == [0] * 7
    assert "".join(p for _, p in pieces) == out.texts[0] == "Four, because two and two make four."
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (5, 7)
    assert out.samples[0].finish_reason == "stop"


def test_streaming_n_fallback_and_no_usage_chunk():
    pieces: dict[int, str] = {}

    def collect(i: int, piece: str) -> None:
        pieces[i] = pieces.get(i, "") + piece

    with StubServer(["a b c", "d e"], honour_n=False, stream_usage=False) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, Request.chat("q", n=2), collect)
    assert pieces == {0: out.texts[0], 1: out.texts[1]}
    assert sorted(out.texts) == ["a b c", "d e"]
    # No usage chunk: completion tokens are counted from the chunks, the prompt is estimated.
    assert out.usage.completion_tokens == 5 and out.usage.calls == 2
    assert out.usage.prompt_tokens == 2 * model.count_prompt_tokens(Request.chat("q"))


def test_streaming_n_honoured_splits_by_chunks():
    pieces: list[tuple[int, str]] = []
    with StubServer(["a b c", "d e"]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, Request.chat("q", n=2), lambda i, p: pieces.append((i, p)))
    assert [s.completion_tokens for s in out.samples] == [3, 2]
    assert [i for i, _ in pieces] == [0, 1, 0, 1, 0]  # interleaved, as they arrived
    assert len(srv.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("chat", [True, False])
def test_logprobs(chat, stream):
    request = (
        Request.chat("q", n=2, logprobs=True, max_tokens=3)
        if chat
        else Request(prompt="Once upon", n=2, logprobs=True, max_tokens=3)
    )
    with StubServer(["one two three four", "five six"]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, request, on_text=(lambda i, p: None) if stream else None)
    assert srv.requests[0]["path"] == ("/v1/chat/completions" if chat else "/v1/completions")
    assert srv.requests[0]["body"]["logprobs"] == (True if chat else 1)
    first, second = out.samples
    assert first.text == "one two three" and first.finish_reason == "length"
    assert second.text == "five six" and second.finish_reason == "stop"
    for s in out.samples:
        assert len(s.logprobs) == s.completion_tokens
        assert s.logprobs == [logprob_of(k) for k in range(s.completion_tokens)]
    assert out.usage.completion_tokens == 5


def test_raw_prompt_uses_completions_endpoint():
    with StubServer(["there was a king."]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, Request(prompt="Once upon a time", max_tokens=10))
    assert srv.requests[0]["path"] == "/v1/completions"
    assert srv.requests[0]["body"]["prompt"] == "Once upon a time"
    assert out.texts == ["there was a king."]
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (4, 4)


def test_wrong_api_key():
    with StubServer(api_key="sekrit") as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url, api_key="wrong")
        with pytest.raises(ModelError, match="rejected the API key") as err:
            _run(model, QUESTION)
        assert "\n" not in str(err.value)
        assert len(srv.requests) == 1  # 401 is not retried
        ok = OpenAIModel("stub-model", base_url=srv.base_url, api_key="sekrit")
        assert _run(ok, QUESTION).texts == ["Hello there world"]


def test_api_key_from_environment(monkeypatch):
    with StubServer(api_key="from-env") as srv:
        monkeypatch.setenv("OPENAI_API_KEY", "from-env")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        model = OpenAIModel("stub-model")
        assert model.describe() == {"backend": "openai", "model": "stub-model", "base_url": srv.base_url}
        assert _run(model, QUESTION).texts == ["Hello there world"]


def test_missing_base_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ModelError, match="OPENAI_BASE_URL"):
        OpenAIModel("stub-model")


def test_unknown_model():
    with StubServer() as srv:
        model = OpenAIModel("no-such-model", base_url=srv.base_url)
        with pytest.raises(ModelError, match="no model 'no-such-model'"):
            _run(model, QUESTION)


def test_unreachable_server_fails_fast():
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    model = OpenAIModel("stub-model", base_url=url, max_retries=0, timeout=5)
    start = time.perf_counter()
    with pytest.raises(ModelError, match=f"cannot reach OpenAI-compatible server at {url}") as err:
        _run(model, QUESTION)
    assert "\n" not in str(err.value)
    assert time.perf_counter() - start < 3


def test_resolve_spec_and_reuse_across_event_loops():
    with StubServer(["via spec"]) as srv:
        model = resolve(f"openai:stub-model@{srv.base_url}", max_retries=0)
        assert isinstance(model, OpenAIModel) and model.name == "stub-model"
        assert model.describe()["base_url"] == srv.base_url
        # Built outside any loop, then used under two separate asyncio.run() calls.
        assert asyncio.run(model.generate(QUESTION)).texts == ["via spec"]
        assert asyncio.run(model.generate(QUESTION)).texts == ["via spec"]


def test_concurrency_is_bounded():
    with StubServer(["x"], delay=0.3) as srv:  # long enough for two to overlap on a loaded machine
        model = OpenAIModel("stub-model", base_url=srv.base_url, max_concurrency=2)

        async def go():
            await asyncio.gather(*(model.generate(QUESTION) for _ in range(6)))
            await model.aclose()

        asyncio.run(go())
    assert len(srv.requests) == 6 and srv.max_inflight == 2


def test_count_prompt_tokens_and_split():
    model = OpenAIModel("m", base_url="http://127.0.0.1:1/v1")
    assert model.count_prompt_tokens(Request.chat("abcdefg")) == 3 + 8
    assert model.count_prompt_tokens(Request(prompt="abcdef")) == 2
    assert _split(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(_split(7, [5, 0, 2, 9])) == 7
    assert _split(3, [0, 0]) == [2, 1]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("chat", [True, False])
def test_top_logprobs(chat, stream):
    kw = dict(n=2, top_logprobs=3, max_tokens=3)
    request = Request.chat("q", **kw) if chat else Request(prompt="Once upon", **kw)
    with StubServer(["one two three four", "five six"]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, request, on_text=(lambda i, p: None) if stream else None)
    body = srv.requests[0]["body"]
    if chat:
        assert body["logprobs"] is True and body["top_logprobs"] == 3
    else:
        assert body["logprobs"] == 3 and "top_logprobs" not in body
    for s in out.samples:
        assert s.logprobs == [logprob_of(k) for k in range(s.completion_tokens)]
        expected = [[logprob_of(k) - j for j in range(3)] for k in range(s.completion_tokens)]
        assert s.top_logprobs == expected
    # without top_logprobs, none are reported
    with StubServer(["one two"]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        plain = _run(model, Request.chat("q", logprobs=True))
    assert plain.samples[0].top_logprobs is None and plain.samples[0].logprobs is not None


def test_should_stop_closes_one_stream_and_keeps_the_others():
    reply = " ".join(f"w{k}" for k in range(40))
    seen: list[tuple[int, int, str]] = []

    def should_stop(i, partial):
        seen.append((i, partial.completion_tokens, partial.text))
        assert partial.logprobs == [logprob_of(k) for k in range(partial.completion_tokens)]
        return i == 1 and partial.completion_tokens == 2

    with StubServer([reply], token_delay=0.005) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)

        async def go():
            try:
                request = Request.chat("a b c", n=2, max_tokens=100, logprobs=True)
                return await model.generate(request, should_stop=should_stop)
            finally:
                await model.aclose()

        out = asyncio.run(go())
        deadline = time.monotonic() + 5  # the stub notices the hang-up at its next write
        while not any(r["aborted"] for r in srv.requests) and time.monotonic() < deadline:
            time.sleep(0.01)
    # n=2 with should_stop: two single-sample streaming requests, even without on_text
    assert len(srv.requests) == 2
    assert all(r["body"]["n"] == 1 and r["body"]["stream"] is True for r in srv.requests)
    kept, cut = out.samples
    assert kept.finish_reason == "stop" and kept.text == reply and kept.completion_tokens == 40
    assert cut.finish_reason == "cancelled" and cut.text == "w0 w1" and cut.completion_tokens == 2
    assert len(cut.logprobs) == 2
    aborted = [r for r in srv.requests if r["aborted"]]
    assert len(aborted) == 1 and aborted[0]["streamed_tokens"] < 40
    assert sum(not r["aborted"] and r["streamed_tokens"] == 40 for r in srv.requests) == 1
    # usage: what the finished stream reported plus the tokens received from the cut one
    assert out.usage.completion_tokens == 42 and out.usage.calls == 2
    assert out.usage.prompt_tokens == 2 * 3 and cut.prompt_tokens == 3  # the sibling's report
    assert max(k for i, k, _ in seen if i == 1) == 2
    assert (1, 2, "w0 w1") in seen


def test_continuation_asks_the_server_to_continue_the_final_message():
    with StubServer(["more words"]) as srv:
        model = OpenAIModel("stub-model", base_url=srv.base_url)
        out = _run(model, QUESTION.continuing("Two plus two"))
        _run(model, QUESTION)
    assert out.texts == ["more words"]
    body = srv.requests[0]["body"]
    assert body["messages"][-1] == {"role": "assistant", "content": "Two plus two"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    plain = srv.requests[1]["body"]
    assert "continue_final_message" not in plain and "add_generation_prompt" not in plain

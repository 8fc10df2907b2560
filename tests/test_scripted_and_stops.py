import asyncio

import pytest

from ponder.models import Request, ScriptedModel, ScriptedReply, SpecError, resolve
from ponder.models.scripted import scripted_tokens
from ponder.models.stops import StopScanner


def run(coro):
    return asyncio.run(coro)


def test_scripted_replies_in_order_and_wrap():
    m = ScriptedModel(["one two", "three"])
    c = run(m.generate(Request(prompt="q", n=3)))
    assert c.texts == ["one two", "three", "one two"]
    assert [s.completion_tokens for s in c.samples] == [2, 1, 2]
    assert c.usage.completion_tokens == 5 and c.usage.calls == 1
    assert c.usage.prompt_tokens == 1  # shared prompt charged once, like a batched backend


def test_scripted_max_tokens_and_stop_and_logprobs():
    m = ScriptedModel([ScriptedReply("a b c d e", logprobs=[-1, -2, -3, -4, -5])])
    c = run(m.generate(Request(prompt="x y", max_tokens=3, logprobs=True)))
    s = c.samples[0]
    assert (s.text, s.completion_tokens, s.finish_reason, s.logprobs) == ("a b c", 3, "length", [-1, -2, -3])
    c = run(m.generate(Request(prompt="x", stop=("c",))))
    assert c.samples[0].text == "a b " and c.samples[0].finish_reason == "stop"
    assert c.samples[0].completion_tokens == 3  # the token holding the stop string was generated


def test_scripted_function_and_streaming():
    m = ScriptedModel(lambda req, i: f"reply {i} to {req.messages[-1]['content']}")
    pieces = []
    c = run(m.generate(Request.chat("hi", n=2), on_text=lambda i, t: pieces.append((i, t))))
    assert c.texts == ["reply 0 to hi", "reply 1 to hi"]
    assert "".join(t for i, t in pieces if i == 1) == "reply 1 to hi"


def test_scripted_tokens_roundtrip():
    text = "Step 1: 2 + 2 = 4.\n\nAnswer: 4"
    assert "".join(scripted_tokens(text)) == text


@pytest.mark.parametrize(
    "pieces, stops, text, stopped",
    [
        (["ab", "cd"], (), "abcd", False),
        (["hello wo", "rld STOP tail"], ("STOP",), "hello world ", True),
        (["x S", "T", "OP y"], ("STOP",), "x ", True),
        (["x S", "T", "x"], ("STOP",), "x STx", False),  # a held-back prefix released at the end
        (["a</", "answer>"], ("</answer>", "\n\n"), "a", True),
    ],
)
def test_stop_scanner(pieces, stops, text, stopped):
    sc = StopScanner(stops)
    emitted = "".join(sc.feed(p) for p in pieces) + sc.flush()
    assert emitted == sc.text == text
    assert sc.stopped is stopped


def test_stop_scanner_never_emits_part_of_a_stop_string():
    sc = StopScanner(("</s>",))
    assert sc.feed("ok <") == "ok "
    assert sc.feed("/") == ""
    assert sc.feed("s> more") == ""
    assert sc.text == "ok "


@pytest.mark.parametrize("spec", ["nonsense", "gguf:", "openai:", "openai:@http://x", "hf", "vllm:foo"])
def test_resolve_rejects_bad_specs_listing_forms(spec):
    with pytest.raises(SpecError) as e:
        resolve(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for form in ("default", "gguf:PATH", "hf:PATH_OR_ID", "openai:MODEL@BASE_URL"):
        assert form in msg


def test_resolve_reads_ponder_model_env(monkeypatch):
    monkeypatch.setenv("PONDER_MODEL", "bogus-spec")
    with pytest.raises(SpecError, match="bogus-spec"):
        resolve(None)


def test_request_validation():
    for bad in (dict(n=0), dict(max_tokens=0), dict(temperature=-1), dict(top_p=0)):
        with pytest.raises(ValueError):
            Request(prompt="x", **bad)
    with pytest.raises(ValueError):
        Request()


def test_scripted_top_logprobs_shape_and_order():
    m = ScriptedModel(
        [
            ScriptedReply("a b c", logprobs=[-0.5, -1, -2]),
            ScriptedReply("x y", top_logprobs=[[-3, -1], [-2, -9]]),
        ]
    )
    c = run(m.generate(Request(prompt="q", n=2, top_logprobs=3)))
    first, second = c.samples
    assert first.logprobs == [-0.5, -1, -2]  # top_logprobs implies logprobs
    # default rows: the sampled token's logprob first, then 1.0 lower each
    assert first.top_logprobs == [[-0.5, -1.5, -2.5], [-1, -2, -3], [-2, -3, -4]]
    assert second.top_logprobs == [[-1, -3], [-2, -9]]  # given rows: sorted, cut to k
    for s in c.samples:
        assert len(s.top_logprobs) == s.completion_tokens
        assert all(row == sorted(row, reverse=True) for row in s.top_logprobs)
    assert run(m.generate(Request(prompt="q", logprobs=True))).samples[0].top_logprobs is None


def test_should_stop_cancels_one_sample():
    m = ScriptedModel(["one two three four", "five six seven eight", "nine ten"], token_delay=0.001)
    seen: list[tuple[int, int, str]] = []

    def should_stop(i, partial):
        seen.append((i, partial.completion_tokens, partial.text))
        assert partial.logprobs == [-0.1] * partial.completion_tokens
        assert len(partial.top_logprobs) == partial.completion_tokens
        return i == 1 and partial.completion_tokens == 2

    c = run(m.generate(Request(prompt="q", n=3, top_logprobs=2), should_stop=should_stop))
    assert [s.finish_reason for s in c.samples] == ["stop", "cancelled", "stop"]
    assert c.texts == ["one two three four", "five six", "nine ten"]
    assert [s.completion_tokens for s in c.samples] == [4, 2, 2]
    assert len(c.samples[1].logprobs) == len(c.samples[1].top_logprobs) == 2
    assert c.usage.completion_tokens == 8  # the cancelled sample's 2 tokens are charged
    assert (1, 1, "five") in seen and (1, 2, "five six") in seen
    assert max(k for i, k, _ in seen if i == 0) == 3  # never asked after a sample's last token


def test_continuation_requests_and_the_scripted_rendering():
    base = Request.chat("q one", system="sys", max_tokens=5)
    assert base.prefix is None and base.turn == base.messages
    cont = base.continuing("so far", max_tokens=3)
    assert cont.prefix == "so far" and cont.turn == base.messages and cont.max_tokens == 3
    assert cont.continuing("other").messages[-1]["content"] == "other"  # replaced, not stacked
    assert base.continuing("") == base  # continuing nothing is starting afresh
    with pytest.raises(ValueError, match="chat"):
        Request(prompt="raw").continuing("x")
    model = ScriptedModel(lambda req, i: f"after {req.prefix} done")
    assert model.prompt_text(cont).endswith("user: q one\nassistant: so far")
    assert model.count_prompt_tokens(cont) == model.count_prompt_tokens(base) + 3
    out = asyncio.run(model.generate(cont))
    assert out.texts == ["after so far"]  # max_tokens=3 of "after so far done"

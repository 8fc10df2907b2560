"""Samples a backend cut off are never silent: the OpenAI backend marks a stream that ended with
no finish reason ``incomplete`` and asks once more; what is still cut is a warning in the trace
and in the server's ``ponder`` field, and votes only if it states an answer."""

from __future__ import annotations

import asyncio

from openai_stub_server import StubServer

from ponder.budget import Budget
from ponder.events import Warned
from ponder.models import Request, resolve
from ponder.problems.base import Problem
from ponder.serve.run import settle
from ponder.think import final_result, parse_strategy

PROBLEM = Problem("p", "What is 3 + 4?", "7", kind="numeric")
REPLY = "I add 3 and 4 so the answer is \\boxed{7} done"


def streamed(model, n=1):
    return asyncio.run(model.generate(Request.chat("hi", n=n, max_tokens=30), on_text=lambda *_: None))


def test_a_dropped_stream_is_retried_once():
    with StubServer([REPLY], interrupt_first=1) as srv:
        model = resolve(f"openai:stub-model@{srv.base_url}")
        c = streamed(model)
        posts = [r for r in srv.requests if r["path"].endswith("/chat/completions")]
    assert c.samples[0].text == REPLY and c.samples[0].finish_reason == "stop"
    assert len(posts) == 2 and posts[0].get("interrupted")
    assert c.usage.calls == 2  # both calls were computed by the server, both are charged


def test_a_stream_cut_twice_is_incomplete_and_the_vote_warns():
    with StubServer([REPLY], interrupt_first=100, interrupt_after=4) as srv:
        model = resolve(f"openai:stub-model@{srv.base_url}")
        assert streamed(model).samples[0].finish_reason == "incomplete"
        strategy = parse_strategy("vote:n=3,max_tokens=30")
        result = asyncio.run(final_result(strategy.run(PROBLEM, model, Budget(5000))))
    warnings = [e for e in result.trace if isinstance(e, Warned)]
    assert warnings and "cut off" in warnings[0].message
    # the fragments ("I add 3 and") state no answer: the last number of a fragment is no vote
    assert result.answer is None and "no answer in any of 3 samples" in result.how
    summary = settle(result, strategy.spec).summary(model)
    assert summary["warnings"] and "cut off" in summary["warnings"][0]


def test_a_cut_sample_that_states_its_answer_still_votes():
    with StubServer([REPLY], interrupt_first=100, interrupt_after=10) as srv:  # cut after \boxed{7}
        model = resolve(f"openai:stub-model@{srv.base_url}")
        result = asyncio.run(final_result(parse_strategy("vote:n=2,max_tokens=30").run(
            PROBLEM, model, Budget(5000))))  # fmt: skip
    assert result.answer == "7" and any(isinstance(e, Warned) for e in result.trace)

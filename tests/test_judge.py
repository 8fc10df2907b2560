"""The LLM judge (scripted and real model), the confidence scorer and the scorer registry."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest

from ponder.budget import Usage
from ponder.models import ModelError, Request, ScriptedModel, ScriptedReply, resolve
from ponder.models.base import Completion, Sample
from ponder.problems.base import Problem
from ponder.verify import Attempt, Score
from ponder.verify.confidence import ConfidenceScorer
from ponder.verify.judge import Judge
from ponder.verify.scorers import SCORERS, make_scorer
from ponder.verify.scoring import Scorer

Verdict = Score
JudgeScorer = Judge


async def judge(problem, text, model, max_tokens=8):
    """The judge's Score for ``text`` as a finished solution, and what the call cost."""
    score = await Judge(max_tokens=max_tokens).score(problem, Attempt(text), model)
    return score, score.usage

PROBLEM = Problem("p1", "What is 2 + 3?", answer="5", kind="numeric")
CANDIDATE = "2 + 3 = 5, so the answer is \\boxed{5}."


def run(coro):
    return asyncio.run(coro)


class NoLogprobsModel(ScriptedModel):
    """A backend that cannot return logprobs (some servers): samples come back without them."""

    async def generate(self, request: Request, on_text=None, should_stop=None) -> Completion:
        c = await super().generate(request, on_text, should_stop)
        return Completion([replace(s, logprobs=None) for s in c.samples], c.usage)


def test_yes_scores_the_probability_of_yes():
    model = ScriptedModel([ScriptedReply("Yes", logprobs=[-0.1])])
    verdict, usage = run(judge(PROBLEM, CANDIDATE, model))
    assert verdict.ok and verdict.value == pytest.approx(math.exp(-0.1))
    assert "Yes" in verdict.reason
    request = model.requests[0]
    assert request.logprobs and request.temperature == 0 and request.max_tokens == 8
    assert request.messages is not None and CANDIDATE in request.messages[-1]["content"]
    assert "5" not in request.messages[0]["content"]  # the system prompt carries no reference


def test_no_scores_one_minus_the_probability_of_no():
    model = ScriptedModel([ScriptedReply("No, the answer is wrong.", logprobs=[-0.3] * 5)])
    verdict, _ = run(judge(PROBLEM, CANDIDATE, model))
    assert not verdict.ok and verdict.value == pytest.approx(1 - math.exp(-0.3))
    unsure = ScriptedModel([ScriptedReply("No", logprobs=[-2.0])])  # p(No) = 0.135: leans Yes
    verdict, _ = run(judge(PROBLEM, CANDIDATE, unsure))
    assert verdict.ok and verdict.value == pytest.approx(1 - math.exp(-2.0))


def test_without_logprobs_the_text_is_parsed():
    verdict = run(judge(PROBLEM, CANDIDATE, NoLogprobsModel(["Yes."])))[0]
    assert (verdict.ok, verdict.value, verdict.reason) == (True, 1.0, "judge said Yes")
    assert run(judge(PROBLEM, CANDIDATE, NoLogprobsModel(["no"])))[0].value == 0.0
    # a verdict behind markup is read from the text even when logprobs exist (its first token is
    # the markup, whose probability says nothing about the verdict)
    assert run(judge(PROBLEM, CANDIDATE, ScriptedModel(["**No**"])))[0].value == 0.0


def test_garbage_scores_one_half():
    for reply in ("Maybe, it depends.", "", "Yesterday I ate"):
        verdict, _ = run(judge(PROBLEM, CANDIDATE, ScriptedModel([reply])))
        assert verdict.value == 0.5 and verdict.reason == "judge gave no verdict"


def test_usage_is_the_judge_calls_usage():
    model = ScriptedModel([ScriptedReply("Yes it is", logprobs=[-0.1, -0.2, -0.3])])
    _, usage = run(judge(PROBLEM, CANDIDATE, model, max_tokens=2))
    assert usage.calls == 1
    assert usage.prompt_tokens == model.count_prompt_tokens(model.requests[0])
    assert usage.completion_tokens == 2  # cut at max_tokens


def test_judge_scorer_max_cost_bounds_what_it_spends():
    scorer = JudgeScorer(max_tokens=4)
    typed: Scorer = scorer  # satisfies the protocol (checked by type checkers)
    assert (typed.name, typed.top_logprobs) == ("judge", 0)
    sample = Sample(CANDIDATE, 10, 12, "stop")
    for reply in ("Yes", "No no no no no no no", "Hmm"):
        model = ScriptedModel([reply])
        scored = run(scorer.score(PROBLEM, Attempt(sample.text, sample=sample), model))
        assert 0 <= scored.value <= 1 and scored.reason
        assert scored.usage.calls == 1
        assert scorer.max_cost(PROBLEM, Attempt(sample.text, sample=sample), model) >= scored.usage.total_tokens
    with pytest.raises(ValueError, match="max_tokens"):
        JudgeScorer(max_tokens=0)


def test_confidence_scorer_is_free_and_reads_top_logprobs():
    top = [[-0.01, -5.0]] * 3 + [[-1.0, -1.2]] * 3  # confident start, unsure end
    sample = Sample("a b c d e f", 5, 6, "stop", logprobs=[r[0] for r in top], top_logprobs=top)
    model = ScriptedModel(["unused"])
    tail = ConfidenceScorer(window=3)
    assert (tail.name, tail.top_logprobs, tail.measure) == ("confidence", 5, "tail")
    assert tail.max_cost(PROBLEM, Attempt(sample.text, sample=sample), model) == 0
    scored = run(tail.score(PROBLEM, Attempt(sample.text, sample=sample), model))
    assert scored.value == pytest.approx(1.1) and scored.usage == Usage()
    mean = run(ConfidenceScorer(measure="mean").score(PROBLEM, Attempt(sample.text, sample=sample), model))
    assert mean.value == pytest.approx((2.505 + 1.1) / 2)
    lowest = run(ConfidenceScorer(measure="lowest_group", window=3).score(PROBLEM, Attempt(sample.text, sample=sample), model))
    assert lowest.value == pytest.approx(1.1)
    bottom = run(ConfidenceScorer(measure="bottom10", window=3).score(PROBLEM, Attempt(sample.text, sample=sample), model))
    assert bottom.value == pytest.approx(1.1)
    assert model.requests == []
    with pytest.raises(ModelError, match="top logprobs"):  # a backend without them: setup error
        run(tail.score(PROBLEM, Attempt(sample.text, sample=replace(sample, top_logprobs=None)), model))
    with pytest.raises(ValueError, match="mean, lowest_group, bottom10, tail"):
        ConfidenceScorer(measure="median")


def test_make_scorer():
    assert set(SCORERS) == {"check", "judge", "confidence", "prob", "arith", "tests", "countdown"}
    assert isinstance(make_scorer("judge"), JudgeScorer)
    c = make_scorer("confidence", measure="bottom10", window=64)
    assert (c.measure, c.window) == ("bottom10", 64)
    with pytest.raises(ValueError, match="known: check, judge, confidence, prob, arith, tests, countdown, prm:PATH"):
        make_scorer("reference")
    with pytest.raises(ValueError, match="cannot rate steps; use one of judge, prob, arith, countdown"):
        make_scorer("confidence", level="step")
    with pytest.raises(ValueError, match="its options: max_tokens"):
        make_scorer("judge", temperature=1.0)


@pytest.mark.slow
def test_judge_with_the_embedded_model():
    model = resolve("default")
    try:
        verdict, usage = run(judge(PROBLEM, CANDIDATE, model, max_tokens=4))
        scorer = JudgeScorer(max_tokens=4)
        bound = scorer.max_cost(PROBLEM, Attempt(CANDIDATE), model)
    finally:
        model.close()
    assert isinstance(verdict, Verdict) and 0 <= verdict.value <= 1
    assert usage.calls == 1 and usage.prompt_tokens > 0 and 1 <= usage.completion_tokens <= 4
    assert usage.total_tokens <= bound

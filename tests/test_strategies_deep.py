"""`confidence` (DeepConf online) and `deepthink` (multi-agent thinking) on scripted models."""

from __future__ import annotations

import asyncio
import math

import pytest

from ponder.budget import Budget, Usage
from ponder.events import Final, Phase, Sampled, Stopped, TextDelta, Voted
from ponder.models import ModelError, ScriptedModel, ScriptedReply
from ponder.models.scripted import scripted_tokens
from ponder.problems.base import Problem
from recording import Recorder
from ponder.think import parse_strategy
from ponder.think.base import SYSTEM_PROMPT
from ponder.think.confidence import Confidence, percentile
from ponder.think.deepthink import PROPOSE_SYSTEM, SYNTH_SYSTEM, DeepThink, _similarity
from ponder.verify.judge import JUDGE_SYSTEM

PROBLEM = Problem(id="p1", question="What is 3 * 4 ?", answer="12")




class NoTopLogprobs(ScriptedModel):
    """A backend that ignores top_logprobs (as one without logprob support would)."""

    async def generate(self, request, on_text=None, should_stop=None):
        c = await super().generate(request, on_text=on_text)
        for s in c.samples:
            s.top_logprobs = None
        return c


def events_of(strategy, model, budget: Budget | None = None):
    async def go():
        return [ev async for ev in strategy.run(PROBLEM, model, budget or Budget())]

    return asyncio.run(go())


def result_of(events):
    """The Result, after checking that its trace is every other non-TextDelta event."""
    assert isinstance(events[-1], Final)
    result = events[-1].result
    assert result.trace == [e for e in events[:-1] if not isinstance(e, TextDelta)]
    return result


def reply(confs: list[float], answer: str, k: int = 2) -> ScriptedReply:
    """A reply of len(confs) tokens, the last one "\\boxed{answer}", whose token confidences are
    ``confs`` (every top-k logprob of token i is -confs[i], so C_i = confs[i])."""
    text = " ".join(["w"] * (len(confs) - 1) + [f"\\boxed{{{answer}}}"])
    assert len(scripted_tokens(text)) == len(confs)
    return ScriptedReply(text, logprobs=[-c for c in confs], top_logprobs=[[-c] * k for c in confs])


def check_usage(result, model: Recorder) -> None:
    total = sum(model.usages, Usage())
    assert result.usage.prompt_tokens == total.prompt_tokens
    assert result.usage.completion_tokens == total.completion_tokens
    assert result.usage.calls == total.calls == len(model.requests)


# --- confidence -----------------------------------------------------------------------------------

# warm-up: four steady traces (confidences 5, 4, 3, 2); wave: two confident traces run to the end,
# two collapse after two tokens and are cut.
WARM = [reply([5] * 5, "12"), reply([4] * 5, "12"), reply([3] * 5, "14"), reply([2] * 5, "14")]
WAVE = [
    reply([5] * 5, "14"),
    reply([5, 5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], "99"),
    reply([4] * 5, "12"),
    reply([5, 5, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], "99"),
]


def deepconf_model() -> Recorder:
    return Recorder(lambda req, i: (WARM + WAVE)[i])


def test_percentile_interpolates_like_numpy():
    assert percentile([5, 4, 3, 2], 10) == pytest.approx(2.3)  # rank 0.3 between 2 and 3
    assert percentile([5, 4, 3, 2], 90) == pytest.approx(4.7)
    assert percentile([7], 10) == 7 and percentile([], 50) == 0.0


def test_confidence_warmup_sets_threshold_and_cuts_collapsing_traces():
    model = deepconf_model()
    strat = Confidence(warmup=4, max_samples=8, wave=4, keep_percent=90, window=2, top_k=2)
    events = events_of(strat, model)
    result = result_of(events)

    warm_req, wave_req = model.requests
    assert (warm_req.n, wave_req.n) == (4, 4)
    assert warm_req.top_logprobs == wave_req.top_logprobs == 2

    sampled = {e.sample: e for e in events if isinstance(e, Sampled)}
    # threshold = 10th percentile of [5, 4, 3, 2] = 2.3; trace 5's window (5, 0.5) = 2.75 passes,
    # (0.5, 0.5) = 0.5 does not: cut after its 4th token; trace 7 likewise.
    for i in (5, 7):
        assert sampled[i].finish_reason == "cancelled"
        assert sampled[i].completion_tokens == 4  # of its 9 tokens
        assert sampled[i].answer is None
    for i in (0, 1, 2, 3, 4, 6):
        assert sampled[i].finish_reason == "stop" and sampled[i].completion_tokens == 5
    cuts = [e for e in events if isinstance(e, Stopped) and e.sample is not None]
    assert [e.sample for e in cuts] == [5, 7]
    assert "2.300" in cuts[0].reason and "0.500" in cuts[0].reason

    # cut traces do not vote; weights are lowest group confidences
    final_tally = [e for e in events if isinstance(e, Voted)][-1]
    assert final_tally.tally == pytest.approx({"12": 5 + 4 + 4, "14": 3 + 2 + 5})
    assert result.answer == "12"
    assert "2 cut" in result.how and "8 tokens spent on them" in result.how
    assert result.trace and all(not isinstance(e, TextDelta) for e in result.trace)
    assert any(isinstance(e, TextDelta) for e in events)
    check_usage(result, model)


def test_confidence_low_keeps_only_the_most_confident():
    # DeepConf-low (keep 10%): threshold = 90th percentile of [5, 4, 3, 2] = 4.7; the wave's
    # confidence-4 trace (12) is cut too, the confidence-5 one (14) runs.
    model = deepconf_model()
    strat = Confidence(warmup=4, max_samples=8, wave=4, keep_percent=10, window=2, top_k=2)
    events = events_of(strat, model)
    cut = sorted(e.sample for e in events if isinstance(e, Stopped) and e.sample is not None)
    assert cut == [5, 6, 7]
    assert [e for e in events if isinstance(e, Voted)][-1].tally == pytest.approx(
        {"12": 9, "14": 10}
    )
    assert result_of(events).answer == "14"


def test_confidence_weighted_minority_outweighs_majority():
    confs = {0: 1.0, 1: 1.0, 2: 3.0}
    answers = {0: "12", 1: "12", 2: "14"}
    model = Recorder(lambda req, i: reply([confs[i]] * 4, answers[i]))
    strat = Confidence(warmup=3, max_samples=3, window=2, top_k=2)
    result = result_of(events_of(strat, model))
    assert result.answer == "14"  # weight 3.0 beats 1.0 + 1.0
    assert "60%" in result.how


def test_confidence_stops_when_the_vote_is_settled():
    model = Recorder(lambda req, i: reply([3] * 4, "12"))
    strat = Confidence(warmup=2, max_samples=16, wave=2, window=2, top_k=2, settle=0.95)
    events = events_of(strat, model)
    assert len(model.requests) == 2  # warm-up + one wave, then settled
    assert any(isinstance(e, Stopped) and "settled" in e.reason for e in events)
    assert result_of(events).answer == "12"


def test_confidence_without_top_logprobs_is_a_setup_error():
    model = NoTopLogprobs(["\\boxed{12}"], name="bare-model")
    with pytest.raises(ModelError) as e:  # the CLI prints ModelErrors as one line
        events_of(Confidence(warmup=2, max_samples=4), model)
    assert str(e.value) == (
        "confidence: the model bare-model returned no top logprobs; this strategy needs a backend "
        "that provides them (gguf, hf, or an OpenAI-compatible server with logprobs)"
    )


@pytest.mark.parametrize("budget", [20, 100, 300, 1000, 5000])
def test_confidence_never_exceeds_the_budget(budget):
    model = Recorder(lambda req, i: reply([3, 3, 0.1, 3] * 10 if i % 3 == 2 else [3] * 40, "12"))
    strat = Confidence(
        warmup=2, max_samples=8, wave=2, window=2, top_k=2, max_tokens=40, settle=None
    )
    result = result_of(events_of(strat, model, Budget(budget)))
    assert result.usage.total_tokens <= budget
    check_usage(result, model)


def test_confidence_config_is_validated():
    with pytest.raises(ValueError, match="keep_percent"):
        Confidence(keep_percent=0)
    with pytest.raises(ValueError, match="max_samples"):
        Confidence(warmup=8, max_samples=4)


# --- deepthink ------------------------------------------------------------------------------------

APPROACHES = [
    "Set up an equation for the unknown product and solve it algebraically step by step.",
    "Set up an equation for the unknown product and solve it algebraically, step by step.",
    "Draw a table of repeated additions and read the total from the last row.",
]
REPLACEMENT = "Work backwards from candidate answers and check each one by division."
SOLUTIONS = {
    "equation": "3 * 4 = 12 so \\boxed{12}",
    "table": "4 + 4 + 4 = 12 \\boxed{12}",
    "backwards": "48 / 4 = 14 hmm \\boxed{14}",
}
SYNTHESIS = "Both were checked; \\boxed{13}\nReason: recomputed the product."
LONG = " ".join(["step"] * 60)


def deepthink_model(
    judge=None, solutions=SOLUTIONS, long=False, reask=REPLACEMENT, synthesis=SYNTHESIS
) -> Recorder:
    """Replies by request: proposals (a near-duplicate first time, ``reask`` when re-asked),
    solutions by approach, judge verdicts by candidate answer, synthesis."""
    proposals = iter(APPROACHES)

    def respond(req, i):
        system, user = req.messages[0]["content"], req.messages[-1]["content"]
        if system == PROPOSE_SYSTEM:
            return reask if "already taken" in user else next(proposals, REPLACEMENT)
        if system == SYSTEM_PROMPT:
            key = next((k for k in solutions if k in user.lower()), "equation")
            return (LONG + " " if long else "") + solutions[key]
        if system == JUDGE_SYSTEM:
            p = (judge or {"12": 0.9, "14": 0.6}).get("12" if "boxed{12}" in user else "14")
            word = "Yes" if judge is not None or "boxed{12}" in user else "No"
            return ScriptedReply(word, logprobs=[math.log(p)])
        if system == SYNTH_SYSTEM:
            return synthesis
        raise AssertionError(f"unexpected request {req}")

    return Recorder(respond)


def systems(model):
    return [r.messages[0]["content"] for r in model.requests]


def check_phases(result, model):
    phases = [e for e in result.trace if isinstance(e, Phase)]
    assert [p.name for p in phases] == ["propose", "solve", "verify", "select"]
    total = sum((p.usage for p in phases), Usage())
    assert (total.prompt_tokens, total.completion_tokens, total.calls) == (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        result.usage.calls,
    )
    check_usage(result, model)


def test_approach_similarity_is_word_jaccard():
    assert _similarity(APPROACHES[0], APPROACHES[1]) == 1.0  # punctuation aside, same words
    assert _similarity(APPROACHES[0], APPROACHES[2]) < 0.3
    assert _similarity("", "") == 1.0


def test_deepthink_reasks_duplicates_solves_per_agent_and_selects_by_verifier():
    model = deepthink_model()
    events = events_of(DeepThink(agents=3, verifier="judge"), model)
    result = result_of(events)

    proposes = [r for r in model.requests if r.messages[0]["content"] == PROPOSE_SYSTEM]
    assert [r.n for r in proposes] == [3, 1]  # the duplicate is re-asked once, alone
    reask = proposes[1].messages[-1]["content"]
    assert APPROACHES[0] in reask and APPROACHES[2] in reask and APPROACHES[1] not in reask
    propose_phase = next(e for e in events if isinstance(e, Phase) and e.name == "propose")
    assert "1 duplicate" in propose_phase.detail and "3 distinct" in propose_phase.detail

    solves = [r for r in model.requests if r.messages[0]["content"] == SYSTEM_PROMPT]
    assert len(solves) == 3 and all(r.n == 1 for r in solves)
    for r, approach in zip(solves, [APPROACHES[0], REPLACEMENT, APPROACHES[2]]):
        assert approach in r.messages[-1]["content"]
    answers = {e.sample: e.answer for e in events if isinstance(e, Sampled)}
    assert answers == {0: "12", 1: "14", 2: "12"}

    assert systems(model).count(JUDGE_SYSTEM) == 3
    assert SYNTH_SYSTEM not in systems(model)  # the verifier settled it
    assert result.answer == "12"
    assert result.how.startswith("3 agents, 3 distinct approaches")
    assert "12 (score 0.90, 2 agents) vs 14 (score 0.40, 1 agent)" in result.how
    assert result.how.endswith("selected 12 by verifier")
    check_phases(result, model)


def test_deepthink_duplicate_that_stays_duplicate_is_counted():
    model = deepthink_model(reask=APPROACHES[0].upper())  # the re-ask repeats the first approach
    result = result_of(events_of(DeepThink(agents=3), model))
    assert result.how.startswith("3 agents, 2 distinct approaches")
    check_phases(result, model)


def test_deepthink_synthesises_only_on_disagreement():
    # equal verifier scores for 12 and 14: the top-scored answers disagree -> one synthesis call
    model = deepthink_model(judge={"12": 0.8, "14": 0.8})
    result = result_of(events_of(DeepThink(agents=3), model))
    assert systems(model).count(SYNTH_SYSTEM) == 1
    assert result.answer == "13"
    assert result.how.endswith(
        "answers 12 (score 0.80, 2 agents) vs 14 (score 0.80, 1 agent); "
        "selected 13 by synthesis: recomputed the product."
    )
    check_phases(result, model)

    # every agent agrees: no synthesis, even with equal scores
    agree = {k: "\\boxed{12}" for k in SOLUTIONS}
    model = deepthink_model(judge={"12": 0.8, "14": 0.8}, solutions=agree)
    result = result_of(events_of(DeepThink(agents=3), model))
    assert SYNTH_SYSTEM not in systems(model)
    assert result.answer == "12" and result.how.endswith("selected 12 as all agents agree")
    check_phases(result, model)


def test_deepthink_falls_back_to_agent_count_when_synthesis_states_no_answer():
    model = deepthink_model(judge={"12": 0.8, "14": 0.8}, synthesis="I cannot decide.")
    result = result_of(events_of(DeepThink(agents=3), model))
    assert systems(model).count(SYNTH_SYSTEM) == 1
    assert result.answer == "12"  # 2 agents against 1
    assert result.how.endswith("selected 12 by agent count (synthesis stated no answer)")
    assert "\\boxed{12}" in result.text
    check_phases(result, model)


def test_deepthink_streams_text_and_asks_top_logprobs_for_the_confidence_verifier():
    model = deepthink_model()
    events = events_of(DeepThink(agents=3, verifier="confidence"), model)
    solves = [r for r in model.requests if r.messages[0]["content"] == SYSTEM_PROMPT]
    assert all(r.top_logprobs == 5 for r in solves)
    assert JUDGE_SYSTEM not in systems(model)  # confidence scoring costs no call
    streamed = {e.sample for e in events if isinstance(e, TextDelta)}
    assert {0, 1, 2} <= streamed <= {0, 1, 2, 3}  # the agents, then a synthesis (if any) as 3
    assert all(not isinstance(e, TextDelta) for e in result_of(events).trace)


def test_deepthink_budget_too_small():
    model = deepthink_model()
    result = result_of(events_of(DeepThink(), model, Budget(30)))
    assert result.answer is None and "budget too small" in result.how
    assert model.requests == [] and result.usage.total_tokens == 0


@pytest.mark.parametrize("budget", [100, 300, 1000, 5000])
@pytest.mark.parametrize("verifier", ["judge", "confidence"])
def test_deepthink_never_exceeds_the_budget(budget, verifier):
    model = deepthink_model(judge={"12": 0.8, "14": 0.8}, long=True)
    result = result_of(events_of(DeepThink(agents=3, verifier=verifier), model, Budget(budget)))
    assert result.usage.total_tokens <= budget
    check_phases(result, model)


def test_deepthink_config_is_validated():
    with pytest.raises(ValueError, match="verifier"):
        DeepThink(verifier="oracle")
    with pytest.raises(ValueError, match="similarity"):
        DeepThink(similarity=1.5)


# --- specs ----------------------------------------------------------------------------------------


def test_parse_strategy_specs():
    s = parse_strategy("confidence:warmup=2,wave=2")
    assert isinstance(s, Confidence) and (s.warmup, s.wave, s.max_samples) == (2, 2, 16)
    assert s.spec == "confidence:warmup=2,wave=2"
    s = parse_strategy("deepthink:agents=4,verifier=confidence")
    assert isinstance(s, DeepThink) and (s.agents, s.verifier) == (4, "confidence")
    assert s.spec == "deepthink:agents=4,verifier=confidence"
    assert parse_strategy("confidence:settle=none").settle is None

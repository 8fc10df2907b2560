"""vote (plain and weighted), best_of_n and adaptive on the scripted model; outcomes by hand."""

import asyncio
import math
from dataclasses import dataclass, field
from fractions import Fraction

import pytest

from ponder.budget import Budget, Usage
from ponder.events import Final, Scored, Spent, Stopped, TextDelta, Voted
from ponder.models import ScriptedModel, ScriptedReply
from ponder.problems.base import Problem
from ponder.think import StrategySpecError, parse_strategy
from ponder.think.adaptive import Adaptive, leader_probability
from ponder.think.base import solve_request
from ponder.think.best_of_n import BestOfN
from ponder.think.vote import Vote
from ponder.verify.judge import JUDGE_SYSTEM
from ponder.verify.scorers import SCORERS
from ponder.verify import Score

PROBLEM = Problem("p1", "What is 3 + 4?", "7", kind="numeric")


def boxed(x: str) -> str:
    return f"I add the numbers. \\boxed{{{x}}}"


NO_ANSWER = "I am not sure how to do this."  # no digit anywhere: extract_answer finds nothing


class RecordingModel(ScriptedModel):
    """A scripted model that keeps every call's own usage, to check a strategy's accounting."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.usages: list[Usage] = []

    async def generate(self, request, on_text=None, should_stop=None):
        completion = await super().generate(request, on_text, should_stop)
        self.usages.append(completion.usage)
        return completion


def is_judge(request) -> bool:
    return request.messages[0]["content"] == JUDGE_SYSTEM


def solver(answers, judge_likes=None):
    """Solve requests get ``answers`` in turn (``str`` or ScriptedReply); judge requests say Yes to
    a candidate whose text contains ``\\boxed{judge_likes}`` and No otherwise."""
    state = {"i": 0}

    def reply(request, _):
        if is_judge(request):
            candidate = request.messages[-1]["content"]
            liked = judge_likes is not None and f"\\boxed{{{judge_likes}}}" in candidate
            return "Yes" if liked else "No"
        r = answers[state["i"] % len(answers)]
        state["i"] += 1
        return r

    return reply


def run(strategy, model, budget=Budget()):
    async def go():
        events = []
        async for ev in strategy.run(PROBLEM, model, budget):
            events.append(ev)
        return events

    events = asyncio.run(go())
    assert isinstance(events[-1], Final)
    assert sum(isinstance(e, Final) for e in events) == 1
    result = events[-1].result
    # the trace is every non-TextDelta event before Final
    kept = [e for e in events[:-1] if not isinstance(e, TextDelta)]
    assert result.trace == kept
    return result, events


def check_accounting(result, model, budget):
    calls = model.usages
    total = sum(calls, Usage())
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.calls) == (
        total.prompt_tokens,
        total.completion_tokens,
        total.calls,
    )
    assert result.usage.calls == len(calls)
    if budget.max_tokens is not None:
        assert result.usage.total_tokens <= budget.max_tokens


@dataclass
class TableScorer:
    """A test scorer: the score of a sample is looked up by its answer; each call costs ``cost``
    tokens (reported as usage, without a model call)."""

    table: dict = field(default_factory=dict)
    cost: int = 0
    name: str = "table"
    top_logprobs: int = 0
    logprobs: bool = False
    needs_sample: bool = False
    levels: frozenset = frozenset({"answer"})

    def max_cost(self, problem, attempt, model):
        return self.cost

    async def score(self, problem, attempt, model):
        for key, value in self.table.items():
            if f"\\boxed{{{key}}}" in attempt.text:
                return Score(True, value, f"table says {value}")
        return Score(True, len(attempt.text), "length")


@pytest.fixture
def table_scorer(monkeypatch):
    def install(**kwargs):
        monkeypatch.setitem(SCORERS, "table", lambda: TableScorer(**kwargs))

    return install


# ---------------------------------------------------------------- vote


def test_vote_majority_wins():
    model = RecordingModel(solver([boxed("7"), boxed("8"), boxed("7"), boxed("9"), boxed("7")]))
    result, events = run(Vote(n=5), model)
    assert result.answer == "7"
    assert result.how == "majority vote: 3/5 samples agree"
    assert len(model.requests) == 1 and model.requests[0].n == 5
    voted = [e for e in events if isinstance(e, Voted)]
    assert voted[-1].tally == {"7": 3.0, "8": 1.0, "9": 1.0}
    check_accounting(result, model, Budget())


def test_vote_tie_goes_to_the_answer_seen_first():
    model = ScriptedModel(solver([boxed("8"), boxed("7"), boxed("7"), boxed("8")]))
    assert run(Vote(n=4), model)[0].answer == "8"
    model = ScriptedModel(solver([boxed("7"), boxed("8"), boxed("8"), boxed("7")]))
    assert run(Vote(n=4), model)[0].answer == "7"


def test_vote_answerless_samples_abstain():
    model = ScriptedModel(solver([NO_ANSWER, NO_ANSWER, boxed("5"), NO_ANSWER]))
    result, events = run(Vote(n=4), model)
    assert result.answer == "5"
    assert [e for e in events if isinstance(e, Voted)][-1].tally == {"5": 1.0}
    model = ScriptedModel(solver([NO_ANSWER]))
    result, _ = run(Vote(n=3), model)
    assert result.answer is None and "no answer in any of 3 samples" in result.how


def test_vote_weighted_by_judge_flips_the_majority():
    answers = [boxed("8"), boxed("8"), boxed("7"), boxed("8"), boxed("7")]
    plain, _ = run(Vote(n=5), ScriptedModel(solver(answers, judge_likes="7")))
    assert plain.answer == "8"
    model = RecordingModel(solver(answers, judge_likes="7"))
    result, events = run(Vote(n=5, weighted="verifier"), model)
    assert result.answer == "7"
    assert result.how.startswith("judge-weighted vote")
    scored = {e.sample: e.score for e in events if isinstance(e, Scored)}
    p = math.exp(-0.1)  # the scripted model's default logprob of the judge's verdict
    assert scored == pytest.approx({0: 1 - p, 1: 1 - p, 2: p, 3: 1 - p, 4: p})
    tally = [e for e in events if isinstance(e, Voted)][-1].tally
    assert tally == pytest.approx({"8": 3 * (1 - p), "7": 2 * p})
    assert len(model.requests) == 1 + 5  # one batched sampling call, one judge call per sample
    check_accounting(result, model, Budget())


def test_vote_weighted_by_a_named_verifier(table_scorer):
    table_scorer(table={"7": 10.0, "8": 1.0})
    model = ScriptedModel(solver([boxed("8"), boxed("8"), boxed("7")]))
    result, _ = run(Vote(n=3, weighted="verifier", verifier="table"), model)
    assert result.answer == "7" and result.how.startswith("table-weighted vote")


def test_vote_weighted_by_confidence_uses_top_logprobs():
    sure = [[0.0, -12.0, -12.0, -12.0, -12.0]]  # token confidence 9.6
    unsure = [[-0.7, -0.8, -2.0, -2.0, -2.0]]  # token confidence 1.5
    def reply(text, row):
        n = len(text.split())
        return ScriptedReply(text, [row[0][0]] * n, row * n)

    answers = [reply(boxed("8"), unsure), reply(boxed("8"), unsure), reply(boxed("7"), sure)]
    model = RecordingModel(solver(answers))
    result, events = run(Vote(n=3, weighted="confidence"), model)
    assert model.requests[0].top_logprobs == 5
    assert result.answer == "7"
    scored = [e.score for e in events if isinstance(e, Scored)]
    assert scored == pytest.approx([1.5, 1.5, 9.6])
    assert len(model.requests) == 1  # confidence costs no call
    check_accounting(result, model, Budget())


# ---------------------------------------------------------------- best_of_n


def test_best_of_n_picks_the_highest_score_even_in_the_minority():
    answers = [boxed("8"), boxed("8"), boxed("7"), boxed("8")]
    model = RecordingModel(solver(answers, judge_likes="7"))
    result, events = run(BestOfN(n=4), model)
    assert result.answer == "7"
    assert result.text == boxed("7")
    assert "sample 2 scored 0.905 by judge" in result.how and "1/4 samples agree" in result.how
    assert len([e for e in events if isinstance(e, Scored)]) == 4
    assert len(model.requests) == 5
    check_accounting(result, model, Budget())


def test_best_of_n_ties_go_to_more_votes_then_the_earlier_sample(table_scorer):
    table_scorer(table={"7": 1.0, "8": 1.0, "9": 1.0})
    model = ScriptedModel(solver([boxed("9"), boxed("8"), boxed("7"), boxed("8")]))
    result, _ = run(BestOfN(n=4, verifier="table"), model)
    assert result.answer == "8" and "sample 1 scored" in result.how
    model = ScriptedModel(solver([boxed("9"), boxed("8"), boxed("7")]))
    result, _ = run(BestOfN(n=3, verifier="table"), model)
    assert result.answer == "9" and "sample 0 scored" in result.how


def test_best_of_n_never_chooses_an_answerless_sample(table_scorer):
    table_scorer()  # scores by text length: the long answerless text would win if it were scored
    long_no_answer = NO_ANSWER + " Really, I have no idea at all, none whatsoever."
    model = ScriptedModel(solver([long_no_answer, boxed("7"), long_no_answer]))
    result, events = run(BestOfN(n=3, verifier="table"), model)
    assert result.answer == "7"
    assert [e.sample for e in events if isinstance(e, Scored)] == [1]  # answerless: not scored
    model = ScriptedModel(solver([NO_ANSWER]))
    result, _ = run(BestOfN(n=3, verifier="table"), model)
    assert result.answer is None and "no answer" in result.how


def test_best_of_n_keeps_back_the_judge_cost_and_charges_it():
    model = RecordingModel(solver([boxed("8"), boxed("7")], judge_likes="7"))
    prompt = model.count_prompt_tokens(solve_request(PROBLEM))
    budget = Budget(prompt + 2 * 100)  # enough for two 100-token samples, not for judging them too
    result, events = run(BestOfN(n=2, max_tokens=100), model, budget)
    planned = model.requests[0].max_tokens
    assert planned < 100  # shrunk to leave room for two judge calls
    assert len([e for e in events if isinstance(e, Scored)]) == 2  # and both were paid for
    assert result.answer == "7"
    check_accounting(result, model, budget)
    spent = [e.usage for e in events if isinstance(e, Spent)]
    assert spent[-1] == result.usage and spent[0].calls == 1 and spent[-1].calls == 3


def test_scoring_is_all_or_none_and_falls_back_to_the_count(table_scorer):
    table_scorer(table={"7": 10.0}, cost=10**6)  # no budget here pays for one scoring
    for strategy, fallback in [
        (BestOfN(n=3, verifier="table"), "too little budget to score by table"),
        (Vote(n=3, weighted="verifier", verifier="table"), "too little budget to weight by table"),
    ]:
        model = RecordingModel(solver([boxed("8"), boxed("8"), boxed("7")]))
        result, events = run(strategy, model, Budget(1000))
        assert result.answer == "8" and fallback in result.how and "2/3" in result.how
        assert not [e for e in events if isinstance(e, Scored)]
        assert "budget left no room to score the 3 answered samples" in next(
            e.reason for e in events if isinstance(e, Stopped)
        )
        prompt = model.count_prompt_tokens(model.requests[0])
        # the plain plan: nothing kept back for scoring
        assert model.requests[0].max_tokens == (1000 - prompt) // 3
        check_accounting(result, model, Budget(1000))


def test_best_of_n_with_confidence(table_scorer):
    model = RecordingModel(solver([boxed("7")]))
    result, _ = run(parse_strategy("best_of_n:n=3,verifier=confidence"), model)
    assert result.answer == "7" and "by confidence" in result.how
    assert model.requests[0].top_logprobs == 5 and len(model.requests) == 1


# ---------------------------------------------------------------- adaptive


def test_leader_probability_is_the_exact_beta_tail():
    assert leader_probability(4, 0) == Fraction(31, 32)
    assert leader_probability(3, 0) == Fraction(15, 16)
    assert leader_probability(5, 1) == Fraction(120, 128)  # 1 - (C(7,6) + C(7,7)) / 2^7
    assert leader_probability(6, 1) == Fraction(247, 256)
    assert leader_probability(0, 0) == Fraction(1, 2)
    for a in range(6):
        assert leader_probability(a, a) == Fraction(1, 2)  # a tie is never settled
    # against the Beta integral itself: P(θ > 1/2), θ ~ Beta(a+1, b+1), by the midpoint rule
    for a, b in [(4, 0), (5, 2), (7, 3), (2, 5)]:
        steps = 20000
        dens = [((i + 0.5) / steps) ** a * (1 - (i + 0.5) / steps) ** b for i in range(steps)]
        integral = sum(dens[steps // 2 :]) / sum(dens)
        assert float(leader_probability(a, b)) == pytest.approx(integral, abs=1e-6)


def test_adaptive_stops_after_the_first_wave_that_settles():
    model = RecordingModel(solver([boxed("7")]))
    result, events = run(Adaptive(seed=10), model)
    assert result.answer == "7"
    assert result.how.startswith("settled after 4 samples: P=0.97")
    assert len(model.requests) == 1 and model.requests[0].n == 4
    stops = [e.reason for e in events if isinstance(e, Stopped)]
    assert stops == ["settled after 4 samples: P=0.97"]
    check_accounting(result, model, Budget())
    # 3/3 is not settled (15/16 < 0.95): waves of 3 need a second wave
    model = ScriptedModel(solver([boxed("7")]))
    result, _ = run(Adaptive(wave=3, seed=10), model)
    assert result.how.startswith("settled after 6 samples")
    assert [r.seed for r in model.requests] == [10, 13]


def test_adaptive_even_split_runs_to_max_samples():
    model = RecordingModel(solver([boxed("7"), boxed("8")]))
    result, events = run(Adaptive(wave=4, max_samples=16, seed=0), model)
    assert result.how.startswith("max_samples reached")
    assert [r.n for r in model.requests] == [4, 4, 4, 4]
    assert [r.seed for r in model.requests] == [0, 4, 8, 12]  # seed advanced per wave
    assert len([e for e in events if isinstance(e, Voted)]) == 4
    assert result.answer == "7"  # the 8/8 tie goes to the answer seen first
    check_accounting(result, model, Budget())


def test_adaptive_budget_ending_midway_shrinks_the_last_wave():
    model = RecordingModel(solver([boxed("7"), boxed("8")]))
    reply_tokens = len(boxed("7").split())  # 5
    prompt = model.count_prompt_tokens(solve_request(PROBLEM))
    # wave 1: 4 samples planned at 10 tokens each, spends prompt + 4 * 5; then there is room for
    # 2 full samples (25 // 10); after them less than a prompt is left.
    budget = Budget(2 * prompt + 4 * reply_tokens + 25)
    result, events = run(Adaptive(wave=4, max_samples=16, max_tokens=10), model, budget)
    assert [r.n for r in model.requests] == [4, 2]
    assert all(r.max_tokens == 10 for r in model.requests)
    assert result.how.startswith("budget exhausted after 6 samples")
    stops = [e.reason for e in events if isinstance(e, Stopped)]
    assert stops == ["budget exhausted after 6 samples"]
    check_accounting(result, model, budget)


def test_adaptive_tight_budget_draws_one_shorter_sample():
    model = RecordingModel(solver([boxed("7")]))
    prompt = model.count_prompt_tokens(solve_request(PROBLEM))
    budget = Budget(prompt + 8)
    result, _ = run(Adaptive(max_tokens=512), model, budget)
    assert model.requests[0].n == 1 and model.requests[0].max_tokens == 8
    assert result.answer == "7" and result.how.startswith("budget exhausted after 1 samples")
    check_accounting(result, model, budget)


# ---------------------------------------------------------------- every strategy, every budget

SPECS = [
    "cot",
    "vote:n=4",
    "vote:n=4,weighted=verifier",
    "vote:n=4,weighted=confidence",
    "best_of_n:n=4",
    "best_of_n:n=3,verifier=confidence",
    "adaptive:wave=2,max_samples=8",
    "adaptive",
]
LONG = "Let me think about this step by step. First I take three, then I add four more to it. "


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("budget", [30, 80, 200, 1000, 5000, None])
def test_budget_is_never_exceeded_and_usage_is_exact(spec, budget):
    answers = [LONG + boxed("7"), LONG * 3 + boxed("8"), boxed("7"), LONG * 2 + boxed("7")]
    model = RecordingModel(solver(answers, judge_likes="7"))
    budget = Budget(budget)
    result, events = run(parse_strategy(spec), model, budget)
    check_accounting(result, model, budget)
    spent = [e.usage for e in events if isinstance(e, Spent)]
    if model.usages:
        assert spent[-1] == result.usage  # the last Spent event is the total
    else:
        assert result.usage == Usage() and "budget" in result.how
    if budget.max_tokens is None or budget.max_tokens >= 1000:
        assert result.answer == "7"


# ---------------------------------------------------------------- specs


def test_parse_strategy_specs():
    s = parse_strategy("best_of_n:n=4,verifier=confidence")
    assert isinstance(s, BestOfN) and (s.n, s.verifier) == (4, "confidence")
    assert s.spec == "best_of_n:n=4,verifier=confidence"
    s = parse_strategy("adaptive:wave=2,max_samples=8")
    assert isinstance(s, Adaptive) and (s.wave, s.max_samples) == (2, 8)
    s = parse_strategy("vote:n=5,weighted=confidence")
    assert isinstance(s, Vote) and (s.n, s.weighted) == (5, "confidence")
    assert parse_strategy("vote:n=4").spec == "vote:n=4"  # unweighted specs are unchanged
    for bad in (
        "vote:weighted=banana",
        "vote:verifier=banana",
        "best_of_n:verifier=banana",
        "best_of_n:n=0",
        "adaptive:wave=0",
        "adaptive:max_samples=0",
        "adaptive:confidence=0.5",
        "adaptive:confidence=1",
    ):
        with pytest.raises(StrategySpecError):
            parse_strategy(bad)


def test_a_key_given_twice_is_an_error_not_a_silent_last_wins():
    with pytest.raises(StrategySpecError, match="'n' is given twice in 'vote:n=4,n=5'"):
        parse_strategy("vote:n=4,n=5")
    # a wrapper's inner spec is its own: the same key may appear there again
    guard = parse_strategy("guard:max_tokens=64,then=vote:n=4,max_tokens=32", operator=True)
    assert guard.then == "vote:n=4,max_tokens=32" and guard.answering.sampling.max_tokens == 32

"""Sequential thinking and search (reflect, think, beam, mcts, auto), steps and process verifiers,
on scripted models that answer by the prefix they are asked to continue."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

import pytest

from ponder.budget import Budget, Usage
from ponder.events import (
    Backtracked,
    Checked,
    Expanded,
    Final,
    Forced,
    Kept,
    Simulated,
    TextDelta,
    Tree,
    Warned,
)
from ponder.models import ScriptedReply
from ponder.problems.base import Problem
from recording import Recorder
from ponder.think import StrategySpecError, parse_strategy
from ponder.think.steps import split_steps, states_answer
from ponder.verify.judge import JUDGE_SYSTEM
from ponder.verify import Attempt, make_scorer
from ponder.verify.arith import check_equations
from ponder.verify.judge import STEP_JUDGE_SYSTEM

PROBLEM = Problem(id="p1", question="Compute 47 + 85.", answer="132", kind="numeric")
RIGHT = "7+5+0=12 > 2\n4+8+1=13 > 132\nAnswer: 132"




def by_prefix(table: dict[str, list], judge=None) -> Recorder:
    """A model whose reply depends on the partial answer it continues: ``table[prefix]`` is a list
    of replies served in turn (wrapping around) to requests continuing that prefix ("" for a new
    answer). ``judge(request)`` answers judge requests."""
    served: dict[str, int] = defaultdict(int)

    def reply(request, i):
        system = request.messages[0]["content"]
        if system in (JUDGE_SYSTEM, STEP_JUDGE_SYSTEM):
            return judge(request)
        prefix = request.prefix or ""
        options = table[prefix]
        served[prefix] += 1
        return options[(served[prefix] - 1) % len(options)]

    return Recorder(reply)


def events_of(strategy, model, budget: Budget | None = None, problem: Problem = PROBLEM):
    async def go():
        return [ev async for ev in strategy.run(problem, model, budget or Budget())]

    return asyncio.run(go())


def result_of(events, model: Recorder | None = None):
    """The Result, after checking its trace and (given the model) that its usage is exact."""
    assert isinstance(events[-1], Final)
    result = events[-1].result
    assert result.trace == [e for e in events[:-1] if not isinstance(e, TextDelta)]
    if model is not None:
        total = sum(model.usages, Usage())
        assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.calls) == (
            total.prompt_tokens, total.completion_tokens, total.calls
        )
    return result


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


# --- steps and process verifiers ---


def test_split_steps_keeps_the_text_and_finds_boundaries():
    blank = "First we add.\n\nStep 2: carry\nthe one\nStep 3: done\n\nAnswer: 5"
    steps = split_steps(blank, "auto")
    assert steps == [
        "First we add.\n\n", "Step 2: carry\nthe one\n", "Step 3: done\n\n", "Answer: 5"
    ]  # fmt: skip
    assert "".join(steps) == blank
    assert split_steps(RIGHT, "auto") == ["7+5+0=12 > 2\n", "4+8+1=13 > 132\n", "Answer: 132"]
    assert split_steps("a\n\nb\n", "line") == ["a\n\n", "b\n"]  # blank lines join the step before
    assert split_steps("  \nx", "line") == ["  \nx"] and split_steps("", "auto") == []
    assert states_answer("so \\boxed{3}") and states_answer("Answer: 12")
    assert not states_answer("7+5+0=12 > 2") and not states_answer("the answer will be")


@pytest.mark.parametrize(
    "text, checked, wrong",
    [
        ("7+5+0=12 > 2", 1, None),
        ("9+9+1=18 > 83", 1, "9+9+1=18 is wrong (9+9+1 = 19)"),
        ("so (3+4)*2 = 14 and 10/4=2.5, 1/3=0.33", 3, None),
        ("then 10/4 = 2.4", 1, "10/4=2.4 is wrong (10/4 = 2.5)"),
        ("3-5=-2, 6/4=3/2", 2, None),
        ("no maths here; x = 3", 0, None),
        ("1/0=5 and (2+=3", 0, None),
        ("try 25-7=18, left 18 3 4", 1, None),
    ],
)
def test_arith_checks_every_equation_exactly(text, checked, wrong):
    assert check_equations(text) == (checked, wrong)


def test_step_scorer_registry(tmp_path):
    assert make_scorer("arith", level="step").name == "arith"
    # an existing folder is taken as it is: the PRM loads on its first score
    assert make_scorer(f"prm:{tmp_path}", level="step").name == f"prm:{tmp_path}"
    with pytest.raises(ValueError, match="unknown verifier"):
        make_scorer("oracle", level="step")
    with pytest.raises(ValueError, match="cannot rate steps"):
        make_scorer("check", level="step")


# --- reflect ---


def test_reflect_cuts_at_the_first_wrong_step_and_continues_from_there():
    wrong = "7+5+0=12 > 2\n4+8+1=14 > 142\nAnswer: 142"
    model = by_prefix({"": [wrong], "7+5+0=12 > 2\n": ["4+8+1=13 > 132\nAnswer: 132"]})
    events = events_of(parse_strategy("reflect:verifier=arith,split=line", seed=3), model)
    result = result_of(events, model)
    assert result.answer == "132" and result.text == RIGHT
    checks = [(e.step, e.ok) for e in of(events, Checked)]
    # step 0 passes once and is never checked again; step 1 fails, is rewritten, then passes
    assert checks == [(0, True), (1, False), (1, True), (2, True)]
    [bt] = of(events, Backtracked)
    assert (bt.step, bt.round) == (1, 1) and "4+8+1=14 is wrong" in bt.reason
    assert model.requests[1].prefix == "7+5+0=12 > 2\n"  # the cut, not a restart
    assert (model.requests[0].seed, model.requests[1].seed) == (3, 4)
    assert (model.requests[0].temperature, model.requests[1].temperature) == (0.0, 0.7)
    assert "1 backtrack; all 3 steps pass arith" in result.how


def test_reflect_with_the_judge_checks_each_step_with_the_steps_before_it():
    wrong = "7+5+0=12 > 2\n4+8+1=14 > 142\nAnswer: 142"

    def judge(req):
        wrong = "Latest step:\n4+8+1=14" in req.messages[-1]["content"]
        return ScriptedReply("No" if wrong else "Yes")

    model = by_prefix({"": [wrong], "7+5+0=12 > 2\n": ["4+8+1=13 > 132\nAnswer: 132"]}, judge)
    result = result_of(events_of(parse_strategy("reflect:split=line"), model), model)
    assert result.answer == "132"
    judged = [
        r.messages[-1]["content"]
        for r in model.requests
        if r.messages[0]["content"] == STEP_JUDGE_SYSTEM
    ]
    assert len(judged) == 4  # steps 0, 1 (fails), then the new 1 and 2
    assert "Solution so far:\n7+5+0=12 > 2\n\nLatest step:\n4+8+1=14 > 142" in judged[1]


def test_reflect_rounds_are_bounded_and_the_last_text_answers():
    wrong = "7+5+0=12 > 2\n4+8+1=14 > 142\nAnswer: 142"
    model = by_prefix({"": [wrong], "7+5+0=12 > 2\n": ["4+8+1=15 > 152\nAnswer: 152"]})
    events = events_of(parse_strategy("reflect:rounds=2,verifier=arith,split=line"), model)
    result = result_of(events, model)
    assert len(of(events, Backtracked)) == 2 and len(model.requests) == 3
    assert result.answer == "152" and "still fails" in result.how


def test_reflect_rejects_settings_that_cannot_work():
    with pytest.raises(StrategySpecError, match="needs each step's own sample"):
        parse_strategy("reflect:verifier=prob")
    with pytest.raises(StrategySpecError, match="temperature must be > 0"):
        parse_strategy("reflect:temperature=0")
    with pytest.raises(StrategySpecError, match="split"):
        parse_strategy("reflect:split=words")


# --- think (budget forcing) ---


def test_think_appends_wait_below_the_minimum():
    model = by_prefix({
        "<think>\n": ["quick </think> so \\boxed{3}"],
        "<think>\nquick\nWait": [", a b c d e f g h </think> \\boxed{5}"],
    })  # fmt: skip
    events = events_of(parse_strategy("think:style=tags,min_think=6"), model)
    result = result_of(events, model)
    [forced] = of(events, Forced)
    assert (forced.action, forced.thinking_tokens) == ("wait", 2)  # "quick", " </think>"
    assert model.requests[1].prefix == "<think>\nquick\nWait"
    assert result.answer == "5" and "thought 12 tokens (1 Wait appended)" in result.how


def test_think_appends_the_models_own_continue_marker():
    """A search model that never saw "Wait" is sent on with its own marker (countdown: back)."""
    model = by_prefix({
        "": ["dfs [7 5 2|12]\n7+5=12 ok\nAnswer: 7+5"],
        "dfs [7 5 2|12]\n7+5=12 ok\nback": [" [7 5 2|12]\n7*2=14 [14 5|12]\nAnswer: 7+5"],
    })  # fmt: skip
    events = events_of(parse_strategy("think:style=plain,min_think=30,waits=1,wait=back"), model)
    result = result_of(events, model)
    assert [f.action for f in of(events, Forced)] == ["wait"]
    assert model.requests[1].prefix.endswith("7+5=12 ok\nback")
    assert result.answer == "7+5" and "(1 Wait appended)" in result.how
    with pytest.raises(StrategySpecError, match="wait must be"):
        parse_strategy("think:wait= ")


def test_think_closes_the_thinking_at_the_maximum():
    model = by_prefix({
        "<think>\n": ["a b c d e f g h i j </think> \\boxed{9}"],
        "<think>\na b c d e\n</think>\n\n": ["The answer is \\boxed{7}"],
    })  # fmt: skip
    events = events_of(parse_strategy("think:style=tags,max_think=5"), model)
    result = result_of(events, model)
    [forced] = of(events, Forced)
    assert (forced.action, forced.thinking_tokens) == ("close", 5)
    assert model.usages[0].completion_tokens == 5  # stopped at max_think, not at its max_tokens
    assert result.answer == "7" and result.text.endswith("</think>\n\nThe answer is \\boxed{7}")


def test_think_plain_style_and_one_call_when_nothing_is_forced():
    model = by_prefix({"": ["4 plus 8 is 12 , carry ... Answer: 132"]})
    result = result_of(events_of(parse_strategy("think:min_think=3,max_think=50"), model), model)
    assert result.answer == "132" and len(model.requests) == 1 and "thought" in result.how
    # plain, too early: the marker is dropped and Wait appended
    model = by_prefix({"": ["short Answer: 1"], "short\nWait": ["no , longer and on Answer: 2"]})
    events = events_of(parse_strategy("think:min_think=4,style=plain"), model)
    assert result_of(events, model).answer == "2"
    assert [e.action for e in of(events, Forced)] == ["wait"]
    # the answer after a forced close is bounded by max_tokens
    model = by_prefix({"": ["a b c d e f"], "a b c\nAnswer:": [" 4 and more words here"]})
    result = result_of(events_of(parse_strategy("think:max_think=3,max_tokens=2"), model), model)
    assert result.text == "a b c\nAnswer: 4 and" and result.answer == "4 and"


# --- beam ---


def test_beam_keeps_the_best_scored_beams():
    model = by_prefix({
        "": ["7+5+0=12 > 2", "7+5+0=13 > 3", "7+5+0=11 > 1", "7+5+0=12 > 2"],
        "7+5+0=12 > 2\n": ["4+8+1=13 > 132", "4+8+1=14 > 142"],
        "7+5+0=12 > 2\n4+8+1=13 > 132\n": ["Answer: 132"],
    })  # fmt: skip
    spec = "beam:beams=2,expand=2,verifier=arith,split=line,max_steps=5"
    events = events_of(parse_strategy(spec, seed=0), model)
    result = result_of(events, model)
    kept = of(events, Kept)
    assert kept[0].nodes == [1, 4] and kept[0].scores == [1.0, 1.0]  # the two right first steps
    assert of(events, Expanded)[0].scores == [1.0, 0.0, 0.0, 1.0]
    assert kept[1].scores == [1.0, 1.0] and all(n in (5, 7) for n in kept[1].nodes)
    assert result.answer == "132" and result.text == RIGHT
    assert model.requests[0].n == 4 and model.requests[1].n == 2
    assert model.requests[1].stop == ("\n",)
    assert "score-weighted vote of 2 finished beams: 100% for 132" in result.how


def test_beam_confidence_verifier_and_diverse_subtrees():
    model = by_prefix({
        "": [
            ScriptedReply("7+5+0=12 > 2", logprobs=[-0.1, -0.1, -0.1]),  # p = 0.90
            ScriptedReply("7+5+0=12 > 2", logprobs=[-0.2, -0.2, -0.2]),  # 0.82
            ScriptedReply("7+5+0=12 > 3", logprobs=[-2.0, -2.0, -2.0]),  # 0.14
            ScriptedReply("7+5+0=11 > 1", logprobs=[-1.0, -1.0, -1.0]),  # 0.37
        ],
        "7+5+0=12 > 2\n": [ScriptedReply("Answer: 132", logprobs=[-0.1, -0.1])],
        "7+5+0=11 > 1\n": [ScriptedReply("Answer: 121", logprobs=[-0.1, -0.1])],
    })  # fmt: skip
    plain = "beam:beams=2,expand=2,verifier=prob,split=line"
    events = events_of(parse_strategy(plain), model)
    assert of(events, Kept)[0].nodes == [1, 2]  # the two most confident first steps (same text)
    assert result_of(events, model).answer == "132"
    # DVTS: samples 1-2 and 3-4 are two subtrees; each keeps its own best, however weak
    events = events_of(parse_strategy(plain + ",diverse=true"), model)
    assert of(events, Kept)[0].nodes == [1, 4]
    result = result_of(events)
    assert "DVTS" in result.how and result.answer == "132"  # weighted 0.90 against 0.37
    assert "71% for 132" in result.how


def test_beam_completes_its_best_beam_when_the_steps_run_out():
    model = by_prefix({
        "": ["7+5+0=12 > 2"],
        "7+5+0=12 > 2\n": ["4+8+1=13 > 132\nAnswer: 132"],
    })  # fmt: skip
    spec = "beam:beams=1,expand=1,max_steps=1,verifier=arith,split=line"
    result = result_of(events_of(parse_strategy(spec), model), model)
    assert result.answer == "132" and "completed in one call" in result.how
    assert model.requests[-1].stop == () and model.requests[-1].prefix == "7+5+0=12 > 2\n"


@pytest.mark.parametrize("kind", ["beam:beams=1,expand=2", "mcts:simulations=2,expand=2"])
def test_steps_cut_at_step_tokens_are_warned_about(kind):
    """A step longer than step_tokens is cut mid-step and scored as cut (an exact verifier rejects
    the fragment): the run says so, once, with the count; steps that fit raise no warning."""
    model = by_prefix({
        "": ["7+5+0=12 > 2", "7+5+0=12 > 2"],
        "7+5+0=12 > 2\n": ["Answer: 132"],
        "7+5+0=12 >\n": ["Answer: 132"],  # after a first step cut at 2 tokens
    })  # fmt: skip
    spec = f"{kind},verifier=arith,split=line,max_steps=2"
    fits = events_of(parse_strategy(spec + ",step_tokens=64", seed=0), model)
    assert of(fits, Warned) == [] and result_of(fits).answer == "132"
    cut = events_of(parse_strategy(spec + ",step_tokens=2", seed=0), model)
    [warning] = of(cut, Warned)
    assert "were cut at step_tokens=2 before their step boundary" in warning.message
    assert warning.message.startswith("2 of ")  # the two first steps; "Answer: 132" fits


@pytest.mark.parametrize("kind", ["beam:beams=1,expand=1", "mcts:simulations=2,expand=1"])
def test_an_answer_cut_at_step_tokens_does_not_finish_the_search(kind):
    """``Answer: 1 3`` cut from ``Answer: 1 3 2 4`` by step_tokens is a fragment: the search goes
    on after it (and its warning says so) instead of answering it and calling the beam finished."""
    model = by_prefix({
        "": ["Answer: 1 3 2 4"],
        "Answer: 1 3\n": ["Answer: 132"],
    })  # fmt: skip
    spec = f"{kind},verifier=arith,split=line,max_steps=3,step_tokens=3"
    events = events_of(parse_strategy(spec, seed=0), model)
    result = result_of(events)
    assert result.answer == "132" and result.text == "Answer: 1 3\nAnswer: 132"
    assert any(r.prefix == "Answer: 1 3\n" for r in model.requests)
    assert of(events, Warned)[0].message.startswith("1 of ")


def test_beam_floor_drops_rejected_steps_and_backs_off_to_a_set_aside_one():
    """With an exact verifier, floor=1 keeps only sound partial solutions: when every continuation
    of the kept beam is rejected, the search returns to the candidate it set aside. Without the
    floor the beam keeps a rejected step (score 0) and answers from it."""
    model = by_prefix({
        "": ["7+5+0=12 > 2", "7+5=12 > 2"],  # both right; the first is kept, the second set aside
        "7+5+0=12 > 2\n": ["4+8+1=14 > 142", "4+8+1=15 > 152"],  # both wrong
        "7+5+0=12 > 2\n4+8+1=14 > 142\n": ["Answer: 142"],
        "7+5=12 > 2\n": ["4+8+1=13 > 132"],
        "7+5=12 > 2\n4+8+1=13 > 132\n": ["Answer: 132"],
    })  # fmt: skip
    spec = "beam:beams=1,expand=2,verifier=arith,split=line,max_steps=6"
    plain = result_of(events_of(parse_strategy(spec, seed=0), model))
    assert plain.answer == "142"  # the rejected step stayed in the beam
    events = events_of(parse_strategy(spec + ",floor=1", seed=0), model)
    result = result_of(events)
    [back] = of(events, Backtracked)
    assert back.step == 1 and "back to node 2" in back.reason
    assert result.answer == "132" and result.text == "7+5=12 > 2\n4+8+1=13 > 132\nAnswer: 132"
    assert of(events, Kept)[1].nodes == [2]  # depth 1 kept nothing of its own: node 2 instead


def test_beam_floor_merges_identical_partial_solutions():
    model = by_prefix({
        "": ["7+5+0=12 > 2", "7+5+0=12 > 2"],
        "7+5+0=12 > 2\n": ["4+8+1=13 > 132"],
        "7+5+0=12 > 2\n4+8+1=13 > 132\n": ["Answer: 132"],
    })  # fmt: skip
    spec = "beam:beams=2,expand=1,verifier=arith,split=line"
    assert of(events_of(parse_strategy(spec, seed=0), model), Kept)[0].nodes == [1, 2]
    merged = events_of(parse_strategy(spec + ",floor=1", seed=0), model)
    assert of(merged, Kept)[0].nodes == [1]  # the twin would only repeat node 1's search
    assert result_of(merged).answer == "132"


def test_beam_floor_samples_a_rejected_step_again_before_giving_up_its_beam():
    model = lambda: by_prefix({  # noqa: E731
        "": ["7+5+0=12 > 2"],
        "7+5+0=12 > 2\n": ["4+8+1=14 > 142", "4+8+1=15 > 152", "4+8+1=13 > 132"],
        "7+5+0=12 > 2\n4+8+1=13 > 132\n": ["Answer: 132"],
    })  # fmt: skip
    spec = "beam:beams=1,expand=2,verifier=arith,split=line,floor=1"
    events = events_of(parse_strategy(spec, seed=0), model())
    assert result_of(events).answer == "132"  # the third sample of step 2, drawn on the retry
    [back] = of(events, Backtracked)
    assert back.step == 1 and "back to node 1" in back.reason  # the beam itself, again
    none = result_of(events_of(parse_strategy(spec + ",retries=0", seed=0), model()))
    assert none.answer is None and "no candidate at or above floor=1 left" in none.how


def test_beam_floor_ends_on_its_deepest_sound_step_when_nothing_passes():
    model = by_prefix({
        "": ["7+5+0=12 > 2"],
        "7+5+0=12 > 2\n": ["4+8+1=14 > 142"],  # wrong: nothing passes at depth 1
    })  # fmt: skip
    spec = "beam:beams=1,expand=1,verifier=arith,split=line,floor=1"
    result = result_of(events_of(parse_strategy(spec, seed=0), model))
    assert result.answer is None and "no candidate at or above floor=1 left" in result.how
    assert result.text == "7+5+0=12 > 2\n"  # not the rejected "4+8+1=14 > 142"


def test_beam_floor_with_nothing_sound_left_answers_nothing():
    model = by_prefix({"": ["7+5+0=13 > 3"], "7+5+0=13 > 3\n": ["Answer: 143"]})
    spec = "beam:beams=1,expand=1,verifier=arith,split=line,floor=1"
    result = result_of(events_of(parse_strategy(spec, seed=0), model))
    assert result.answer is None and "no candidate at or above floor=1 left" in result.how
    assert result.text == "7+5+0=13 > 3\n"  # the best rejected partial solution stands
    with pytest.raises(StrategySpecError, match="floor must be between 0 and 1"):
        parse_strategy("beam:floor=2")
    with pytest.raises(StrategySpecError, match="retries must be 0 or more"):
        parse_strategy("beam:retries=-1")


# --- mcts ---


def _assert_visits_add_up(tree: Tree, simulations: int) -> None:
    nodes = {n["id"]: n for n in tree.nodes}
    kids = defaultdict(list)
    for n in tree.nodes:
        if n["parent"] is not None:
            kids[n["parent"]].append(n["id"])
    assert nodes[0]["visits"] == simulations
    for i, n in nodes.items():
        assert n["visits"] == n["rollouts"] + sum(nodes[k]["visits"] for k in kids[i]), n


def test_mcts_visit_counts_add_up_and_values_come_from_rollouts():
    model = by_prefix({
        "": ["7+5+0=12 > 2", "7+5+0=13 > 3"],
        "7+5+0=12 > 2\n": ["4+8+1=13 > 132", "4+8+1=13 > 132\nAnswer: 132"],
        "7+5+0=13 > 3\n": ["4+8+1=14 > 143", "4+8+1=14 > 143\nAnswer: 143"],
        "7+5+0=12 > 2\n4+8+1=13 > 132\n": ["Answer: 132"],
        "7+5+0=13 > 3\n4+8+1=14 > 143\n": ["Answer: 143"],
    })  # fmt: skip
    spec = "mcts:simulations=7,expand=2,verifier=arith,split=line"
    events = events_of(parse_strategy(spec, seed=1), model)
    result = result_of(events, model)
    sims = of(events, Simulated)
    assert len(sims) == 7 and all(s.path[0] == 0 for s in sims)
    [tree] = of(events, Tree)
    _assert_visits_add_up(tree, 7)
    nodes = {n["id"]: n for n in tree.nodes}
    # the wrong first step ("7+5+0=13") leads to a wrong equation in every rollout: value 0
    assert nodes[1]["value"] == 1.0 and nodes[2]["value"] == 0.0
    assert result.answer == "132" and "holds 100% of the rollout value" in result.how


def test_mcts_uct_explores_unvisited_children_first():
    model = by_prefix({"": ["Answer: 1", "Answer: 2", "Answer: 3"]})
    events = events_of(parse_strategy("mcts:simulations=4,expand=3,verifier=arith"), model)
    paths = [s.path for s in of(events, Simulated)]
    assert paths[:3] == [[0, 1], [0, 2], [0, 3]]  # every child once, in order, before any twice
    [tree] = of(events, Tree)
    _assert_visits_add_up(tree, 4)
    assert len(model.requests) == 1  # finished children are their own rollouts: no more calls


# --- auto ---


def test_auto_takes_the_cheap_path_on_an_easy_problem():
    model = by_prefix({"": [RIGHT]})
    result = result_of(events_of(parse_strategy("auto:verifier=arith,split=line"), model), model)
    assert result.answer == "132" and len(model.requests) == 1 and model.requests[0].n == 4
    assert result.how.startswith("auto: easy (4/4 probe samples agree")


def test_auto_thinks_harder_on_a_hard_problem():
    wrong = [f"7+5+0=12 > 2\n4+8+1={v} > 1{v % 10}2\nAnswer: 1{v % 10}2" for v in (14, 15, 16, 17)]
    model = by_prefix({"": wrong, "7+5+0=12 > 2\n": ["4+8+1=13 > 132\nAnswer: 132"]})
    events = events_of(parse_strategy("auto:verifier=arith,split=line,seed=0"), model)
    result = result_of(events, model)
    assert result.how.startswith("auto: hard (1/4 probe samples agree")
    assert "-> reflect" in result.how
    # the probe, then reflect: a greedy solution of its own, and one repair from the cut
    assert result.answer == "132" and len(model.requests) == 3
    assert model.requests[1].prefix is None and model.requests[1].temperature == 0.0
    assert model.requests[2].prefix == "7+5+0=12 > 2\n"
    assert of(events, Backtracked)


def test_auto_votes_adaptively_on_a_medium_problem():
    other = "7+5+0=12 > 2\n4+8+1=14 > 142\nAnswer: 142"
    model = by_prefix({"": [RIGHT, RIGHT, RIGHT, other] + [RIGHT] * 4})
    # verify_probe=off: arith would pass the three right samples and answer from the probe
    spec = "auto:verifier=arith,verify_probe=off"
    result = result_of(events_of(parse_strategy(spec), model), model)
    assert result.how.startswith("auto: medium (3/4 probe samples agree")
    assert "adaptive voting: settled after 8 samples" in result.how and result.answer == "132"
    assert [r.n for r in model.requests] == [4, 4]


def test_auto_does_not_spend_judge_calls_on_its_probe():
    judged = []

    def judge(request):
        judged.append(request)
        return "Yes"

    model = by_prefix({"": [RIGHT]}, judge=judge)
    result = result_of(events_of(parse_strategy("auto:split=line"), model), model)  # the judge
    assert result.how.startswith("auto: easy (4/4 probe samples agree") and "pass" not in result.how
    assert judged == [] and len(model.requests) == 1


def test_auto_rejects_an_unknown_verify_probe():
    with pytest.raises(StrategySpecError, match="verify_probe must be one of auto, off, check"):
        parse_strategy("auto:verify_probe=yes")
    with pytest.raises(StrategySpecError, match="verify_probe must be one of"):
        parse_strategy("auto:verify_probe=judge")  # an opinion, at a model call a sample


# --- budgets: never exceeded, usage exact ---

SPECS = [
    "reflect:verifier=arith,split=line,max_tokens=24",
    "reflect:verifier=judge,split=line,max_tokens=24",
    "think:min_think=4,max_think=12,max_tokens=6",
    "think:style=tags,min_think=4,max_think=12,max_tokens=8",
    "beam:beams=2,expand=2,verifier=judge,split=line,step_tokens=8,max_tokens=24",
    "beam:beams=2,expand=3,verifier=arith,split=line,diverse=true,step_tokens=8,max_tokens=24",
    "mcts:simulations=5,expand=2,verifier=judge,split=line,step_tokens=8,max_tokens=24",
    "mcts:simulations=5,expand=2,verifier=prob,split=line,step_tokens=8,max_tokens=24",
    "auto:verifier=arith,split=line,max_tokens=24",
    "auto:verifier=judge,split=line,hard_with=beam,easy=1,hard=1,max_tokens=24",
    "auto:split=line,hard_with=mcts,hard=1,max_tokens=24",
    "auto:hard_with=deepthink,hard=1,max_tokens=24",
    "auto:split=line,hard_with=beam,beam.beams=2,beam.expand=2,beam.floor=0.5,beam.step_tokens=8,"
    "hard=1,max_tokens=24",
]


def any_prefix_model() -> Recorder:
    """Replies to anything: wrong and right steps mixed, a judge that alternates."""
    lines = ["7+5+0=12 > 2", "4+8+1=14 > 142", "4+8+1=13 > 132", "Answer: 132", "Answer: 142"]

    def reply(request, i):
        if request.messages[0]["content"] in (JUDGE_SYSTEM, STEP_JUDGE_SYSTEM):
            return "Yes" if i % 2 else "No"
        if i % 5 == 4:
            return "\n".join(lines[:2] + lines[4:])
        boxed = (132, 142, 152, 132)[i % 4]  # a probe of four splits 2/1/1
        return "\n".join(lines[i % 3 : 4]) + f" wait and think </think> \\boxed{{{boxed}}}"

    return Recorder(reply)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("budget", [20, 45, 90, 160, 300, 600, None])
def test_budget_is_never_exceeded_and_usage_is_exact(spec, budget):
    model = any_prefix_model()
    result = result_of(events_of(parse_strategy(spec, seed=1), model, Budget(budget)), model)
    if budget is not None:
        assert result.usage.total_tokens <= budget
    assert result.how


def test_every_new_strategy_parses_and_has_a_canonical_spec():
    for spec in ["reflect", "think", "beam", "mcts", "auto", *SPECS]:
        strategy = parse_strategy(spec)
        assert parse_strategy(strategy.spec).spec == strategy.spec
    with pytest.raises(StrategySpecError, match="hard_with"):
        parse_strategy("auto:hard_with=vote")
    # the hard strategy's own options, NAME.option=value: checked against that strategy
    for bad, message in [
        ("auto:hard_with=beam,mcts.simulations=4", "sets an option of mcts, but hard_with=beam"),
        ("auto:hard_with=beam,beam.nope=1", "beam has no option 'nope'; it takes"),
        ("auto:hard_with=beam,beam.floor=high", "floor='high' is not a valid float"),
        ("auto:hard_with=reflect,reflect.rounds=-1", "rounds must be >= 0"),
        ("auto:hard_with=beam,beam.calculator=on", "write auto's own calculator="),
        ("auto:hard_with=beam,beam.seed=3", "write auto's own seed="),
        ("vote:n=4,vote.n=8", "bad parameter 'vote.n=8'"),  # only auto takes dotted options
    ]:
        with pytest.raises(StrategySpecError, match=message):
            parse_strategy(bad)
    # one hard strategy, one spec: field order, number format, the last of a repeated option,
    # and none that changes nothing
    one = "auto:hard_with=beam,beam.step_tokens=256,beam.floor=1"
    for same in ["auto:hard_with=beam,beam.floor=1.0,beam.step_tokens=256",
                 "auto:hard_with=beam,beam.floor=0,beam.step_tokens=256,beam.floor=1",
                 "auto:hard_with=beam,beam .floor=1,beam.step_tokens=256,beam.beams=4"]:  # fmt: skip
        assert parse_strategy(same).spec == one, same
    assert parse_strategy("auto:hard_with=reflect,reflect.rounds=3").spec == "auto"
    # one that sets what auto passes down stays, equal or not: it pins it when auto's changes
    pinned = parse_strategy("auto:temperature=0.8,hard_with=beam,beam.temperature=0.8")
    assert pinned.spec == "auto:hard_with=beam,beam.temperature=0.8,temperature=0.8"
    assert dataclasses.replace(pinned, temperature=0.5)._hard_strategy.temperature == 0.8
    seeded = dataclasses.replace(parse_strategy(one), seed=3)  # as bench gives each cell its seed
    assert seeded.spec == one and seeded._hard_strategy.floor == 1
    assert seeded._hard_strategy.seed == 3
    with pytest.raises(StrategySpecError, match="min_think must not exceed"):
        parse_strategy("think:min_think=10,max_think=5")
    with pytest.raises(StrategySpecError, match="unknown verifier"):
        parse_strategy("beam:verifier=oracle")


# --- prm: a tiny random process reward model ---


@pytest.fixture(scope="module")
def prm_dirs(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + chars)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = transformers.LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0,
        num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    out = {}
    for kind, cls in (("token", transformers.LlamaForTokenClassification),
                      ("sequence", transformers.LlamaForSequenceClassification)):  # fmt: skip
        d = tmp_path_factory.mktemp(f"prm-{kind}")
        tok.save_pretrained(d)
        cls(config).save_pretrained(d)
        out[kind] = d
    return out


def test_a_prm_folder_that_does_not_exist_is_refused_when_the_strategy_is_built(tmp_path):
    """The PRM loads at its first score, after sampling: a mistyped local path is caught first.
    A Hub id (``org/name``) cannot be checked offline and is left to the load."""
    model = by_prefix({"": ["Answer: 132"]})
    for path in (tmp_path / "nope", "./nope-prm", "~/nope-prm"):
        with pytest.raises(StrategySpecError, match="no such folder"):
            parse_strategy(f"reflect:verifier=prm:{path}")
    assert model.requests == []
    assert make_scorer("prm:org/some-prm", level="step").name == "prm:org/some-prm"


@pytest.mark.parametrize("kind", ["token", "sequence"])
def test_prm_scores_steps_and_charges_its_input(prm_dirs, kind):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    scorer = make_scorer(f"prm:{prm_dirs[kind]}", level="step")
    prefix, step = "7+5+0=12 > 2\n", "4+8+1=13 > 132"
    attempt = Attempt(prefix + step, step=step)
    cost = scorer.max_cost(PROBLEM, attempt, None)
    r = asyncio.run(scorer.score(PROBLEM, attempt, None))
    assert 0.0 <= r.value <= 1.0 and r.usage == Usage(prompt_tokens=cost, calls=1)
    whole = asyncio.run(scorer.score(PROBLEM, Attempt(RIGHT, "132"), None))
    assert 0.0 <= whole.value <= 1.0
    assert whole.usage.prompt_tokens == scorer.max_cost(PROBLEM, Attempt(RIGHT, "132"), None)
    # the step scores of a token-level PRM are read at each step's end: the same positions in
    # the whole solution give the same scores (a causal model reads no further)
    if kind == "token":
        steps = split_steps(RIGHT, "line")
        scores, _ = scorer.prm.step_scores(PROBLEM.question, steps)
        assert abs(scores[1] - r.value) < 1e-5 and abs(min(scores) - whole.value) < 1e-6
    # and it works inside a strategy
    model = by_prefix({"": ["7+5+0=12 > 2"], "7+5+0=12 > 2\n": ["Answer: 132"]})
    spec = f"beam:beams=1,expand=1,split=line,step_tokens=16,verifier=prm:{prm_dirs[kind]}"
    result = result_of(events_of(parse_strategy(spec), model, Budget(400)))
    assert result.answer == "132" and result.usage.total_tokens <= 400, result.how
    assert result.usage.calls == 4  # two steps, each sampled and scored


def test_auto_built_in_python_passes_a_scorer_object_to_its_hard_strategy():
    from ponder.think.auto import Auto
    from ponder.verify import make_scorer

    scorer = make_scorer("arith")
    auto = Auto(verifier=scorer, split="line", hard_with="beam",
                hard_options=(("beam", "floor", "1"),))  # fmt: skip
    assert auto._hard_strategy.verifier is scorer and auto._hard_strategy.floor == 1
    deep = Auto(verifier=make_scorer("countdown"), hard_with="deepthink")  # checks answers too
    assert deep._hard_strategy.verifier is deep.verifier
    # a float written back whole, so that a rebuilt strategy (each bench seed's) runs the same
    precise = parse_strategy("auto:hard_with=beam,beam.floor=0.123456789")
    assert dataclasses.replace(precise, seed=1)._hard_strategy.floor == 0.123456789
    assert parse_strategy("beam:floor=0.123456789").spec == "beam:floor=0.123456789"
    with pytest.raises(ValueError, match="cannot hold a comma"):
        Auto(hard_with="beam", hard_options=(("beam", "step_tokens", "4,beams=1"),))
